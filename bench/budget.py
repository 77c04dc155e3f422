"""Budget benchmark: ``kaggle-kit train --budget`` on competitions the planner was never tuned on.

    .venv/bin/python bench/budget.py --budget 2m
    .venv/bin/python bench/budget.py --budget 2m --only grey-ships

From the cifar-10 archive in ``../shared/competitions`` it derives small competitions in a scratch
project (``.cache/scratch/budget/``): other class pairs and triples, grey images, images turned by 90
degrees (a random quarter turn each, so orientation carries no label), each as class folders with a
plugin ``kaggle-kit new``-style, then runs ``kaggle-kit train <slug> --budget`` on each from a cold
cache (``--warm`` keeps the probe cache between them, as a user's second competition would) and
ends each with one ``key=value`` line:

    competition= budget_s= wall_s= over= plan= cv= estimate_s= spent_s= probed= stopped=

``over`` is the wall time over the budget (``wall_s / budget_s - 1``); ``stopped`` counts the
phases the deadline cut short.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kaggle_kit.config import parse_budget  # noqa: E402

PLUGIN = '''"""{title} (derived from cifar-10 by bench/budget.py)."""
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders

COMPETITION = Competition(slug="{slug}", classes={classes!r}, metric="accuracy", train=ClassFolders(folder="train"),
                          submission=Submission())
'''

# slug -> (classes, transform, images per class)
DERIVED = {
    "cats-dogs": (("cat", "dog"), "none", 300),
    "grey-ships": (("airplane", "ship", "truck"), "grey", 200),
    "turned-animals": (("bird", "deer", "frog", "horse"), "turn", 150),
}


def derive(archive: Path, root: Path, slug: str) -> None:
    """Write competition ``slug`` (its plugin and data) under ``root`` from the cifar-10 ``archive``."""
    classes, transform, per_class = DERIVED[slug]
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(archive) as z:
        labels = [line.split(",") for line in z.read("trainLabels.csv").decode().split()[1:]]
        for c in classes:
            ids = [i for i, label in labels if label == c][:per_class]
            folder = root / "data" / slug / "train" / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in ids:
                img = cv2.imdecode(np.frombuffer(z.read(f"train/{i}.jpg"), np.uint8), cv2.IMREAD_COLOR)
                if transform == "grey":
                    img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
                elif transform == "turn":
                    img = np.ascontiguousarray(np.rot90(img, int(rng.integers(0, 4))))
                cv2.imwrite(str(folder / f"{i}.png"), img)
    (root / "competitions").mkdir(parents=True, exist_ok=True)
    (root / "competitions" / f"{slug.replace('-', '_')}.py").write_text(
        PLUGIN.format(title=f"{' / '.join(classes)} ({transform})", slug=slug, classes=classes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", default="2m")
    parser.add_argument("--only", action="append", choices=sorted(DERIVED))
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "competitions"))
    parser.add_argument("--scratch", default=str(REPO / ".cache" / "scratch" / "budget"))
    parser.add_argument("--warm", action="store_true", help="keep the probe cache from one competition to the next")
    args = parser.parse_args()
    budget_s = parse_budget(args.budget)
    scratch = Path(args.scratch)
    shutil.rmtree(scratch, ignore_errors=True)
    for slug in args.only or list(DERIVED):
        derive(Path(args.shared) / "cifar-10" / "cifar-10.zip", scratch, slug)
        if not args.warm:
            shutil.rmtree(scratch / ".cache", ignore_errors=True)
        env = {**os.environ, "KAGGLE_KIT_HOME": str(scratch), "KAGGLE_KIT_COMPETITIONS": str(scratch / "competitions"),
               "KAGGLE_KIT_CACHE": str(scratch / ".cache"), "PYTHONPATH": str(REPO)}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "kaggle_kit", "train", slug, "--budget", args.budget],
                              env=env, cwd=scratch, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        print(proc.stdout, end="")
        if proc.returncode != 0:
            print(f"competition={slug} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        run = json.loads(next((scratch / "checkpoints" / slug).glob("*/run.json")).read_text())
        plan = run["plan"]
        stopped = proc.stdout.count("to end within the budget")
        print(f"competition={slug} budget_s={budget_s:.0f} wall_s={wall:.0f} over={wall / budget_s - 1:+.2f} "
              f"plan=\"{plan['plan']}\" cv={run['cv']:.4f} estimate_s={plan['estimate_s']:.0f} "
              f"spent_s={plan['spent_s']:.0f} probed={','.join(plan['probed']) or 'cached'} stopped={stopped}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
