"""Backbones from disk: a Keras model file (`.keras`, `.h5`) or a folder holding one, passed as `--backbone PATH`.

The rule for preprocessing is the one ``keras.applications`` follows: the model takes raw 0-255 RGB and
does its own scaling (put a ``keras.layers.Rescaling`` or ``Normalization`` layer first), so the
classifier feeds it the images unchanged. Its output is a pooled feature vector ``(None, F)`` or a
feature map ``(None, h, w, F)``, which is average-pooled. The file's weights count as pretrained
(``--weights imagenet``, the default, keeps them; ``none`` re-initialises; a weights file replaces them).

A folder is searched for one ``.keras``/``.h5`` file, as a Kaggle notebook sees an attached Kaggle
Model under ``/kaggle/input/...``. A keras-hub preset folder (``config.json`` naming a keras-hub class)
needs the ``keras-hub`` package, which the kit does not install: it is a one-line error saying so.

Checking a path (:func:`inspect_model_file`) reads only file headers and zip directories: no TensorFlow.

Example:
    >>> looks_like_path("efficientnet_lite0"), looks_like_path("/kaggle/input/cnn/backbone.keras")
    (False, True)
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kaggle_kit.errors import KitError

if TYPE_CHECKING:
    import keras

__all__ = ["MODEL_SUFFIXES", "ModelFile", "looks_like_path", "inspect_model_file", "load_backbone_file"]

MODEL_SUFFIXES = (".keras", ".h5")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class ModelFile:
    """A checked model file: where it is, what identifies its contents, and a short name for run ids."""

    path: Path
    fingerprint: str      # resolved path, size and mtime: a changed file means new cached features
    label: str            # the file's stem, safe in a folder name


def looks_like_path(name: str) -> bool:
    """Whether a ``--backbone`` value that is not a registered name means a file or folder."""
    return ("/" in name or os.sep in name or name.startswith((".", "~")) or name.endswith(MODEL_SUFFIXES)
            or Path(name).exists())


def inspect_model_file(name: str) -> ModelFile:
    """The Keras model file ``name`` names (a file, or a folder holding one), checked without loading it.

    A missing path, a folder without a model, a keras-hub preset, a file that is not a Keras model or
    holds weights only: each is a one-line :class:`KitError` naming the path and what is missing.
    """
    path = Path(name).expanduser()
    if not path.exists():
        raise KitError(f"{path}: backbone file or folder not found")
    if path.is_dir():
        path = _model_in_folder(path)
    _check_model_file(path)
    st = path.stat()
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.name.removesuffix(path.suffix))[:40].strip("._") or "model"
    return ModelFile(path=path, fingerprint=f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}", label=label)


def _model_in_folder(folder: Path) -> Path:
    config = folder / "config.json"
    if config.is_file() and _is_keras_hub(config):
        if importlib.util.find_spec("keras_hub") is None:
            raise KitError(f"{folder}: a keras-hub preset; loading it needs keras-hub: pip install keras-hub")
        raise KitError(f"{folder}: a keras-hub preset; the kit loads Keras model files only: save the backbone "
                       f"with keras_hub.models.Backbone.from_preset(...).save('backbone.keras')")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(MODEL_SUFFIXES)
                   and not p.name.endswith(".weights.h5"))
    if len(found) == 1:
        return found[0]
    if found:
        raise KitError(f"{folder}: holds {len(found)} model files ({', '.join(p.name for p in found)}); "
                       f"name one of them as the backbone")
    raise KitError(f"{folder}: no Keras model here: no .keras or .h5 file and no keras-hub preset (config.json)")


def _is_keras_hub(config: Path) -> bool:
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and ("keras_hub" in str(data.get("module", ""))
                                       or str(data.get("registered_name", "")).startswith("keras_hub"))


def _check_model_file(path: Path) -> None:
    if path.name.endswith(".weights.h5"):
        raise KitError(f"{path}: a weights file holds no model; pass it as --weights with a named --backbone")
    if path.suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise KitError(f"{path}: not a Keras model file: not a .keras (zip) archive")
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
        if "config.json" not in names:
            raise KitError(f"{path}: not a Keras model file: the archive has no config.json")
    elif path.suffix == ".h5":
        with open(path, "rb") as f:
            if f.read(8) != _HDF5_MAGIC:
                raise KitError(f"{path}: not a Keras model file: not an HDF5 file")
        import h5py

        with h5py.File(path, "r") as f:
            if "model_config" not in f.attrs:
                raise KitError(f"{path}: an HDF5 file without a model_config (weights only?); "
                               f"pass it as --weights with a named --backbone")
    else:
        raise KitError(f"{path}: not a Keras model file: expected a .keras or .h5 file")


def load_backbone_file(path: Path, shape: tuple[int, int, int], weights: str, cache_dir: Path) -> "keras.Model":
    """The model in ``path`` rebuilt on a ``shape`` input, pooled, as the classifier's ``backbone``.

    Its layers stay the backbone's own (``--unfreeze`` and ``--finetune-from`` address them) when it is
    a functional or Sequential model; a subclassed model is called as one layer.
    """
    import keras

    try:
        loaded = keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a file it cannot read
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise KitError(f"{path}: cannot load as a Keras model ({type(e).__name__}: {first[:200]})") from None
    if len(loaded.inputs) != 1 or len(loaded.inputs[0].shape) != 4 or loaded.inputs[0].shape[-1] != 3:
        got = [tuple(t.shape) for t in loaded.inputs]
        raise KitError(f"{path}: takes inputs {got}; a backbone takes one batch of RGB images (None, H, W, 3)")
    fixed = tuple(loaded.inputs[0].shape[1:3])
    if None not in fixed and fixed != shape[:2]:
        raise KitError(f"{path}: takes {fixed[0]}x{fixed[1]} images only, not {shape[0]}x{shape[1]}; "
                       f"train with --size {fixed[0]}")
    inputs = keras.Input(shape, name="image")
    try:
        model = keras.models.clone_model(loaded, input_tensors=inputs)
        if weights != "none":
            model.set_weights(loaded.get_weights())
        outputs = model.outputs
        inputs = model.inputs[0]
    except Exception:   # a subclassed model cannot be cloned: call it whole
        outputs = [loaded(inputs)]
    if len(outputs) != 1 or len(outputs[0].shape) not in (2, 4):
        raise KitError(f"{path}: gives outputs {[tuple(t.shape) for t in outputs]}; a backbone gives one "
                       f"feature vector (None, F) or feature map (None, h, w, F)")
    x = outputs[0]
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="file_pool")(x)
    backbone = keras.Model(inputs, x, name="backbone")
    if weights not in ("none", "imagenet", ""):
        backbone.load_weights(weights)
    return backbone
