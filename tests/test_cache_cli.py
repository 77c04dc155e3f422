"""``kaggle-kit cache ls|clear`` on a tiny project's real image cache and a feature entry."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from kaggle_kit.data.cache import Cache
from kaggle_kit.cli import main
from kaggle_kit.cli.cache import size_text
from kaggle_kit.data.manifest import build_manifest
from kaggle_kit.project import Project

from conftest import TINY_SLUG


@pytest.fixture
def cached(tiny_project: Project, kit_env: pytest.MonkeyPatch) -> Cache:
    """The tiny project with its 6 training images cached at 8 px and 6 features of an imagined backbone."""
    kit_env.setenv("KAGGLE_KIT_HOME", str(tiny_project.root))
    kit_env.setenv("COLUMNS", "200")
    cache = Cache(tiny_project.cache)
    comp = tiny_project.competition(TINY_SLUG)
    manifest = build_manifest(comp, tiny_project.data_root(TINY_SLUG), "train", cache_dir=tiny_project.cache)
    cache.images(manifest, 8, "stretch")
    cache.get_or_build("features", "f1", (4,), np.float16, lambda: iter([np.zeros((6, 4), np.float16)]),
                       {"n": 6, "backbone": "efficientnet_lite0", "size": 8, "layer": None})
    return cache


def test_ls_lists_both_kinds_with_sizes(cached: Cache, capsys: pytest.CaptureFixture) -> None:
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert "images" in out and "train 8px stretch" in out and size_text(6 * 8 * 8 * 3) in out
    assert "features" in out and "efficientnet_lite0 8px" in out and size_text(6 * 4 * 2) in out
    assert f"2 entries, {size_text(6 * 8 * 8 * 3 + 6 * 4 * 2)} in {cached.root}" in out

    assert main(["cache", "ls", "--kind", "features"]) == 0
    out = capsys.readouterr().out
    assert "efficientnet_lite0" in out and "train 8px" not in out and "1 entry," in out


def test_clear_one_kind_then_everything(cached: Cache, capsys: pytest.CaptureFixture) -> None:
    assert main(["cache", "clear", "--kind", "images"]) == 0
    assert f"freed {size_text(6 * 8 * 8 * 3)} of images" in capsys.readouterr().out
    assert [e.kind for e in cached.entries()] == ["features"]
    assert not list((cached.root / "images").glob("*.bin"))

    assert main(["cache", "clear"]) == 0
    assert f"freed {size_text(6 * 4 * 2)}" in capsys.readouterr().out
    assert cached.entries() == []
    assert main(["cache", "ls"]) == 0
    assert "no cached images or backbone outputs" in capsys.readouterr().out


def test_a_cleared_image_cache_is_rebuilt_on_next_use(cached: Cache, tiny_project: Project) -> None:
    main(["cache", "clear"])
    comp = tiny_project.competition(TINY_SLUG)
    manifest = build_manifest(comp, tiny_project.data_root(TINY_SLUG), "train", cache_dir=tiny_project.cache)
    records = cached.images(manifest, 8, "stretch")
    assert len(records) == 6 and records.read([0]).shape == (1, 8, 8, 3)
    assert [e.kind for e in cached.entries()] == ["images"]


def test_activations_are_listed_with_their_layer(cached: Cache, capsys: pytest.CaptureFixture) -> None:
    cached.get_or_build("activations", "a1", (2, 2, 8), np.float16,
                        lambda: iter([np.zeros((6, 2, 2, 8), np.float16)]),
                        {"n": 6, "backbone": "efficientnet_lite0", "size": 8, "layer": "block6a_expand_activation"})
    assert main(["cache", "ls", "--kind", "activations"]) == 0
    assert "efficientnet_lite0 block6a_expand_activation 8px" in capsys.readouterr().out
    assert main(["cache", "clear", "--kind", "activations"]) == 0
    assert sorted(e.kind for e in cached.entries()) == ["features", "images"]


def test_reusing_features_makes_them_recently_used(cached: Cache, capsys: pytest.CaptureFixture) -> None:
    """A re-run finds its features with ``Cache.find``; ``ls`` and eviction must see that use."""
    data = cached.paths("features", "f1")[0]
    os.utime(data, (1_000_000, 1_000_000))               # last used in 1970
    assert main(["cache", "ls", "--kind", "features"]) == 0
    assert "01-12 " in capsys.readouterr().out
    assert cached.find("features", "f1") is not None
    assert data.stat().st_atime > time.time() - 60
    main(["cache", "ls", "--kind", "features"])
    assert time.strftime("%m-%d %H:", time.localtime()) in capsys.readouterr().out


def test_unknown_action_is_refused(cached: Cache) -> None:
    with pytest.raises(SystemExit):
        main(["cache", "rm"])


def test_size_text() -> None:
    assert [size_text(n) for n in (999, 1_500, 2_500_000, 3_000_000_000)] == ["999 B", "1.5 KB", "2.5 MB", "3.0 GB"]
