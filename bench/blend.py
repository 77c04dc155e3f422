"""Blend benchmark: does a blend of runs beat its best single run on the test set, and what do
calibration, fold averaging, TTA and the blend's space do to the log loss, on OOF and on a shifted hold-out?

    nice -n 10 .venv/bin/python bench/blend.py --limit 4000 --size 96 --runs efficientnet_lite0 efficientnet_lite1

Like bench/accuracy.py it starts the local Kaggle-compatible server on ``../shared/competitions`` and
works in a fresh scratch project (``.cache/scratch/blend-bench``): ``kaggle-kit fetch cifar-10``, one
``train`` per backbone in ``--runs`` (the same ``--limit`` sample and the same ``--folds``, so their
folds are shared; a head on cached features unless ``--epochs``), ``blend``, and ``submit --run`` for
each run and the blend; each submission is scored on the whole test set against ``solution.csv``.

Then, in this process, for each run and the blend: the OOF log loss and ECE (15 bins) raw and
calibrated (temperature + floor, nested CV), and on a *shifted hold-out*: ``--shifted`` training images
outside the sample, blurred, lower in contrast and colour-shifted (a distribution no fold model saw),
the log loss and ECE of one fold model, of the fold mean, with flip TTA, calibrated, and of the
blend in linear and log space. Output: ``key=value`` lines.

With ``--trained RUN_DIR ...`` it blends runs trained elsewhere instead (for example the full-size runs
``bench/accuracy.py cifar-10 --budget 20m --keep`` leaves): they are copied into the scratch project
and blended, each run and the blend submitted and scored; their folds must match, which ``blend``
checks. The shifted hold-out is skipped for them: a holdout run trained on every image outside its
holdout, so no unseen training image is left to shift.

    .venv/bin/python bench/blend.py --trained <scratch-a>/checkpoints/cifar-10/<run-a> <scratch-b>/checkpoints/cifar-10/<run-b>
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kaggle_local import LocalKaggleServer  # noqa: E402
from kaggle_kit.metrics import get_metric  # noqa: E402
from kaggle_kit.prediction.calibrate import ece, fit_calibration  # noqa: E402
from kaggle_kit.prediction.submission import read_as_proba  # noqa: E402
from kaggle_kit.project import Project  # noqa: E402

SLUG = "cifar-10"
LL = get_metric("log_loss")


def kit(env: dict, *args: str) -> str:
    print(f"$ kaggle-kit {' '.join(args)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "kaggle_kit", *args], env=env, cwd=env["KAGGLE_KIT_HOME"],
                          capture_output=True, text=True)
    print(proc.stdout[-3000:], proc.stderr[-2000:] if proc.returncode else "", f"[{time.perf_counter() - t0:.0f}s]",
          flush=True)
    if proc.returncode:
        raise SystemExit(f"failed: kaggle-kit {' '.join(args)}")
    return proc.stdout


def test_score(scratch: Path, competition, run_id: str, shared: Path) -> float:
    submission = next((scratch / "submissions" / SLUG).glob(f"{run_id}*.csv"))
    ids, proba = read_as_proba(competition, submission)
    sol_ids, sol = read_as_proba(competition, shared / SLUG / "solution.csv")
    order = {i: n for n, i in enumerate(ids)}
    return competition.scorer(sol.argmax(axis=1), proba[[order[i] for i in sol_ids]])


def shift(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur, lower contrast, shift the colour: what the fold models never saw."""
    import cv2

    out = []
    for img in images:
        x = cv2.GaussianBlur(img, (0, 0), 1.2).astype(np.float32)
        x = (x - x.mean()) * 0.6 + x.mean() + rng.uniform(-25, 25, 3)
        out.append(np.clip(x, 0, 255).astype(np.uint8))
    return np.stack(out)


def shifted_images(project: Project, competition, used: set[str], n: int, size: int, seed: int = 0):
    """``n`` training images outside the runs' sample, shifted, at ``size`` px, and their labels."""
    from kaggle_kit.data.images import decode_rgb
    from kaggle_kit.data.manifest import build_manifest
    from kaggle_kit.data.resize import resize

    manifest = build_manifest(competition, project.data_root(SLUG), "train", cache_dir=project.cache)
    rng = np.random.default_rng(seed)
    rows = [k for k in rng.permutation(len(manifest)) if manifest.ids[k] not in used][:n]
    images = np.stack([resize(decode_rgb(Path(manifest.paths[k]).read_bytes()), size, "stretch") for k in rows])
    return shift(images, rng), np.asarray(manifest.labels)[rows]


def per_fold(predictor, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each fold model's probabilities on the images and on their mirrors: (folds, n, classes) twice."""
    import cv2

    if images.shape[1] != predictor.image_size:
        images = np.stack([cv2.resize(i, (predictor.image_size,) * 2, interpolation=cv2.INTER_AREA) for i in images])
    x = images.astype(np.float32)
    plain, flipped = [], []
    for model in predictor.models:
        p = np.asarray(model.predict(np.concatenate([x, x[:, :, ::-1]]), batch_size=64, verbose=0), np.float64)
        plain.append(p[:len(x)])
        flipped.append(p[len(x):])
    return np.stack(plain), np.stack(flipped)


def line(name: str, y: np.ndarray, p: np.ndarray) -> str:
    return f"{name}_ll={LL(y, p):.4f} {name}_ece={ece(y, p):.4f} {name}_acc={np.mean(p.argmax(1) == y):.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", default=["efficientnet_lite0", "efficientnet_lite1"])
    parser.add_argument("--limit", type=int, default=4000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--head-epochs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=0, help="phase 2 epochs (0: a head on cached features)")
    parser.add_argument("--shifted", type=int, default=400, help="shifted hold-out images")
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "competitions"))
    parser.add_argument("--scratch", default=str(REPO / ".cache" / "scratch" / "blend-bench"))
    parser.add_argument("--keep", action="store_true", help="reuse a scratch project's fetched data")
    parser.add_argument("--trained", nargs="+", metavar="RUN_DIR",
                        help="blend these finished run folders instead of training (no shifted hold-out)")
    parser.add_argument("--analyse-only", action="store_true",
                        help="only the in-process measurements, on the runs a previous call left in --scratch")
    args = parser.parse_args()

    scratch, shared = Path(args.scratch).resolve(), Path(args.shared).resolve()
    env_base = {"KAGGLE_KIT_HOME": str(scratch), "KAGGLE_KIT_COMPETITIONS": str(REPO / "competitions"),
                "KAGGLE_KIT_CACHE": str(scratch / ".cache")}
    if args.analyse_only:
        folders = sorted((scratch / "checkpoints" / SLUG).iterdir(), key=lambda p: p.stat().st_mtime)
        run_ids = [p.name for p in folders if not p.name.startswith("blend-")]
        [blend_id] = [p.name for p in folders if p.name.startswith("blend-")]
        return analyse(args, scratch, shared, env_base, run_ids, blend_id, wall=float("nan"))
    if scratch.exists() and not args.keep:
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    for sub in ("checkpoints", "submissions"):
        shutil.rmtree(scratch / sub, ignore_errors=True)
    served = {p.stem: p for p in (REPO / "bench" / "served").glob("*.json") if (shared / p.stem).is_dir()}
    started = time.perf_counter()
    with LocalKaggleServer(root=shared, competition_json=served) as server:
        env = {**os.environ, **server.environ(scratch / "home"), **env_base}
        kit(env, "fetch", SLUG)
        run_ids = []
        for folder in map(Path, args.trained or []):
            shutil.copytree(folder, scratch / "checkpoints" / SLUG / folder.name)
            run_ids.append(folder.name)
        for backbone in [] if args.trained else args.runs:
            before = {p.name for p in (scratch / "checkpoints" / SLUG).glob("*")} if (scratch / "checkpoints").is_dir() else set()
            kit(env, "train", SLUG, "--backbone", backbone, "--size", str(args.size), "--limit", str(args.limit),
                "--folds", str(args.folds), "--head-epochs", str(args.head_epochs), "--epochs", str(args.epochs))
            [new] = {p.name for p in (scratch / "checkpoints" / SLUG).glob("*")} - before
            run_ids.append(new)
        kit(env, "blend", SLUG, *run_ids)
        [blend_id] = [p.name for p in (scratch / "checkpoints" / SLUG).glob("blend-*")]
        for run_id in [*run_ids, blend_id]:
            kit(env, "submit", SLUG, "--run", run_id, "-m", f"bench blend {run_id}")
        kit(env, "status", SLUG, "--wait", "--timeout", "300")
    return analyse(args, scratch, shared, env_base, run_ids, blend_id, wall=time.perf_counter() - started)


def analyse(args, scratch: Path, shared: Path, env_base: dict, run_ids: list[str], blend_id: str, *,
            wall: float) -> int:
    """Test scores of each run and the blend, then calibration on OOF and on the shifted hold-out."""
    os.environ.update(env_base)
    project = Project(scratch)
    competition = project.competition(SLUG)
    from kaggle_kit.prediction.predictor import Predictor
    from kaggle_kit.training.blend import combine, fit_blend
    from kaggle_kit.training.cv import load_oof
    from kaggle_kit.training.runs import load_run

    runs = [load_run(project, SLUG, r) for r in run_ids]
    blend = load_run(project, SLUG, blend_id)
    scores = {r: test_score(scratch, competition, r, shared) for r in [*run_ids, blend_id]}
    best_single = max(scores[r] for r in run_ids)
    names = [f"{r.config.backbone}@{r.image_size}" for r in runs] if args.trained else args.runs
    sample = (f"limit={runs[0].config.limit or 'all'} holdout={runs[0].config.holdout}" if args.trained else
              f"size={args.size} limit={args.limit} folds={args.folds}")
    print(f"bench=blend competition={SLUG} runs={'+'.join(names)} {sample} " + " ".join(f"test_{r.config.backbone}={scores[r.run_id]:.4f} cv_{r.config.backbone}="
                                             f"{r.cv:.4f}" for r in runs)
          + f" test_blend={scores[blend_id]:.4f} cv_blend_nested={blend.cv:.4f} best_single_test={best_single:.4f} "
          f"blend_gain={scores[blend_id] - best_single:+.4f} method={blend.method} space={blend.space} "
          f"weights={'/'.join(f'{w:.3f}' for w in blend.weights)} wall_s={wall:.0f}")

    oofs = [load_oof(r.path / "oof.csv", r.classes) for r in runs]
    y = oofs[0].y_true
    for r, o in zip(runs, oofs):
        cal = fit_calibration(o.y_true, o.proba, o.folds)
        print(f"oof run={r.config.backbone} raw_ll={cal.raw_log_loss:.4f} calibrated_ll_nested={cal.nested_log_loss:.4f} "
              f"raw_ece={cal.raw_ece:.4f} calibrated_ece_nested={cal.nested_ece:.4f} temperature={cal.temperature:.3f} "
              f"floor={cal.floor:g} used={cal.used}")
    for space in ("linear", "log"):
        fit = fit_blend(LL, y, [o.proba for o in oofs], oofs[0].folds, ids=oofs[0].ids, methods=("scipy",),
                        spaces=(space,))
        cal = fit_calibration(y, fit.oof, oofs[0].folds)
        print(f"oof blend space={space} nested_ll={fit.cv.score:.4f} nested_ece={ece(y, fit.oof):.4f} "
              f"calibrated_ll_nested={cal.nested_log_loss:.4f} calibrated_ece_nested={cal.nested_ece:.4f}")

    if args.trained:
        print("shifted: skipped (runs trained elsewhere: no training image outside their folds is unseen)")
        print(json.dumps({"load_avg": os.getloadavg()}))
        return 0
    used = set(oofs[0].ids)
    images, labels = shifted_images(project, competition, used, args.shifted, max(r.image_size for r in runs))
    fold_means = []
    for r, o in zip(runs, oofs):
        plain, flipped = per_fold(Predictor.from_run(r), images)
        cal = fit_calibration(o.y_true, o.proba, o.folds)
        mean, tta = plain.mean(0), (plain.mean(0) + flipped.mean(0)) / 2
        fold_means.append(tta)
        print(f"shifted run={r.config.backbone} n={len(labels)} " + " ".join([
            line("one_fold", labels, plain[0]), line("fold_mean", labels, mean), line("fold_mean_tta", labels, tta),
            line("calibrated", labels, cal.apply(tta)) + f" temperature={cal.temperature:.3f} floor={cal.floor:g}"]))
    for space in ("linear", "log"):
        p = combine(fold_means, blend.weights, space)
        cal = fit_calibration(y, combine([o.proba for o in oofs], blend.weights, space), oofs[0].folds)
        print(f"shifted blend space={space} " + line("blend", labels, p) + " " + line("calibrated", labels, cal.apply(p)))
    print(json.dumps({"load_avg": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
