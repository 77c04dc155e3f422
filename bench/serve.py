"""`kaggle-kit serve` under load: requests/s and p50/p99 latency with batching on and off, in one run.

Two servers of the same run listen side by side: one with the default batching
(``--batch-window 5 --max-batch 32``), one with ``--no-batch``. Each round sends ``--requests``
POST /predict requests (PNG images, raw body) from ``--concurrency`` client threads to one server,
then to the other, the order alternating between rounds; the medians over ``--rounds`` rounds are
reported, with their ratio, the mean batch size (from ``GET /stats``) and the load average.

The run: ``--home``/``--competition``/``--run`` name an existing one; without them the bench writes a
synthetic three-class competition (coloured 64-pixel PNGs) into ``--work`` and trains a 2-fold run of
``efficientnet_lite0`` (random weights, 96 pixels, one head epoch; TTA on, as the run's default) with
``kaggle-kit train``. ``--quick`` is a smoke run: ``simple_cnn`` at 16 pixels, 24 requests, 1 round.

The last line is ``key=value`` fields for scripts. Example:
    python bench/serve.py              # about 4 minutes on 2 busy cores
    python bench/serve.py --quick
"""
from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import requests

KIT = Path(sys.executable).with_name("kaggle-kit")
CLASSES = ("red", "green", "blue")
PLUGIN = '''from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders, TestFolder
COMPETITION = Competition(slug="servebench", classes=("red", "green", "blue"), metric="accuracy",
    train=ClassFolders(), test=TestFolder(), submission=Submission(labels="name"))
'''


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--home", type=Path, help="project root of an existing run (with --competition and --run)")
    p.add_argument("--competition", help="the run's competition slug")
    p.add_argument("--run", help="the run id to serve")
    p.add_argument("--work", type=Path, default=Path(".cache/scratch/serve"), help="scratch project for the trained run")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--batch-window", help="the batching server's --batch-window in ms (default: serve's default)")
    p.add_argument("--requests", type=int, default=200, help="requests per server per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny model, 24 requests, 1 round")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(msg, flush=True)


def png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return buf.tobytes()


def coloured(channel: int, side: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 60, (side, side, 3)).astype(np.uint8)
    rgb[..., channel] = rng.integers(180, 256, (side, side))
    return rgb


def train_run(work: Path, quick: bool) -> tuple[Path, str, str | None]:
    """A synthetic competition in ``work`` and a 2-fold run trained on it; (home, slug, None: its only run)."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "competitions").mkdir(parents=True)
    (work / "competitions" / "servebench.py").write_text(PLUGIN)
    for c, name in enumerate(CLASSES):
        folder = work / "data" / "servebench" / "train" / name
        folder.mkdir(parents=True)
        for i in range(16):
            (folder / f"{i}.png").write_bytes(png(coloured(c, 64, 100 * c + i)))
    (work / "data" / "servebench" / "test").mkdir()
    model = (["--backbone", "simple_cnn", "--weights", "none", "--size", "16", "--head-epochs", "2"] if quick else
             ["--backbone", "efficientnet_lite0", "--weights", "none", "--size", "96", "--head-epochs", "1"])
    cmd = [str(KIT), "train", "servebench", "--folds", "2", "--epochs", "0", "--batch-size", "16", *model]
    log("training: " + " ".join(cmd[1:]))
    out = subprocess.run(cmd, cwd=work, env={**os.environ, "KAGGLE_KIT_HOME": str(work)}, capture_output=True,
                         text=True)
    if out.returncode != 0:
        sys.exit(f"training failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return work, "servebench", None


class Server:
    """``kaggle-kit serve`` in a subprocess on a free port; ``stop()`` is Ctrl-C."""

    def __init__(self, home: Path, slug: str, run: str | None, extra: list[str]) -> None:
        which = ["--run", run] if run else ["--best"]
        self.process = subprocess.Popen([str(KIT), "serve", slug, *which, "--port", "0", *extra], cwd=home,
                                        env={**os.environ, "KAGGLE_KIT_HOME": str(home), "PYTHONUNBUFFERED": "1"},
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.process.stdout], daemon=True).start()
        try:
            self.banner = lines.get(timeout=300)
        except queue.Empty:
            self.banner = ""
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", self.banner)
        if not found:
            self.stop()
            sys.exit(f"serve did not start: {self.banner!r}")
        self.url = found.group(1)
        self.run_id = requests.get(self.url + "/info", timeout=60).json()["run_id"]

    def stats(self) -> dict:
        return requests.get(self.url + "/stats", timeout=60).json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def load(url: str, images: list[bytes], n: int, concurrency: int) -> dict[str, float]:
    """``n`` requests from ``concurrency`` threads (one HTTP session each): requests/s, p50, p99 in ms."""
    local = threading.local()

    def one(i: int) -> float:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        start = time.perf_counter()
        answer = session.post(url + "/predict", data=images[i % len(images)], timeout=120)
        elapsed = time.perf_counter() - start
        if answer.status_code != 200:
            raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:200]}")
        return elapsed

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, range(concurrency)))     # warm: every thread has its connection
        start = time.perf_counter()
        latencies = list(pool.map(one, range(n)))
        wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"rps": n / wall, "p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.requests, args.rounds = 24, 1
    load0 = os.getloadavg()[0]
    if args.home:
        if not (args.competition and args.run):
            sys.exit("--home needs --competition and --run")
        home, slug, run = args.home, args.competition, args.run
    else:
        home, slug, run = train_run(args.work, args.quick)
    window = ["--batch-window", args.batch_window] if args.batch_window else []
    servers = {"on": Server(home, slug, run, window), "off": Server(home, slug, run, ["--no-batch"])}
    run = servers["on"].run_id
    log(f"run {run} ({slug}); {args.rounds} round(s) of {args.requests} requests at concurrency {args.concurrency}")
    try:
        for mode, server in servers.items():
            log(f"batching {mode}: {server.banner.strip()}")
        images = [png(coloured(i % 3, 64, 7000 + i)) for i in range(16)]
        alone = load(servers["off"].url, images, 16, 1)
        log(f"one request alone (batching off): p50 {alone['p50']:.0f} ms")
        results: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
        for r in range(args.rounds):
            for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
                before = servers[mode].stats()
                result = load(servers[mode].url, images, args.requests, args.concurrency)
                after = servers[mode].stats()
                calls = after["model_calls"] - before["model_calls"]
                result["batch"] = (after["requests"] - before["requests"]) / max(calls, 1)
                results[mode].append(result)
                log(f"  round {r + 1} batching {mode:>3}: {result['rps']:6.1f} requests/s  p50 {result['p50']:5.0f} ms"
                    f"  p99 {result['p99']:5.0f} ms  mean batch {result['batch']:.1f}  (load {os.getloadavg()[0]:.1f})")
    finally:
        for server in servers.values():
            server.stop()
    med = {mode: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99", "batch")}
           for mode, rs in results.items()}
    ratio = med["on"]["rps"] / med["off"]["rps"]
    for mode in ("off", "on"):
        m = med[mode]
        log(f"median batching {mode:>3}: {m['rps']:6.1f} requests/s  p50 {m['p50']:5.0f} ms  p99 {m['p99']:5.0f} ms"
            f"  mean batch {m['batch']:.1f}")
    met = ratio >= 3 and med["on"]["p99"] <= med["off"]["p99"]
    log(f"ratio {ratio:.2f}x requests/s; p99 {med['on']['p99']:.0f} vs {med['off']['p99']:.0f} ms; "
        f"target (>= 3x, p99 no worse) {'met' if met else 'NOT met'}")
    fields = {"run": run, "concurrency": args.concurrency, "requests": args.requests, "rounds": args.rounds,
              "alone_p50_ms": round(alone["p50"]),
              **{f"{k}_{mode}": round(v, 1) for mode, m in med.items() for k, v in m.items()},
              "ratio": round(ratio, 2), "target_met": met, "load_avg": f"{load0:.1f}->{os.getloadavg()[0]:.1f}"}
    log(" ".join(f"{k}={v}" for k, v in fields.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
