"""``kaggle-kit export``: a tiny trained run (2 folds, flip TTA) written in every format, each loaded in a
fresh Python process by its own runtime (tf.saved_model, Keras, tf.lite, onnxruntime) and compared with
what ``predict`` computes for the same images (the fold ensemble, :class:`Predictor`)."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toy_project import kit_env, kit_here, make_project

from kaggle_kit.errors import KitError
from kaggle_kit.prediction.export import export_run, get_export_format, list_export_formats
from kaggle_kit.prediction.predictor import Predictor
from kaggle_kit.project import Project

pytestmark = pytest.mark.filterwarnings("ignore:.*shuffle=True.*:UserWarning")

TOLERANCE = 1e-5

# Loads every export with nothing of the kit but what the .keras format needs (its layers), and writes
# each one's probabilities for images.npy to <format>.npy.
LOADER = r'''
import json, sys
from pathlib import Path
import numpy as np

folder = Path(sys.argv[1])
images = np.load(folder / "images.npy")
paths = json.loads((folder / "paths.json").read_text())
out = {}

import tensorflow as tf
saved = tf.saved_model.load(paths["savedmodel"])   # kept: its variables live as long as it does
out["savedmodel"] = saved.serve(tf.constant(images)).numpy()

interpreter = tf.lite.Interpreter(model_path=paths["tflite"])
index = interpreter.get_input_details()[0]["index"]
interpreter.resize_tensor_input(index, images.shape)
interpreter.allocate_tensors()
interpreter.set_tensor(index, images)
interpreter.invoke()
out["tflite"] = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

import onnxruntime
session = onnxruntime.InferenceSession(paths["onnx"], providers=["CPUExecutionProvider"])
out["onnx"] = session.run(None, {session.get_inputs()[0].name: images})[0]

import keras
import kaggle_kit.model.classifier  # noqa: F401  (registers the kit's layers the archive names)
out["keras"] = keras.saving.load_model(paths["keras"]).predict(images, verbose=0)

for name, proba in out.items():
    np.save(folder / f"{name}.npy", proba)
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    from kaggle_kit.api import train

    root = make_project(tmp_path_factory.mktemp("export"), per_class=6, test=3)
    project = Project(root)
    run = train("toy", project=project, folds=2, head_epochs=1, progress=False)
    assert run.status == "complete" and run.config.tta
    return project


@pytest.fixture(scope="module")
def run(project: Project):
    from kaggle_kit.training.runs import best_run

    return best_run(project, project.competition("toy"))


def test_every_format_round_trips_in_a_fresh_process(project: Project, run, tmp_path: Path) -> None:
    comp = project.competition("toy")
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, run.image_size, run.image_size, 3)).astype(np.float32)
    images[0] = images[0, :, ::-1]          # not symmetric: the mirrored view counts
    expected = Predictor.from_run(run).predict_batch(images, tta=True)

    paths = {}
    for fmt in list_export_formats():
        exported = export_run(project, comp, run, fmt=fmt, tta="flip")
        assert exported.path.exists() and exported.path.name.endswith("-tta" + get_export_format(fmt).suffix)
        info = json.loads(exported.info_path.read_text())
        assert info["classes"] == list(run.classes) and info["tta"] == "flip" and info["folds"] == 2
        assert info["input"]["shape"] == [None, run.image_size, run.image_size, 3]
        paths[fmt] = str(exported.path)
    np.save(tmp_path / "images.npy", images)
    (tmp_path / "paths.json").write_text(json.dumps(paths))
    done = subprocess.run([sys.executable, "-c", LOADER, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=kit_env(project.root))
    assert done.returncode == 0, done.stderr[-3000:]
    for fmt in list_export_formats():
        got = np.load(tmp_path / f"{fmt}.npy")
        assert got.shape == expected.shape, fmt
        diff = float(np.abs(got - expected).max())
        print(f"{fmt}: max |export - predict| = {diff:.2e}")
        assert diff < TOLERANCE, f"{fmt}: differs from predict by {diff}"


def test_without_tta_the_export_matches_a_plain_predict(project: Project, run, tmp_path: Path) -> None:
    import keras

    comp = project.competition("toy")
    exported = export_run(project, comp, run, fmt="keras", tta=False, out=tmp_path / "plain.keras")
    images = np.random.default_rng(2).integers(0, 256, (4, run.image_size, run.image_size, 3)).astype(np.float32)
    got = keras.saving.load_model(exported.path).predict(images, verbose=0)
    expected = Predictor.from_run(run).predict_batch(images, tta=False)
    assert np.abs(got - expected).max() < TOLERANCE
    assert not np.allclose(expected, Predictor.from_run(run).predict_batch(images, tta=True), atol=1e-7)


def test_every_dihedral_view_layer_equals_the_numpy_view() -> None:
    from kaggle_kit.model.classifier import DihedralView
    from kaggle_kit.symmetry import VIEWS, apply_view

    x = np.random.default_rng(3).random((2, 5, 5, 3)).astype(np.float32)
    for key, (turns, mirror) in VIEWS.items():
        got = np.asarray(DihedralView(turns, mirror)(x))
        assert np.array_equal(got, apply_view(key, x)), key


def test_a_magnifying_tta_policy_is_refused_in_one_line(project: Project, run, tmp_path: Path) -> None:
    from kaggle_kit.errors import KitError

    with pytest.raises(KitError, match="magnifies the images.*--tta none, flip or d8"):
        export_run(project, project.competition("toy"), run, fmt="keras", tta="scale", out=tmp_path / "s.keras")


def test_cli_export_writes_and_says_where(project: Project, run) -> None:
    done = kit_here(project.root, "export", "toy", "--run", run.run_id, "--format", "keras", "--no-tta")
    assert done.returncode == 0, done.stderr
    path = project.exports / "toy" / f"{run.run_id}.keras"
    assert path.is_file() and str(path) in done.stdout.replace("\n", "")
    assert "float32 RGB 0-255 (N, 16, 16, 3)" in done.stdout


def test_unknown_format_is_one_line_naming_the_choices() -> None:
    from kaggle_kit.cli import build_parser

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit):
        build_parser().parse_args(["export", "toy", "--format", "onnxx"])
    assert "unknown export format 'onnxx'; did you mean onnx?" in err.getvalue()
    with pytest.raises(KitError, match="did you mean onnx"):
        get_export_format("onnxx")


def test_a_mixed_precision_model_is_exported_in_float32(tmp_path: Path) -> None:
    """A run trained on a GPU keeps mixed_float16 layers; the export computes in float32 (TFLite would
    refuse the float16 ops) with the same weights."""
    import keras

    from kaggle_kit.model.backbones import get_backbone
    from kaggle_kit.model.classifier import build_model
    from kaggle_kit.prediction.export import float32_model

    def build():
        keras.utils.set_random_seed(0)
        return build_model(get_backbone("simple_cnn"), n_classes=3, image_size=16, weights="none", dropout=0.1,
                           cache_dir=tmp_path)

    plain = build()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = build()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    mixed.set_weights(plain.get_weights())
    assert mixed.get_layer("backbone").layers[1].dtype_policy.name == "mixed_float16"
    assert float32_model(plain) is plain
    converted = float32_model(mixed)
    assert converted.get_layer("backbone").layers[1].dtype_policy.name == "float32"
    images = np.random.default_rng(3).integers(0, 256, (4, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(converted.predict(images, verbose=0), plain.predict(images, verbose=0), atol=1e-6)


def test_onnx_without_its_packages_is_one_line_naming_them(project: Project, run, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tf2onnx", None)     # how Python marks a module that cannot be imported
    with pytest.raises(KitError, match=r"^export --format onnx needs the Python package\(s\) tf2onnx, which are not "
                                       r"installed: pip install 'kaggle-kit\[export\]'$"):
        export_run(project, project.competition("toy"), run, fmt="onnx", out=project.root / "x.onnx")
    assert not (project.root / "x.onnx").exists()
