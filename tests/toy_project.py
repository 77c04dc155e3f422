"""A tiny trainable project for the end-to-end and fault tests, and a way to run the CLI on it.

``make_project(root)`` writes ``competitions/toy.py`` (three colour classes, simple_cnn at 16 px)
and ``data/toy/{train/<class>/*.png, test/*.jpg}``: 20 noisy solid-colour images per class, so a
model learns it in a few epochs. ``kit(root, ...)`` runs ``kaggle-kit`` in a subprocess exactly as a
user would, with the project and cache under ``root``; ``kit_here`` runs the same entry point in the
test process (no second TensorFlow start-up) where the process boundary does not matter.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

KIT = Path(sys.executable).with_name("kaggle-kit")
CLASSES = ("red", "green", "blue")
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 220)}   # RGB

PLUGIN = '''
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders, TestFolder

COMPETITION = Competition(slug="toy", classes=("red", "green", "blue"), metric="accuracy",
    train=ClassFolders(), test=TestFolder(), submission=Submission(labels="name"),
    defaults={"backbone": "simple_cnn", "weights": "none", "image_size": 16, "head_epochs": 4,
              "batch_size": 16})
'''


def noisy(rgb: tuple[int, int, int], rng: np.random.Generator, shape: tuple[int, int] = (20, 24)) -> np.ndarray:
    """A BGR uint8 image of one colour plus noise (cv2 writes BGR)."""
    img = np.array(rgb[::-1], np.float32) + rng.normal(0, 25, (*shape, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_project(root: Path, per_class: int = 20, test: int = 12, seed: int = 0) -> Path:
    """Write the toy plugin and data under ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    (root / "competitions").mkdir(parents=True, exist_ok=True)
    (root / "competitions" / "toy.py").write_text(PLUGIN)
    for c in CLASSES:
        folder = root / "data" / "toy" / "train" / c
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cv2.imwrite(str(folder / f"{i}.png"), noisy(COLOURS[c], rng))
    folder = root / "data" / "toy" / "test"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(test):
        cv2.imwrite(str(folder / f"t{i}.jpg"), noisy(COLOURS[CLASSES[i % 3]], rng))
    return root


def kit_env(root: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "KAGGLE_KIT_HOME": str(root), "KAGGLE_KIT_CACHE": str(root / "cache"),
           "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200", **extra}
    env.pop("KAGGLE_KIT_COMPETITION", None)
    return env


def kit(root: Path, *args: str, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess:
    """Run ``kaggle-kit <args>`` on the project at ``root``; output captured as text."""
    return subprocess.run([str(KIT), *args], cwd=root, env=kit_env(root, **extra_env), capture_output=True,
                          text=True, timeout=timeout)


def kit_here(root: Path, *args: str, **extra_env: str) -> SimpleNamespace:
    """``kaggle-kit <args>`` in this process (its entry point, ``cli.main``): what a subprocess would
    print and return, without starting TensorFlow again. Output as ``stdout``/``stderr``."""
    import pytest

    from kaggle_kit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in kit_env(root, **extra_env).items():
            if os.environ.get(name) != value:
                mp.setenv(name, value)
        mp.delenv("KAGGLE_KIT_COMPETITION", raising=False)
        mp.chdir(root)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(args))
    return SimpleNamespace(returncode=rc, stdout=out.getvalue(), stderr=err.getvalue())


def start_kit(root: Path, *args: str, **extra_env: str) -> subprocess.Popen:
    """Start ``kaggle-kit <args>`` without waiting (for kill tests).

    SIGINT is reset to its default in the child: a test run started in the background by a
    non-interactive shell inherits SIGINT as ignored, and Ctrl-C tests would then test nothing.
    """
    return subprocess.Popen([str(KIT), *args], cwd=root, env=kit_env(root, **extra_env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def run_dirs(root: Path, slug: str = "toy") -> list[Path]:
    base = root / "checkpoints" / slug
    return sorted(d for d in base.iterdir() if (d / "run.json").is_file()) if base.is_dir() else []


def run_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())
