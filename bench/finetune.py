"""Fine-tuning options side by side: adam vs adamw, layer decay, BatchNorm, EMA, label smoothing.

    .venv/bin/python bench/finetune.py --train 2000 --test 1000 --size 96 --cut block7_add --epochs 3 --seeds 3

A scratch project (``.cache/scratch/finetune/``) gets a real subset of cifar-10: the first
``--train`` images of ``../shared/competitions/cifar-10/cifar-10.zip`` as its training set and the
next ``--test`` as its test set, labels known. In one process (the cached activations below the
cut are computed once and shared) every variant trains a holdout run per seed: the base recipe
(Lite0 ImageNet, the head on cached features, then ``--epochs`` epochs of everything above
``--cut`` on cached activations, cosine with warm-up, lr 1e-3), and the base with one option
changed. Each run is scored on its holdout (what picked its checkpoint, so slightly optimistic, the
EMA variant most) and on the unseen test images (no TTA: the trained weights alone).
One ``key=value`` line per run, then the medians per variant as a Markdown table.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VARIANTS: dict[str, dict] = {
    "base (adam)": {},
    "adamw wd 0.05": {"optimizer": "adamw", "weight_decay": 0.05},
    "layer decay 0.7": {"layer_decay": 0.7},
    "bn train": {"bn": "train"},
    "ema": {"ema": True},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    "all four (adamw, ld 0.7, ema, ls 0.1)": {"optimizer": "adamw", "weight_decay": 0.05, "layer_decay": 0.7,
                                              "ema": True, "label_smoothing": 0.1},
}


def make_subset(zip_path: Path, root: Path, n_train: int, n_test: int) -> None:
    """``data/cifar-10/`` holding the first n_train training images (trainLabels.csv, train/) and the
    next n_test as test/ (their labels in ``test_labels.csv`` beside the folder)."""
    data = root / "data" / "cifar-10"
    if (data / "trainLabels.csv").is_file():
        return
    with zipfile.ZipFile(zip_path) as zf:
        rows = list(csv.DictReader(io.TextIOWrapper(zf.open("trainLabels.csv"))))
        train, test = rows[:n_train], rows[n_train:n_train + n_test]
        for split, part in (("train", train), ("test", test)):
            (data / split).mkdir(parents=True, exist_ok=True)
            for r in part:
                (data / split / f"{r['id']}.jpg").write_bytes(zf.read(f"train/{r['id']}.jpg"))
    with (data / "trainLabels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "label"])
        w.writeheader()
        w.writerows(train)
    with (data / "sampleSubmission.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "label"])
        w.writerows([[r["id"], "cat"] for r in test])
    with (root / "test_labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "label"])
        w.writeheader()
        w.writerows(test)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--cut", default="block7_add")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    parser.add_argument("--scratch", default=str(REPO / ".cache" / "scratch" / "finetune"))
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "competitions"))
    args = parser.parse_args()

    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    make_subset(Path(args.shared) / "cifar-10" / "cifar-10.zip", scratch, args.train, args.test)
    os.environ.update(KAGGLE_KIT_HOME=str(scratch), KAGGLE_KIT_COMPETITIONS=str(REPO / "competitions"),
                      KAGGLE_KIT_CACHE=str(scratch / ".cache"))

    import numpy as np

    from kaggle_kit.metrics import log_loss
    from kaggle_kit.prediction.predictor import predict_test
    from kaggle_kit.project import Project
    from kaggle_kit.training.cv import load_oof
    from kaggle_kit.training.trainer import train

    project = Project(scratch)
    comp = project.competition("cifar-10")
    with (scratch / "test_labels.csv").open(newline="") as fh:
        truth = {r["id"]: comp.classes.index(r["label"]) for r in csv.DictReader(fh)}
    base = {"image_size": args.size, "holdout": 0.2, "head_epochs": 20, "finetune_epochs": args.epochs,
            "finetune_lr": 1e-3, "finetune_schedule": "cosine", "finetune_from": args.cut, "augment": "flip",
            "batch_size": 64}
    results: dict[str, list[dict]] = {}
    for seed in range(args.seeds):          # every variant once before any twice: a cut-short run still compares
        for name, change in VARIANTS.items():
            if args.only and name not in args.only:
                continue
            config = comp.config(None, {**base, **change, "seed": seed})
            t0 = time.perf_counter()
            run = train(project, comp, config)
            seconds = time.perf_counter() - t0
            oof = load_oof(run.path / "oof.csv", comp.classes)
            ids, proba, _ = predict_test(project, comp, run, tta=False)
            y = np.array([truth[i] for i in ids])
            row = {"val_acc": float((oof.y_pred == oof.y_true).mean()), "val_logloss": log_loss(oof.y_true, oof.proba),
                   "test_acc": float((proba.argmax(1) == y).mean()), "test_logloss": log_loss(y, proba),
                   "ema_chosen": sum(f.ema for f in run.folds), "train_s": seconds}
            results.setdefault(name, []).append(row)
            print(f"variant={name.replace(' ', '_')} seed={seed} " +
                  " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  flush=True)
    print(f"\nload average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\nmedians over {args.seeds} seed(s); {args.train} train images (holdout 0.2), {args.test} test images, "
          f"{args.size} px, fine-tuned above {args.cut} for {args.epochs} epochs\n")
    print("| variant | holdout acc | holdout log loss | test acc | test log loss | EMA kept | train s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        kept = sum(r["ema_chosen"] for r in rows)
        print(f"| {name} | {med['val_acc']:.4f} | {med['val_logloss']:.4f} | {med['test_acc']:.4f} | "
              f"{med['test_logloss']:.4f} | {kept}/{len(rows)} | {med['train_s']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
