"""Symmetry groups and TTA policies: ``none`` never mirrors, d8's views are 8 distinct invertible
transforms whose matrices agree with the array views, and a forbidden policy is a one-line error."""
from __future__ import annotations

import numpy as np
import pytest

from kaggle_kit.competition import Competition, Submission
from kaggle_kit.errors import KitError
from kaggle_kit.layouts import ClassFolders
from kaggle_kit.symmetry import (VIEWS, apply_view, check_tta, get_symmetry, inverse, list_symmetries, split_key,
                                 tta_candidates, view_matrix)


def asymmetric(n: int = 2, size: int = 6) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


def test_d8_views_are_eight_distinct_transforms_that_invert() -> None:
    x = asymmetric()
    views = get_symmetry("d8").views
    assert len(views) == 8 and set(views) == set(VIEWS)
    outs = [apply_view(v, x) for v in views]
    assert len({o.tobytes() for o in outs}) == 8
    for v, o in zip(views, outs):
        assert np.array_equal(apply_view(inverse(v), o), x), v


def test_view_matrices_sample_the_same_pixels_as_the_array_views() -> None:
    size = 5
    x = asymmetric(1, size)
    ys, xs = np.mgrid[0:size, 0:size]
    for v in VIEWS:
        m = view_matrix(v, size)
        src = m @ np.stack([xs.ravel(), ys.ravel(), np.ones(size * size)])
        sx, sy = np.rint(src[0]).astype(int), np.rint(src[1]).astype(int)
        assert np.array_equal(x[0, sy, sx].reshape(size, size, 3), apply_view(v, x)[0]), v


def test_none_allows_no_flip_and_policies_follow_the_symmetry() -> None:
    assert list_symmetries() == ["d8", "hflip", "none"]
    assert get_symmetry("none").views == ("id",) and not get_symmetry("none").mirrors
    assert [p.name for p in tta_candidates("none")] == ["none", "scale"]
    assert [p.name for p in tta_candidates("d8")] == ["none", "flip", "d8_half", "d8", "scale", "flip+scale"]
    assert [p.name for p in tta_candidates("d8", ("id", "hflip", "rot90", "rot90_hflip"))] == [
        "none", "flip", "d8_half"]
    assert split_key("id@1.15") == ("id", 1.15)
    with pytest.raises(KitError, match="TTA 'flip' shows views .* that symmetry 'none' does not allow; "
                                       "allowed: none, scale"):
        check_tta("flip", "none", "run x")


def test_a_plugin_states_its_symmetry_and_a_typo_names_the_known_ones() -> None:
    spec = dict(slug="cells", classes=("a", "b"), metric="accuracy", train=ClassFolders(), submission=Submission())
    assert Competition(**spec).symmetries == "hflip"
    assert Competition(**spec, symmetries="d8").symmetries == "d8"
    with pytest.raises(KitError, match="cells: symmetries: unknown symmetry 'd4'"):
        Competition(**spec, symmetries="d4")
