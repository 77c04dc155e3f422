"""``--ray``: the folds of a run as tasks on a real local Ray cluster (a head and a second worker
node, one CPU each, both on this machine), with a worker killed mid-fold. No mock of Ray.

The cluster is started with ``ray start --block`` in its own process group and its own short temp
dir, on free ports (the head's address is 127.0.0.1; Ray itself names the node by this machine's
interface address, never another machine's). It is stopped by signalling that process group, not
with ``ray stop``, which would stop every Ray cluster on the machine.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from toy_project import kit, kit_env, make_project, run_dirs, run_json

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'kaggle-kit[ray]'; "
                                        "`make test` installs it)")

RAY = Path(sys.executable).with_name("ray")
REPO = Path(__file__).resolve().parents[1]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


NODE_PORTS = 6 + 8                  # its components' ports and 8 for its worker processes


def _node_args(ports: list[int]) -> list[str]:
    """Every port a node opens, chosen free, so this cluster never meets another on the machine."""
    names = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")
    return ([x for name, port in zip(names, ports) for x in (name, str(port))]
            + ["--worker-port-list", ",".join(map(str, ports[len(names):]))])


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([str(RAY), "start", "--block", "--num-cpus", "1", "--disable-usage-stats", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each node's process group (its raylet, its workers), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        for p in procs:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict]:
    """A head and one worker node on this machine; yields the address and each node's cache folder."""
    temp = Path(tempfile.mkdtemp(prefix="rk", dir="/tmp"))   # Ray's socket paths must stay under 108 chars
    port, client, dashboard, *ports = _free_ports(3 + 2 * NODE_PORTS)
    base = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "TF_CPP_MIN_LOG_LEVEL": "2", "RAY_DEDUP_LOGS": "0"}
    caches = [tmp_path / "cache_head", tmp_path / "cache_worker"]
    procs = []
    try:
        procs.append(_start(["--head", "--port", str(port), "--ray-client-server-port", str(client),
                             "--include-dashboard=false", "--dashboard-port", str(dashboard),
                             "--temp-dir", str(temp), *_node_args(ports[:NODE_PORTS])],
                            tmp_path / "head.log", {**base, "KAGGLE_KIT_CACHE": str(caches[0])}))
        address = f"127.0.0.1:{port}"
        _wait_for(lambda: _answers(port), 60, procs[0], tmp_path / "head.log")
        procs.append(_start(["--address", address, *_node_args(ports[NODE_PORTS:])],
                            tmp_path / "worker.log", {**base, "KAGGLE_KIT_CACHE": str(caches[1])}))
        _wait_for(lambda: _nodes(address) >= 2, 90, procs[1], tmp_path / "worker.log")
        yield {"address": address, "caches": caches}
    finally:
        _stop(procs)
        shutil.rmtree(temp, ignore_errors=True)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _nodes(address: str) -> int:
    out = subprocess.run([sys.executable, "-c", "import ray, sys; ray.init(address=sys.argv[1], "
                          "logging_level='ERROR'); print(sum(n['Alive'] for n in ray.nodes()))", address],
                         capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


def _wait_for(ok, seconds: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not ok():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise AssertionError(f"the Ray node did not come up: {log.read_text()[-2000:]}")
        time.sleep(0.5)


def _kill_mid_fold(run_root: Path, k: int, timeout: float = 120) -> int:
    """Wait until fold ``k`` finished an epoch, then SIGKILL the worker process that holds its lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for state in run_root.glob(f"*/fold_{k}/state.json"):
            try:
                holder = json.loads((state.parents[1] / f"fold_{k}.lock").read_text())
            except (OSError, ValueError):
                continue
            os.kill(holder["pid"], signal.SIGKILL)
            return holder["pid"]
        time.sleep(0.05)
    raise AssertionError(f"fold {k} never finished an epoch")


def test_folds_run_as_ray_tasks_and_a_killed_worker_is_retried(tmp_path: Path, cluster: dict) -> None:
    root = make_project(tmp_path / "p")
    args = ["train", "toy", "--folds", "3", "--head-epochs", "4", "--seed", "7"]
    driver = subprocess.Popen([str(Path(sys.executable).with_name("kaggle-kit")), *args, "--ray", cluster["address"]],
                              cwd=root, env=kit_env(root, KAGGLE_KIT_CACHE=str(tmp_path / "driver_cache")),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = _kill_mid_fold(root / "checkpoints" / "toy", 1)
    out, _ = driver.communicate(timeout=240)
    assert driver.returncode == 0, out
    [run_dir] = run_dirs(root)
    record = run_json(run_dir)
    assert record["status"] == "complete" and [f["fold"] for f in record["folds"]] == [0, 1, 2]
    oof = pd.read_csv(run_dir / "oof.csv")
    assert len(oof) == 60 and oof["id"].is_unique                    # every image once, in one fold
    assert f"took over the lock of pid {killed}" in out               # the retry resumed the killed fold
    assert "resum" in out.lower()
    assert all((c / "images").exists() or any(c.iterdir()) for c in cluster["caches"])   # caches on each node
    assert not list(run_dir.glob("*.lock"))

    local = kit(root, *args)                                          # the same run, locally
    assert local.returncode == 0, local.stdout + local.stderr
    local_run = [d for d in run_dirs(root) if d != run_dir][0]
    assert run_json(local_run)["cv"] == pytest.approx(record["cv"], abs=1 / 20 + 1e-9)   # within one image a fold


def test_an_address_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    [port] = _free_ports(1)
    started = time.monotonic()
    done = kit(root, "train", "toy", "--folds", "2", "--ray", f"127.0.0.1:{port}")
    assert done.returncode != 0 and time.monotonic() - started < 30
    [line] = done.stderr.strip().splitlines()
    assert f"--ray 127.0.0.1:{port}: no Ray head answers there" in line
