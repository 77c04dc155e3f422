"""Accuracy benchmark: the whole loop on a real competition, as a user runs it, from a cold start.

    .venv/bin/python bench/accuracy.py cifar-10 --recipe fast
    .venv/bin/python bench/accuracy.py pistolas-vs-smartphones --recipe fast
    .venv/bin/python bench/accuracy.py pistolas-vs-smartphones --budget 2m
    .venv/bin/python bench/accuracy.py cifar-10 --budget 20m

It starts the local Kaggle-compatible server on ``../shared/competitions`` (each competition's
``competition.json``, its metric and submission format, from ``bench/served/<slug>.json``: the
shared folder is not written to), then in a fresh scratch
project (empty data, checkpoints and caches) runs ``kaggle-kit fetch``, ``train --recipe`` (or ``--budget``),
``submit --best`` and ``status``, and ends with one ``key=value`` line:

    competition= recipe= budget= backbone= size= folds= cv= test= wall_s= fetch_s= train_s= submit_s= status_s= peak_rss_mb= plan=

``plan`` is a ``--budget`` run's plan as ``run.json`` records it ("-" for a recipe).

``test`` is the metric on the whole test set against ``solution.csv`` (``none`` without one; the
``status`` step prints the server's public and private scores); ``peak_rss_mb`` is the largest
resident memory of any step (ru_maxrss of the child processes).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kaggle_kit.project import Project  # noqa: E402
from kaggle_local import LocalKaggleServer  # noqa: E402
from kaggle_kit.prediction.submission import read_as_proba  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("competition")
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--budget", help="train with --budget TIME (the planner) instead of a recipe")
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "competitions"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch project")
    args, extra = parser.parse_known_args()   # unknown options go to `kaggle-kit train`

    slug = args.competition
    scratch = Path(tempfile.mkdtemp(prefix=f"kk-bench-{slug}-"))
    env_base = {"KAGGLE_KIT_HOME": str(scratch), "KAGGLE_KIT_COMPETITIONS": str(REPO / "competitions"),
                "KAGGLE_KIT_CACHE": str(scratch / ".cache")}
    how = ("--budget", args.budget) if args.budget else ("--recipe", args.recipe)
    steps = [("fetch", slug), ("train", slug, *how, *extra),
             ("submit", slug, "--best", "-m", f"bench {args.recipe}"), ("status", slug, "--wait", "--timeout", "300")]
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    peak_kb = 0
    served = {p.stem: p for p in (REPO / "bench" / "served").glob("*.json") if (Path(args.shared) / p.stem).is_dir()}
    with LocalKaggleServer(root=args.shared, competition_json=served) as server:
        env = {**server.environ(scratch / "home"), **env_base}
        for step in steps:
            print(f"$ kaggle-kit {' '.join(step)}", flush=True)
            t0 = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "kaggle_kit", *step], env=env, cwd=scratch)
            _, status, usage = os.wait4(proc.pid, 0)
            code = os.waitstatus_to_exitcode(status)
            seconds[step[0]] = time.perf_counter() - t0
            peak_kb = max(peak_kb, usage.ru_maxrss)
            print(f"[{step[0]}: {seconds[step[0]]:.0f}s, peak RSS {usage.ru_maxrss / 1024:.0f} MB]", flush=True)
            if code != 0:
                print(f"bench failed at `kaggle-kit {' '.join(step)}` (exit {code}); scratch kept at {scratch}")
                return code
    wall = time.perf_counter() - started
    peak_mb = peak_kb / 1024

    competition = Project(REPO).competition(slug)
    run_json = next((scratch / "checkpoints" / slug).glob("*/run.json"))
    run = json.loads(run_json.read_text())
    submission = next((scratch / "submissions" / slug).glob("*.csv"))
    test = "none"
    solution = Path(args.shared) / slug / "solution.csv"
    if solution.is_file():
        ids, proba = read_as_proba(competition, submission)
        sol_ids, sol = read_as_proba(competition, solution)
        order = {i: n for n, i in enumerate(ids)}
        p = proba[[order[i] for i in sol_ids]]
        test = f"{competition.scorer(sol.argmax(axis=1), p):.4f}"
    cfg = run["config"]
    n_splits = run.get("n_splits")
    plan = (run.get("plan") or {}).get("plan", "-")
    print(f"competition={slug} recipe={'-' if args.budget else args.recipe} budget={args.budget or '-'} "
          f"backbone={cfg['backbone']} size={cfg['image_size']} "
          f"folds={n_splits} cv={run['cv']:.4f} test={test} wall_s={wall:.0f} "
          f"{' '.join(f'{k}_s={v:.0f}' for k, v in seconds.items())} "
          f"peak_rss_mb={peak_mb:.0f} plan=\"{plan}\"")
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
