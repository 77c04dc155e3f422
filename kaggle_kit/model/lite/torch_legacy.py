"""A PyTorch state dict in the legacy (non-zip) ``torch.save`` format, read with numpy and no torch.

A restricted unpickler builds only what a flat state dict needs (an ``OrderedDict`` of strided tensor
views on typed storages) and refuses every other global, so nothing in the file runs. The storages'
bytes follow the pickles; each tensor is copied out of its storage as a contiguous array.
"""
from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kaggle_kit.errors import KitError

__all__ = ["read_torch_legacy", "LEGACY_MAGIC", "LEGACY_PROTOCOL"]

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
