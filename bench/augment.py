"""Augmentation and TTA benchmark: one-pass vs chained resampling speed, and TTA's out-of-fold gain.

    .venv/bin/python bench/augment.py speed --size 128 --batch 64 --repeats 5
    .venv/bin/python bench/augment.py tta --images 2000 --size 96

``speed`` times every augmentation preset on the same float batch (each preset's call compiled once
with ``tf.function``, interleaved repeats, medians), prints one ``key=value`` line per preset and a
last line with the ``seed`` (one affine pass) over ``seed_chained`` (five Keras layers) ratio; it
also prints how far one pass is from the chain with the same parameters (the interpolation error
the chain adds, on a smooth image).

``tta`` builds two competitions from one stratified sample of cifar-10's training images (read
straight from ``../shared/competitions/cifar-10/cifar-10.zip``) in a scratch project under the
repository's ignored ``.cache/scratch/``: ``cifar-sub`` (the images as they are, symmetry
``hflip``) and ``cifar-rot`` (each image turned by a random quarter turn and mirrored at random, so
every flip and turn keeps the class: symmetry ``d8``), trains each with ``kaggle-kit train`` and
prints every TTA policy's out-of-fold CV from ``run.json`` and the policy the run chose.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# -- speed ------------------------------------------------------------------------------------------
def speed(args: argparse.Namespace) -> None:
    import numpy as np
    import tensorflow as tf

    from kaggle_kit.data.augment import list_augments, make_augment

    tf.get_logger().setLevel("ERROR")        # one trace per preset is the point, not a retracing problem
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype(np.float32))
    y = tf.constant(np.eye(10, dtype=np.float32)[np.arange(args.batch) % 10])
    names = [n for n in list_augments() if n != "none"]
    fns = {n: tf.function(lambda a, b, aug=make_augment(n, 0): aug(a, b)) for n in names}
    for fn in fns.values():
        fn(x, y)                                           # trace and warm up
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.repeats):
        for n in names:                                    # interleaved: the load hits every preset alike
            t0 = time.perf_counter()
            for _ in range(args.calls):
                out = fns[n](x, y)
            _ = out[0].numpy()
            times[n].append((time.perf_counter() - t0) / (args.calls * args.batch) * 1000)
    light = statistics.median(times["light"])
    for n in names:
        med = statistics.median(times[n])
        print(f"preset={n} size={args.size} batch={args.batch} repeats={args.repeats} ms_per_image={med:.3f} "
              f"relative_to_light={med / light:.2f}")
    one, chained = statistics.median(times["seed"]), statistics.median(times["seed_chained"])
    print(f"seed_one_pass_ms={one:.3f} seed_chained_ms={chained:.3f} chained_over_one_pass={chained / one:.2f} "
          f"interpolation_gap={interpolation_gap(args.size):.3f} load_avg={load()}")


def interpolation_gap(size: int) -> float:
    """Mean |one pass - chained Keras layers| (0-255 scale, interior) with the same fixed parameters."""
    import keras
    import numpy as np
    import tensorflow as tf

    from kaggle_kit.data.geometry import affine_matrices, apply_matrices
    from kaggle_kit.symmetry import view_matrix

    yy, xx = np.mgrid[0:size, 0:size]
    img = np.stack([np.sin(xx / 5.0) + yy / 10.0, np.cos(yy / 4.0) + xx / 12.0, xx * yy / (size * size / 3)], -1)
    x = (img * 50 + 100)[None].astype(np.float32)
    chained = x[:, :, ::-1]
    for layer in (keras.layers.RandomRotation((0.04, 0.04), fill_mode="reflect"),
                  keras.layers.RandomTranslation((0.05, 0.05), (-0.05, -0.05), fill_mode="reflect"),
                  keras.layers.RandomZoom((0.1, 0.1), fill_mode="reflect")):
        chained = np.asarray(layer(chained, training=True))
    m = affine_matrices(size, view=tf.constant(view_matrix("hflip", size)[None], tf.float32),
                        angle=tf.constant([0.04 * 2 * math.pi]), zoom=tf.constant([0.1]),
                        shift_x=tf.constant([-0.05]), shift_y=tf.constant([0.05]), shear=tf.constant([0.0]))
    single = np.asarray(apply_matrices(x, m, fill_mode="reflect"))
    cut = slice(size // 4, -size // 4)
    return float(np.abs(chained[:, cut, cut] - single[:, cut, cut]).mean())


# -- tta --------------------------------------------------------------------------------------------
PLUGIN = '''
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders

COMPETITION = Competition(slug="{slug}", classes={classes!r}, metric="accuracy", train=ClassFolders(),
                          submission=Submission(), symmetries="{symmetry}")
'''


def make_competitions(root: Path, zip_path: Path, images: int, seed: int) -> list[str]:
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(zip_path) as z:
        labels_name = next(n for n in z.namelist() if n.endswith("trainLabels.csv"))
        rows = list(csv.DictReader(io.TextIOWrapper(z.open(labels_name))))
        classes = tuple(sorted({r["label"] for r in rows}))
        per_class = images // len(classes)
        picked = [r for c in classes for r in [r for r in rows if r["label"] == c][:per_class]]
        prefix = labels_name[: -len("trainLabels.csv")]
        for slug, symmetry in (("cifar-sub", "hflip"), ("cifar-rot", "d8")):
            (root / "competitions").mkdir(parents=True, exist_ok=True)
            (root / "competitions" / f"{slug.replace('-', '_')}.py").write_text(
                PLUGIN.format(slug=slug, classes=classes, symmetry=symmetry))
        for r in picked:
            name = next(f"{prefix}train/{r['id']}{ext}" for ext in (".jpg", ".png")
                        if f"{prefix}train/{r['id']}{ext}" in z.NameToInfo)
            img = cv2.imdecode(np.frombuffer(z.read(name), np.uint8), cv2.IMREAD_COLOR)
            for slug, turn in (("cifar-sub", False), ("cifar-rot", True)):
                out = img
                if turn:
                    out = np.rot90(img[:, ::-1] if rng.random() < 0.5 else img, int(rng.integers(4)))
                folder = root / "data" / slug / "train" / r["label"]
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / f"{r['id']}.png"), np.ascontiguousarray(out))
    return ["cifar-sub", "cifar-rot"]


def tta(args: argparse.Namespace) -> None:
    root = REPO / ".cache" / "scratch" / f"tta-bench-{args.images}"
    if not (root / "data").is_dir():
        make_competitions(root, Path(args.zip), args.images, args.seed)
    env = {**os.environ, "KAGGLE_KIT_HOME": str(root), "KAGGLE_KIT_CACHE": str(root / ".cache"),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("KAGGLE_KIT_COMPETITIONS", None)
    for slug in ("cifar-sub", "cifar-rot"):
        cmd = [sys.executable, "-m", "kaggle_kit", "train", slug, "--folds", str(args.folds), "--size",
               str(args.size), "--head-epochs", str(args.head_epochs), *args.extra]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=root, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
        if proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-3000:])
            raise SystemExit(proc.returncode)
        run_dir = Path(proc.stdout.split(" -> ", 1)[1].split()[0])
        rec = json.loads((run_dir / "run.json").read_text())
        cvs = " ".join(f"cv_{k}={v['score']:.4f}" for k, v in rec["tta_cv"].items())
        print(f"competition={slug} symmetry={'d8' if slug == 'cifar-rot' else 'hflip'} images={rec['train_size']} "
              f"folds={rec['n_splits']} size={args.size} {cvs} chosen={rec['tta']} "
              f"wall_s={time.perf_counter() - t0:.0f} load_avg={load()}")
        print(f"  {rec['tta_note']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--batch", type=int, default=64)
    s.add_argument("--calls", type=int, default=5)
    s.add_argument("--repeats", type=int, default=5)
    t = sub.add_parser("tta")
    t.add_argument("--images", type=int, default=2000)
    t.add_argument("--size", type=int, default=96)
    t.add_argument("--folds", type=int, default=5)
    t.add_argument("--head-epochs", type=int, default=20)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--zip", default=str(REPO.parent / "shared" / "competitions" / "cifar-10" / "cifar-10.zip"))
    args, extra = parser.parse_known_args()
    args.extra = extra
    (speed if args.what == "speed" else tta)(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
