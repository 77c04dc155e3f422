"""Scale-out overhead: one 5-fold run sequential, with ``--parallel-folds 2`` and on a local 2-node
Ray cluster, side by side in one run on this machine.

    .venv/bin/python bench/scale.py --limit 2000 --repeats 1
    .venv/bin/python bench/scale.py --competition cifar-10-mini      # the bundled demo, 400 images

In a scratch project (``.cache/scratch/scale-*``) it fetches the competition from the local
Kaggle-compatible server (cifar-10 from ``../shared/competitions``, cifar-10-mini from the copy
``kaggle_local`` bundles), builds the caches once (a warm-up run at the same size), then trains the
same run (cifar-10: ``--recipe fast``, 96 px, the head on cached features; cifar-10-mini: its
defaults, also 96 px; plus ``--epochs`` fine-tuning epochs of the top layers when given) three ways,
in turn, ``--repeats`` times, with the same seed. The Ray cluster (:func:`kaggle_kit.training.ray_cluster.local_cluster`, two nodes of one CPU
each, sharing the scratch project's cache) is started once and its start-up is reported apart.

Wall time is the ``kaggle-kit train`` command's; CPU time is that command's and its children's, and
for Ray also that of the cluster's processes (sampled from ``/proc`` while it trains). The per-fold
overhead is ``(wall - sequential wall) / folds`` over a sequential fold's wall time (that is, the
extra time over the sequential run's), and the same for CPU time. Ends with one ``key=value`` line per way.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kaggle_kit.training.ray_cluster import local_cluster  # noqa: E402
from kaggle_local import LocalKaggleServer  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


class ClusterCPU(threading.Thread):
    """CPU time (utime + stime) of the cluster's processes: those in its nodes' sessions or naming its
    temp dir, sampled every 0.2 s so that a worker that exits is counted up to its last sample."""

    def __init__(self, cluster) -> None:
        super().__init__(daemon=True)
        self.sessions, self.mark = set(cluster.sessions()), str(cluster.temp)
        self.seen: dict[int, float] = {}
        self.base = self.sample()
        self.running = True

    def sample(self) -> dict[int, float]:
        out = {}
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) not in self.sessions and self.mark not in (proc / "cmdline").read_text():
                    continue
            except (OSError, IndexError, ValueError):
                continue
            out[int(proc.name)] = (int(fields[11]) + int(fields[12])) / TICK
        return out

    def run(self) -> None:
        while self.running:
            self.seen.update(self.sample())
            time.sleep(0.2)

    def stop(self) -> float:
        self.running = False
        self.join()
        self.seen.update(self.sample())
        return sum(cpu - self.base.get(pid, 0.0) for pid, cpu in self.seen.items())


def timed(cmd: list[str], env: dict[str, str], cwd: Path, show: bool = False) -> tuple[float, float, str]:
    """Run ``cmd``; its wall time, the CPU time of it and its children, and its last output line
    (``show``: print all of its output too)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed:\n{out[-3000:]}")
    lines = [line for line in out.splitlines() if line.strip()]
    if show:
        print(f"$ kaggle-kit {' '.join(cmd[3:])}\n{out.rstrip()}", flush=True)
    return wall, usage.ru_utime + usage.ru_stime, lines[-1] if lines else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--competition", default="cifar-10", choices=("cifar-10", "cifar-10-mini"))
    parser.add_argument("--limit", type=int, default=2000, help="training images (cifar-10 only)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=0, help="fine-tuning epochs (0: the head only)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--ways", default="sequential,parallel2,ray2", help="which of the three ways to run")
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "competitions"))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--show", action="store_true", help="print the whole output of the first repeat's runs")
    args = parser.parse_args()

    scratch = REPO / ".cache" / "scratch" / f"scale-{os.getpid()}"
    scratch.mkdir(parents=True)
    kit = [sys.executable, "-m", "kaggle_kit"]
    slug = args.competition
    sample = ["--recipe", "fast", "--limit", str(args.limit)] if slug == "cifar-10" else []
    train = ["train", slug, *sample, "--folds", str(args.folds), "--seed", "7",
             *(["--epochs", str(args.epochs), "--finetune-from", "block14_add"] if args.epochs else [])]
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    served = {p.stem: p for p in (REPO / "bench" / "served").glob("*.json") if p.stem == "cifar-10"}
    with (LocalKaggleServer(root=args.shared, competition_json=served) if slug == "cifar-10"
          else LocalKaggleServer()) as server:
        env = {**server.environ(scratch / "home"), "KAGGLE_KIT_HOME": str(scratch), "PYTHONPATH": path,
               "KAGGLE_KIT_COMPETITIONS": str(REPO / "competitions"), "KAGGLE_KIT_CACHE": str(scratch / ".cache"),
               "TF_CPP_MIN_LOG_LEVEL": "2", "COLUMNS": "200"}
        wall, _, _ = timed([*kit, "fetch", slug], env, scratch)
        print(f"fetch: {wall:.0f}s", flush=True)
    wall, _, last = timed([*kit, *train, "--head-epochs", "1", "--folds", "2"], env, scratch)
    print(f"warm-up (caches): {wall:.0f}s: {last}", flush=True)

    ways = [w for w in ("sequential", "parallel2", "ray2") if w in args.ways.split(",")]
    if "sequential" not in ways:
        raise SystemExit("--ways must include sequential (the overheads are measured against it)")
    results: dict[str, list[tuple[float, float, float]]] = {w: [] for w in ways}
    t0 = time.perf_counter()
    with local_cluster(nodes=2, cpus=1, logs=scratch / "ray",
                       node_env=lambda i: {"KAGGLE_KIT_CACHE": env["KAGGLE_KIT_CACHE"], "PYTHONPATH": path}) as cluster:
        started = time.perf_counter() - t0
        print(f"Ray cluster of 2 nodes up in {started:.0f}s at {cluster.address}", flush=True)
        for r in range(args.repeats):
            for way, extra in (("sequential", []), ("parallel2", ["--parallel-folds", "2"]),
                               ("ray2", ["--ray", cluster.address])):
                if way not in ways:
                    continue
                sampler = ClusterCPU(cluster)
                sampler.start()
                wall, cpu, last = timed([*kit, *train, *extra], env, scratch, show=args.show and r == 0)
                cluster_cpu = sampler.stop()                      # the idle cluster's own, for the other ways
                cpu += cluster_cpu if way == "ray2" else 0.0
                run_id = last.split(":", 1)[0]
                cv = json.loads((scratch / "checkpoints" / slug / run_id / "run.json").read_text())["cv"]
                results[way].append((wall, cpu, cv))
                print(f"[{r + 1}/{args.repeats}] {way}: wall {wall:.1f}s, CPU {cpu:.1f}s, CV {cv:.4f}  ({last})",
                      flush=True)
    seq_wall = statistics.median(w for w, _, _ in results["sequential"])
    seq_cpu = statistics.median(c for _, c, _ in results["sequential"])
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for way, rows in results.items():
        wall = statistics.median(w for w, _, _ in rows)
        cpu = statistics.median(c for _, c, _ in rows)
        print(f"competition={slug} way={way} folds={args.folds} limit={args.limit if slug == 'cifar-10' else 'all'} epochs={args.epochs} repeats={len(rows)} "
              f"wall_s={wall:.1f} cpu_s={cpu:.1f} cv={','.join(f'{cv:.4f}' for *_, cv in rows)} "
              f"fold_overhead_wall={(wall - seq_wall) / seq_wall:+.1%} fold_overhead_cpu={(cpu - seq_cpu) / seq_cpu:+.1%}")
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
