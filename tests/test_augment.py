"""Augmentation presets on a batch: shapes, dtype and one-hot sums kept, the plugin's symmetry
respected (``none`` never mirrors), and MixUp on the cached-feature path."""
from __future__ import annotations

import numpy as np
import pytest

from kaggle_kit.data.augment import get_augment, list_augments, make_augment, make_feature_mix
from kaggle_kit.data.pipeline import feature_dataset, image_dataset
from kaggle_kit.data.records import RecordFile


def gradient_image(size: int = 16) -> np.ndarray:
    """Bright on the left, dark on the right: a mirror is unmistakable."""
    row = np.linspace(255, 0, size, dtype=np.float32)
    return np.repeat(np.repeat(row[None, :, None], size, axis=0), 3, axis=2)


def batch(n: int = 8, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[np.arange(n) % 3]


@pytest.mark.parametrize("name", [n for n in list_augments() if n != "none"])
@pytest.mark.parametrize("symmetry", ["none", "hflip", "d8"])
def test_each_preset_keeps_shape_dtype_and_one_hot_sums(name: str, symmetry: str) -> None:
    x, y = batch()
    aug = make_augment(name, seed=1, symmetry=symmetry)
    if aug is None:
        assert name == "flip" and symmetry == "none"      # nothing to flip on digits
        return
    ax, ay = (np.asarray(t) for t in aug(x, y))
    assert ax.shape == x.shape and ax.dtype == np.float32 and ay.shape == y.shape
    assert np.allclose(ay.sum(axis=1), 1.0, atol=1e-5)
    assert np.isfinite(ax).all() and ax.min() >= -1e-3 and ax.max() <= 255 + 1e-3
    if not get_augment(name).mixes_labels:
        assert np.array_equal(ay, y)
    else:
        assert not np.array_equal(ay, y)                    # MixUp/CutMix mixed the labels


def test_a_none_symmetry_never_mirrors_and_hflip_does() -> None:
    img = gradient_image()
    x, y = np.repeat(img[None], 64, axis=0), np.eye(2, dtype=np.float32)[np.zeros(64, int)]
    for name in ("light", "seed", "strong"):      # (RandAugment may solarize: a brightness test is moot)
        out, _ = make_augment(name, seed=3, symmetry="none")(x, y)
        left, right = np.asarray(out)[:, :, :4].mean(axis=(1, 2, 3)), np.asarray(out)[:, :, -4:].mean(axis=(1, 2, 3))
        assert (left > right).all(), name                   # every image still bright on the left
    out, _ = make_augment("flip", seed=3, symmetry="hflip")(x, y)
    left, right = np.asarray(out)[:, :, :4].mean(axis=(1, 2, 3)), np.asarray(out)[:, :, -4:].mean(axis=(1, 2, 3))
    assert 10 < (left < right).sum() < 54                   # about half mirrored, exactly
    assert {np.asarray(o).tobytes() for o in out} == {img.tobytes(), img[:, ::-1].tobytes()}


def test_d8_flip_preset_draws_exact_quarter_turns() -> None:
    img = np.random.default_rng(1).uniform(0, 255, (8, 8, 3)).astype(np.float32)
    x, y = np.repeat(img[None], 64, axis=0), np.eye(2, dtype=np.float32)[np.zeros(64, int)]
    out, _ = make_augment("flip", seed=0, symmetry="d8")(x, y)
    d8 = {np.rot90(m, k).tobytes() for m in (img, img[:, ::-1]) for k in range(4)}
    got = {np.asarray(o).round(3).tobytes() for o in out}
    assert got <= {np.frombuffer(b, np.float32).reshape(8, 8, 3).round(3).tobytes() for b in d8}
    assert len(got) >= 6


def test_presets_run_in_the_image_pipeline_and_mixup_on_features(tmp_path) -> None:
    x, _ = batch(6)
    RecordFile.write(tmp_path / "i.bin", (16, 16, 3), np.uint8, [x.astype(np.uint8)])
    images = RecordFile(tmp_path / "i.bin", (16, 16, 3), np.uint8)
    for name in ("cutmix", "mixup", "seed"):
        ds = image_dataset(images, np.arange(6), np.arange(6) % 3, n_classes=3, batch_size=4, shuffle=True,
                           augment=make_augment(name, 0))
        assert [tuple(b.shape) for b, _ in ds] == [(4, 16, 16, 3), (2, 16, 16, 3)]
    feats = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float16)
    RecordFile.write(tmp_path / "f.bin", (5,), np.float16, [feats])
    features = RecordFile(tmp_path / "f.bin", (5,), np.float16)
    assert make_feature_mix("cutmix", 0) is None and make_feature_mix("light", 0) is None
    ds = feature_dataset(features, np.arange(6), np.arange(6) % 3, n_classes=3, batch_size=6, shuffle=False, seed=0,
                         mix=make_feature_mix("mixup", 0))
    fx, fy = (np.asarray(t) for t in next(iter(ds)))
    assert fx.shape == (6, 5) and np.allclose(fy.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(fx, feats.astype(np.float32))
