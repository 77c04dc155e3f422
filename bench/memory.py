"""Peak resident memory of a full ``kaggle-kit train`` at several training-set sizes (issue #5).

For each ``--limit`` it runs, in a fresh process, the whole pipeline (manifest, image cache,
backbone features, k folds, out-of-fold CV):

    kaggle-kit train cifar-10 --limit N --folds 5 --size 128 --head-epochs 1 --epochs 0

and reports the process's peak RSS (``ru_maxrss`` from ``wait4``), with the largest RSS seen in
each stage (``/proc/<pid>/status`` sampled every 0.2 s). ``--again`` re-runs the first size to show
a second run with the same backbone reusing the image and feature caches. The project (and its
caches) is ``--work``; the data folder is linked into it. The last line is ``key=value`` fields.

Example:
    python bench/memory.py --data .cache/scratch/data --limits 10000 50000 --again
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KIT = Path(sys.executable).with_name("kaggle-kit")
# The repository's plugin with its holdout default dropped, so that --folds 5 means 5 folds
# (a plugin default holdout wins over --folds, and the CLI cannot unset it).
KFOLD_PLUGIN = '''"""{slug} as competitions/{name} states it, minus its holdout default (written by bench/memory.py)."""
import dataclasses
import importlib.util

_spec = importlib.util.spec_from_file_location("bench_memory_base", {path!r})
_base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_base)
COMPETITION = dataclasses.replace(
    _base.COMPETITION, defaults={{k: v for k, v in _base.COMPETITION.defaults.items() if k != "holdout"}})
'''


@dataclass
class Measured:
    limit: int
    peak_mb: float
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)     # stage line -> largest RSS seen (MB)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    tail: str = ""


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def measure(cmd: list[str], env: dict[str, str], limit: int) -> Measured:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                            cwd=env["KAGGLE_KIT_HOME"])
    stage = ["start"]
    began = {"start": start}
    stages: dict[str, float] = {}
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            text = line.strip()
            if text.startswith("fold "):
                text = "training the folds"
            elif text.startswith(("WARNING", "W0000", "I0000", "E0000")):   # library chatter, not a stage
                continue
            if text and text != stage[0]:
                stage[0] = text[:70]
                began.setdefault(stage[0], time.perf_counter())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while True:  # wait4, not poll(): it returns this child's own peak RSS
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        mb = rss_mb(proc.pid)
        if mb is not None:
            stages[stage[0]] = max(stages.get(stage[0], 0.0), mb)
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    peak = usage.ru_maxrss / 1024
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n" + "\n".join(lines[-20:]))
    order = sorted(began, key=began.get)
    stage_seconds = {s: round((began[order[i + 1]] if i + 1 < len(order) else time.perf_counter()) - began[s], 1)
                     for i, s in enumerate(order)}
    return Measured(limit, round(peak, 1), round(time.perf_counter() - start, 1), stages, stage_seconds,
                    "\n".join(lines[-3:]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding the unzipped <slug>/ folders")
    p.add_argument("--competition", default="cifar-10")
    p.add_argument("--work", type=Path, default=Path(".cache/scratch/mem"), help="the scratch project")
    p.add_argument("--limits", type=int, nargs="+", default=[10000, 50000])
    p.add_argument("--again", action="store_true", help="run the first limit a second time (cache reuse)")
    p.add_argument("--fresh", action="store_true", help="start from an empty project and cache")
    p.add_argument("--objects", action="store_true",
                   help="instead of training: the Python heap (tracemalloc) of the manifest and of "
                        "run.write_oof for each finished run of each --limits in --work")
    p.add_argument("train_args", nargs=argparse.REMAINDER,
                   help="after --: kaggle-kit train options (default: --folds 5 --size 128 --head-epochs 1 "
                        "--epochs 0)")
    args = p.parse_args(argv)
    if args.objects:
        return objects(args)
    train_args = [a for a in args.train_args if a != "--"] or ["--folds", "5", "--size", "128", "--head-epochs",
                                                                "1", "--epochs", "0"]
    if args.fresh:
        shutil.rmtree(args.work, ignore_errors=True)
    data = args.work / "data" / args.competition
    data.parent.mkdir(parents=True, exist_ok=True)
    if not data.exists():
        data.symlink_to((args.data / args.competition).resolve())
    name = args.competition.replace("-", "_") + ".py"
    (args.work / "competitions").mkdir(exist_ok=True)
    (args.work / "competitions" / name).write_text(
        KFOLD_PLUGIN.format(slug=args.competition, name=name, path=str(REPO / "competitions" / name)))
    env = {**os.environ, "KAGGLE_KIT_HOME": str(args.work), "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "160"}
    for var in ("KAGGLE_KIT_CACHE", "KAGGLE_KIT_COMPETITIONS", "KAGGLE_KIT_COMPETITION"):
        env.pop(var, None)
    plan = list(args.limits) + ([args.limits[0]] if args.again else [])
    results = []
    for i, limit in enumerate(plan):
        cmd = [str(KIT), "train", args.competition, "--limit", str(limit), *train_args]
        label = f"{limit}{' (again)' if i >= len(args.limits) else ''}"
        print(f"$ {' '.join(cmd[1:])}    # {label}", flush=True)
        m = measure(cmd, env, limit)
        results.append((label, m))
        print(f"  peak RSS {m.peak_mb:.0f} MB in {m.seconds:.0f}s", flush=True)
        for stage, mb in m.stages.items():
            print(f"    {mb:7.0f} MB  {m.stage_seconds.get(stage, 0):7.1f}s  {stage}", flush=True)
        print("  " + m.tail.replace("\n", "\n  "), flush=True)
    ls = subprocess.run([str(KIT), "cache", "ls"], env=env, capture_output=True, text=True, cwd=args.work)
    print(ls.stdout.rstrip())
    fields = {"dataset": args.competition, "train": "_".join(train_args).replace("--", "")}
    for label, m in results:
        key = label.replace(" (again)", "_again")
        fields[f"rss_{key}_mb"] = m.peak_mb
        fields[f"seconds_{key}"] = m.seconds
    firsts = [m for label, m in results if "again" not in label]
    if len(firsts) >= 2:
        fields["growth_mb"] = round(firsts[-1].peak_mb - firsts[0].peak_mb, 1)
    print(" ".join(f"{k}={v}" for k, v in fields.items()))
    return 0


def objects(args: argparse.Namespace) -> int:
    """What the O(N) Python objects of a run weigh: the manifest it holds, and the peak of
    ``run.write_oof`` (assembling ``oof.csv``) re-run on the finished runs measured before
    (it rewrites their ``oof.csv`` with the same content)."""
    import tracemalloc

    from kaggle_kit.training.folds import make_splits
    from kaggle_kit.data.manifest import build_manifest
    from kaggle_kit.project import Project
    from kaggle_kit.training.runs import list_runs
    from kaggle_kit.training.run import write_oof

    project = Project(args.work)
    comp = project.competition(args.competition)
    fields: dict[str, object] = {"dataset": args.competition}
    for limit in args.limits:
        run = next((r for r in list_runs(project, comp, complete_only=True) if r.config.limit == limit), None)
        if run is None:
            raise SystemExit(f"no finished run with --limit {limit} in {args.work}; run without --objects first")
        tracemalloc.start()
        manifest = build_manifest(comp, project.data_root(comp.slug), "train", cache_dir=project.cache,
                                  limit=limit, seed=run.config.seed)
        held, building = tracemalloc.get_traced_memory()
        splits = make_splits(manifest.labels, folds=run.config.folds, holdout=run.config.holdout,
                             seed=run.config.seed)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        write_oof(run, comp, manifest, splits)
        finish_peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        print(f"{limit} images (run {run.run_id}): manifest holds {held / 1e6:.1f} MB (peak {building / 1e6:.1f} MB "
              f"while building); run.write_oof peaks {finish_peak / 1e6:.1f} MB above that", flush=True)
        fields.update({f"manifest_{limit}_mb": round(held / 1e6, 1),
                       f"manifest_build_{limit}_mb": round(building / 1e6, 1),
                       f"finish_{limit}_mb": round(finish_peak / 1e6, 1)})
    print(" ".join(f"{k}={v}" for k, v in fields.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
