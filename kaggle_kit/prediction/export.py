"""Export: a run's fold ensemble as one self-contained model file (SavedModel, .keras, ONNX, TFLite).

The exported model is the whole of ``predict``'s arithmetic in one graph: every fold model (each holds
its own preprocessing layer), the mirrored view when the run uses flip TTA, and the average. Its input
contract: float32 RGB with values 0-255, shape ``(N, image_size, image_size, 3)``, already fitted to the
square with the run's resize mode (:func:`kaggle_kit.data.resize.resize`; OpenCV's area/linear
interpolation, which no in-graph layer reproduces exactly). Its output: ``(N, n_classes)`` float32
class probabilities, in the order of ``classes`` in the JSON file written beside it.

Formats are registry entries (name -> writer, suffix, the Python modules the writer needs, how to load
the result); :func:`list_export_formats` names them.

Example:
    >>> "onnx" in list_export_formats()
    True
    >>> get_export_format("savedmodel").suffix, get_export_format("tflite").suffix
    ('.savedmodel', '.tflite')
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from kaggle_kit.atomic import atomic_dir, atomic_path, atomic_write_json
from kaggle_kit.competition import Competition
from kaggle_kit.errors import KitError
from kaggle_kit.project import Project
from kaggle_kit.registry import Registry
from kaggle_kit.training.runs import RunRecord

if TYPE_CHECKING:
    from kaggle_kit.prediction.predictor import TTA
    import keras

__all__ = ["ExportFormat", "EXPORT_FORMATS", "export_format", "get_export_format", "list_export_formats",
           "Exported", "float32_model", "ensemble_model", "export_path", "export_run"]


@dataclass(frozen=True, kw_only=True)
class ExportFormat:
    name: str
    writer: Callable[["keras.Model", Path], None]   # (ensemble, path) -> writes path
    suffix: str                  # of the file (or folder, for a SavedModel) written
    needs: tuple[str, ...] = ()  # Python modules the writer imports, beyond TensorFlow and Keras
    folder: bool = False         # the export is a folder, not one file
    load: str = ""               # how to load it elsewhere, one line
    description: str = ""


EXPORT_FORMATS: Registry[ExportFormat] = Registry("export format")


def export_format(name: str, *, suffix: str, needs: tuple[str, ...] = (), folder: bool = False, load: str):
    """Register ``writer(model, path)`` as format ``name``, described by its docstring's first line."""

    def add(writer):
        EXPORT_FORMATS.add(name, ExportFormat(name=name, writer=writer, suffix=suffix, needs=needs, folder=folder,
                                              load=load, description=(writer.__doc__ or "").strip().split("\n")[0]))
        return writer

    return add


def get_export_format(name: str) -> ExportFormat:
    return EXPORT_FORMATS.get(name)


def list_export_formats() -> list[str]:
    return EXPORT_FORMATS.names()


@export_format("savedmodel", suffix=".savedmodel", folder=True,
               load="m = tf.saved_model.load(path); m.serve(images)")
def _write_savedmodel(model: "keras.Model", path: Path) -> None:
    """TensorFlow SavedModel (TF Serving, TF.js, any TensorFlow), signature ``serve``; no kit needed."""
    model.export(str(path), format="tf_saved_model", verbose=False)


@export_format("keras", suffix=".keras",
               load="import kaggle_kit.model.classifier; keras.saving.load_model(path).predict(images)")
def _write_keras(model: "keras.Model", path: Path) -> None:
    """Keras 3 archive; loading it needs kaggle-kit installed (its Preprocess and DihedralView layers)."""
    model.save(str(path))


@export_format("onnx", suffix=".onnx", needs=("tf2onnx", "onnx"),
               load="onnxruntime.InferenceSession(path).run(None, {'image': images})[0]")
def _write_onnx(model: "keras.Model", path: Path) -> None:
    """ONNX through Keras' own export (tf2onnx under the TensorFlow backend), for onnxruntime."""
    import warnings

    import tensorflow as tf

    signature = [tf.TensorSpec(model.input.shape, tf.float32, name="image")]   # a new model was never called
    with warnings.catch_warnings():    # Keras' tf2onnx patch probes np.object, which numpy 2 warns about
        warnings.simplefilter("ignore", FutureWarning)
        model.export(str(path), format="onnx", verbose=False, input_signature=signature)


@export_format("tflite", suffix=".tflite",
               load="tf.lite.Interpreter(model_path=path): resize_tensor_input to (N, S, S, 3), invoke")
def _write_tflite(model: "keras.Model", path: Path) -> None:
    """TensorFlow Lite flatbuffer, converted from the SavedModel (float32, no quantisation)."""
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        saved = Path(tmp) / "savedmodel"
        _write_savedmodel(model, saved)
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())


@dataclass(frozen=True, kw_only=True)
class Exported:
    path: Path                   # the model file (a folder for savedmodel)
    info_path: Path              # the JSON beside it: classes, input contract, run
    format: str
    run_id: str
    folds: int
    tta: str                        # the TTA policy held in the graph (kaggle_kit.symmetry.TTA_POLICIES)
    image_size: int
    classes: tuple[str, ...]


def float32_model(model: "keras.Model") -> "keras.Model":
    """``model`` computing in float32: a run trained with mixed precision (on a GPU) keeps float16 layers,
    which TFLite cannot convert and ONNX runs at float16 accuracy. Same weights; unchanged if float32."""
    import keras

    def policies(layer) -> set[str]:
        found = {layer.dtype_policy.name}
        for inner in getattr(layer, "layers", []):
            found |= policies(inner)
        return found

    if policies(model) == {"float32"}:
        return model

    def to_float32(node):
        if isinstance(node, dict):
            if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(node.get("config"), dict):
                return {**node, "config": {**node["config"], "name": "float32"}}
            return {k: to_float32(v) for k, v in node.items()}
        return [to_float32(v) for v in node] if isinstance(node, list) else node

    import kaggle_kit.model.classifier  # noqa: F401  (the kit's layers, registered for deserialisation)

    copy = keras.saving.deserialize_keras_object(to_float32(keras.saving.serialize_keras_object(model)))
    copy.set_weights(model.get_weights())
    return copy


def ensemble_model(run: RunRecord, *, tta: TTA = False, symmetry: str = "hflip") -> "keras.Model":
    """One Keras model equal to ``Predictor.predict_batch(images, tta)``: each fold model on the images
    under each view of the TTA policy (:func:`~kaggle_kit.prediction.predictor.resolve_tta`), averaged.
    Float32 0-255 RGB in, probabilities out; always float32 arithmetic (see :func:`float32_model`).
    A policy with a magnified view (``scale``) is refused: its resampling is not held in the graph."""
    import keras

    from kaggle_kit.model.classifier import DihedralView
    from kaggle_kit.prediction.predictor import Predictor, resolve_tta
    from kaggle_kit.symmetry import VIEWS, split_key

    policy = resolve_tta(run, tta, symmetry)
    zoomed = [k for k in policy.keys if split_key(k)[1] != 1.0]
    if zoomed:
        raise KitError(f"run {run.run_id}: TTA policy {policy.name!r} magnifies the images ({', '.join(zoomed)}), "
                       f"which an export cannot hold; export with --tta none, flip or d8 (as the symmetry allows)")
    predictor = Predictor.from_run(run, symmetry)
    size = predictor.image_size
    inputs = keras.Input((size, size, 3), dtype="float32", name="image")
    views = [inputs if key == "id" else DihedralView(*VIEWS[key], name=f"view_{key}")(inputs) for key in policy.keys]
    outputs = []
    for k, model in enumerate(predictor.models):
        model = float32_model(model)
        model.name = f"fold_{k}"          # every fold model has the same name; one graph needs unique ones
        outputs += [model(view) for view in views]
    out = outputs[0] if len(outputs) == 1 else keras.layers.Average(name="probabilities")(outputs)
    return keras.Model(inputs, out, name="ensemble")


def export_path(project: Project, competition: Competition, run: RunRecord, fmt: str, tta: TTA) -> Path:
    """``exports/<slug>/<run-id>[-tta[-<policy>]]<suffix>``, named as the submission of the same policy."""
    from kaggle_kit.prediction.predictor import submission_path

    stem = submission_path(project, competition, run, tta).stem
    return project.exports / competition.slug / f"{stem}{get_export_format(fmt).suffix}"


def _check_needs(entry: ExportFormat) -> None:
    missing = [m for m in entry.needs if importlib.util.find_spec(m) is None]
    if missing:
        raise KitError(f"export --format {entry.name} needs the Python package(s) {', '.join(missing)}, which are "
                       f"not installed: pip install 'kaggle-kit[export]'")


def export_run(project: Project, competition: Competition, run: RunRecord, *, fmt: str, tta: TTA = None,
               out: Path | None = None) -> Exported:
    """Write the run's ensemble in format ``fmt`` to ``out`` (default :func:`export_path`), atomically,
    with ``<out>.json`` beside it stating the classes and the input contract."""
    entry = get_export_format(fmt)
    _check_needs(entry)
    from kaggle_kit.prediction.predictor import resolve_tta

    if run.is_blend:
        raise KitError(f"{run.path}: {run.run_id} is a blend; export one of its member runs")
    tta = resolve_tta(run, tta, competition.symmetries).name     # None: the policy the run chose on its OOF
    path = Path(out) if out is not None else export_path(project, competition, run, fmt, tta)
    model = ensemble_model(run, tta=tta, symmetry=competition.symmetries)
    try:
        if entry.folder:
            with atomic_dir(path) as tmp:
                entry.writer(model, tmp)
        else:
            with atomic_path(path, suffix=entry.suffix) as tmp:
                entry.writer(model, tmp)
    except KitError:
        raise
    except Exception as e:   # a converter's own failure: name the format and the cause in one line
        first = (str(e).strip().splitlines() or [""])[0]
        raise KitError(f"{path}: {fmt} export failed ({type(e).__name__}: {first})") from None
    size = run.image_size
    info = Exported(path=path, info_path=path.with_name(path.name + ".json"), format=fmt, run_id=run.run_id,
                    folds=len(run.folds), tta=tta, image_size=size, classes=tuple(run.classes))
    atomic_write_json(info.info_path, {
        "format": fmt, "run_id": run.run_id, "competition": competition.slug, "folds": info.folds, "tta": tta,
        "input": {"name": "image", "dtype": "float32", "shape": [None, size, size, 3],
                  "values": "RGB 0-255", "resize": run.config.resize},
        "output": {"shape": [None, len(run.classes)], "values": "class probabilities"},
        "classes": list(run.classes), "load": entry.load})
    return info
