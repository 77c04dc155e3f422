"""The speed probe behind ``--budget``: images per second of a backbone at a size on this machine.

:func:`probe` builds the classifier (random weights: speed does not depend on them) and times a few
batches of random images through each part the planner may train: the layers below a cut (the one
pass that caches activations), the layers above it (a training step and a forward pass on the
activations), and the save of a checkpoint. :class:`Speeds` holds the answer; it is cached per
machine, backbone and size in ``<cache>/probe/<machine>.json``, so a second run does not probe
again (the planner still counts the probe's time in the budget when it ran).

Example:
    >>> s = Speeds(backbone="efficientnet_lite0", size=128, build_s=2.0, save_s=0.5,
    ...            bottom_ips={"block7_add": 300.0, "block14_add": 200.0},
    ...            top_train_ips={"block7_add": 60.0, "block14_add": 400.0},
    ...            top_forward_ips={"block7_add": 200.0, "block14_add": 1200.0})
    >>> round(s.features_ips(), 1)             # the pooled features: the bottom and top of the last cut
    171.4
    >>> s.scaled(256).bottom_ips["block7_add"]   # a larger side costs its area
    75.0
"""
from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kaggle_kit.atomic import atomic_write_json
from kaggle_kit.events import Report, Stage, quiet

__all__ = ["Speeds", "probe", "machine_id", "ProbeCache", "BATCH"]

BATCH = 32          # images per timed batch
REPEATS = 2         # timed batches after one warm-up batch (the warm-up traces the graph)


@dataclass(frozen=True, kw_only=True)
class Speeds:
    """What one backbone at one side ``size`` does per second on this machine, per cut layer."""

    backbone: str
    size: int
    build_s: float                          # building the classifier
    save_s: float                           # writing one checkpoint of it
    bottom_ips: dict[str, float]            # images/s through the layers below each cut (forward)
    top_train_ips: dict[str, float]         # images/s of a training step of the layers above it
    top_forward_ips: dict[str, float]       # images/s of a forward pass above it (validation)
    trace_s: dict[str, float] = field(default_factory=dict)   # the first training step above it: tracing
    probe_s: float = 0.0                    # how long measuring took
    measured: bool = True                   # False: scaled from a measurement at another size

    def features_ips(self) -> float:
        """Images/s of the whole frozen backbone: below and above the highest cut."""
        cut = max(self.bottom_ips, key=lambda c: self.top_forward_ips[c])   # the smallest (fastest) top
        return 1.0 / (1.0 / self.bottom_ips[cut] + 1.0 / self.top_forward_ips[cut])

    def scaled(self, size: int) -> "Speeds":
        """The same backbone at side ``size``: convolutions cost the image's area (bench/RESULTS.md
        "how the planner decides" measures how far that holds)."""
        f = (self.size / size) ** 2

        def scale(d: dict[str, float]) -> dict[str, float]:
            return {k: v * f for k, v in d.items()}

        return dataclasses.replace(self, size=size, bottom_ips=scale(self.bottom_ips),
                                   top_train_ips=scale(self.top_train_ips),
                                   top_forward_ips=scale(self.top_forward_ips), probe_s=0.0,
                                   measured=self.measured and size == self.size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Speeds":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def machine_id() -> str:
    """This machine as the probe cache names it: host, CPU count, architecture and TensorFlow's version
    (read from the installed package, so no TensorFlow import)."""
    from importlib.metadata import PackageNotFoundError, version

    tf = "none"
    for dist in ("tensorflow", "tensorflow-cpu"):
        try:
            tf = version(dist)
            break
        except PackageNotFoundError:
            continue
    raw = f"{platform.node()}-{os.cpu_count()}cpu-{platform.machine()}-tf{tf}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)


@dataclass
class ProbeCache:
    """The probe results of one machine: ``<cache>/probe/<machine>.json``, keyed ``backbone@size``."""

    path: Path
    entries: dict[str, Speeds] = field(default_factory=dict)

    @classmethod
    def open(cls, cache_dir: Path, machine: str | None = None) -> "ProbeCache":
        path = Path(cache_dir) / "probe" / f"{machine or machine_id()}.json"
        try:
            raw = json.loads(path.read_text())
            entries = {k: Speeds.from_dict(v) for k, v in raw.get("speeds", {}).items()}
        except (OSError, ValueError, TypeError):
            entries = {}
        return cls(path=path, entries=entries)

    def get(self, backbone: str, size: int) -> Speeds | None:
        return self.entries.get(f"{backbone}@{size}")

    def measured(self, backbone: str) -> list[Speeds]:
        return [s for s in self.entries.values() if s.backbone == backbone]

    def put(self, speeds: Speeds) -> None:
        self.entries[f"{speeds.backbone}@{speeds.size}"] = speeds
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, {"machine": self.path.stem,
                                      "speeds": {k: v.to_dict() for k, v in sorted(self.entries.items())}})


def probe(backbone: str, size: int, cuts: Sequence[str], *, n_classes: int = 10, cache_dir: Path,
          report: Report = quiet) -> Speeds:
    """Time ``backbone`` at ``size`` px on this machine: the layers below and above each of ``cuts``."""
    import keras

    from kaggle_kit.model.backbones import get_backbone
    from kaggle_kit.model.classifier import partial_backbone, save_model, top_model

    report(Stage(message=f"probing {backbone} at {size}px on this machine (cached for later runs)"))
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (BATCH, size, size, 3)).astype(np.float32)
    labels = np.eye(n_classes, dtype=np.float32)[rng.integers(0, n_classes, BATCH)]
    t0 = time.perf_counter()
    model = _classifier(get_backbone(backbone), n_classes, size, cache_dir)
    build_s = time.perf_counter() - t0
    bottom, train, forward, trace = {}, {}, {}, {}
    for cut in cuts:
        below = partial_backbone(model, cut)
        bottom[cut] = _ips(lambda: below.predict_on_batch(images))
        acts = np.asarray(below.predict_on_batch(images), dtype=np.float32)
        top = top_model(model, cut)
        top.compile(optimizer=keras.optimizers.Adam(1e-4), loss="categorical_crossentropy")
        t0 = time.perf_counter()
        top.train_on_batch(acts, labels)
        trace[cut] = round(time.perf_counter() - t0, 3)
        train[cut] = _ips(lambda: top.train_on_batch(acts, labels))
        forward[cut] = _ips(lambda: top.predict_on_batch(acts))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        save_model(model, Path(tmp) / "probe.keras")
        save_s = time.perf_counter() - t0
    return Speeds(backbone=backbone, size=size, build_s=round(build_s, 3), save_s=round(save_s, 3),
                  bottom_ips=bottom, top_train_ips=train, top_forward_ips=forward, trace_s=trace,
                  probe_s=round(time.perf_counter() - started, 2))


def _classifier(backbone, n_classes: int, size: int, cache_dir: Path):
    from kaggle_kit.model.classifier import build_model

    return build_model(backbone, n_classes=n_classes, image_size=size, weights="none", dropout=0.2,
                       cache_dir=cache_dir)


def _ips(step) -> float:
    """Images per second of ``step`` (one batch of :data:`BATCH`), after one warm-up call."""
    step()
    t0 = time.perf_counter()
    for _ in range(REPEATS):
        step()
    return round(BATCH * REPEATS / max(time.perf_counter() - t0, 1e-6), 2)
