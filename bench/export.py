"""`kaggle-kit export` on a real backbone: each format, loaded by its own runtime, against `predict`.

Against the local server (``kaggle_local``) in a scratch project under ``--work``, it runs
``fetch cifar-10-mini``, ``train cifar-10-mini --folds 2 --size 64 --head-epochs 3`` (efficientnet_lite0,
ImageNet weights converted offline) and ``export --format F`` for every format, as a user would. Then, in
a fresh process, it fits 50 test images to the square as the export's input contract says
(``kaggle_kit.data.resize.resize`` with the run's mode), runs each export with its own runtime
(tf.saved_model, Keras, onnxruntime, tf.lite) and prints its size and the largest difference from
``Predictor.predict_batch(images, tta=True)``.

Example:
    python bench/export.py          # about 5 minutes on 2 busy cores
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

SLUG = "cifar-10-mini"
FORMATS = ("savedmodel", "keras", "onnx", "tflite")

CHECK = r'''
import glob, json, sys
from pathlib import Path
import cv2, numpy as np

home = Path(sys.argv[1])
folder = home / "exports" / "cifar-10-mini"
info = json.loads(sorted(folder.glob("*.onnx.json"))[-1].read_text())
size, mode = info["input"]["shape"][1], info["input"]["resize"]
from kaggle_kit.data.resize import resize
files = sorted(glob.glob(str(home / "data/cifar-10-mini/test/*.jpg")))[:50]
images = np.stack([resize(cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB), size, mode) for f in files])
images = images.astype(np.float32)
from kaggle_kit.prediction.predictor import Predictor
from kaggle_kit.project import Project
from kaggle_kit.training.runs import load_run
expected = Predictor.from_run(load_run(Project(home), "cifar-10-mini", info["run_id"])).predict_batch(images, tta=True)
stem = str(folder / f"{info['run_id']}-tta")
import keras, onnxruntime, tensorflow as tf
import kaggle_kit.model.classifier  # noqa: F401  (the .keras archive names the kit's layers)
saved = tf.saved_model.load(stem + ".savedmodel")
got = {"savedmodel": saved.serve(images).numpy(),
       "keras": keras.saving.load_model(stem + ".keras").predict(images, verbose=0),
       "onnx": onnxruntime.InferenceSession(stem + ".onnx").run(None, {"image": images})[0]}
lite = tf.lite.Interpreter(model_path=stem + ".tflite")
index = lite.get_input_details()[0]["index"]
lite.resize_tensor_input(index, images.shape)
lite.allocate_tensors()
lite.set_tensor(index, images)
lite.invoke()
got["tflite"] = lite.get_tensor(lite.get_output_details()[0]["index"])
for name, proba in got.items():
    path = Path(stem + "." + name)
    size_mb = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    print(f"{name:10s} {size_mb / 1e6:6.1f} MB  max |export - predict| = {np.abs(proba - expected).max():.1e}  "
          f"same argmax: {(proba.argmax(1) == expected.argmax(1)).mean():.0%}", flush=True)
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path(".cache/scratch/export"), help="scratch project folder")
    args = parser.parse_args()
    from kaggle_local import LocalKaggleServer

    home = args.work.resolve()
    home.mkdir(parents=True, exist_ok=True)
    steps = [("fetch", SLUG), ("train", SLUG, "--folds", "2", "--size", "64", "--head-epochs", "3"),
             *[("export", SLUG, "--format", fmt) for fmt in FORMATS]]
    with tempfile.TemporaryDirectory(prefix="bench-export-") as scratch_home, \
            LocalKaggleServer(scoring_delay=1.0) as server:
        env = {**server.environ(Path(scratch_home)), "KAGGLE_KIT_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
        for step in steps:
            print(f"$ kaggle-kit {shlex.join(step)}", flush=True)
            if subprocess.run([sys.executable, "-m", "kaggle_kit", *step], env=env, cwd=home).returncode:
                return 1
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    return subprocess.run([sys.executable, "-c", CHECK, str(home)],
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}).returncode


if __name__ == "__main__":
    sys.exit(main())
