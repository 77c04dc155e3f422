"""A Ray cluster of several nodes on this one machine, to try ``--ray`` (and to test and measure it).

:func:`local_cluster` runs ``ray start --head --block`` and ``ray start --address ... --block`` for
each further node, each in its own process group, on free ports and with its own short temp dir
(Ray's unix socket paths must stay under 108 characters), so it never meets another cluster on the
machine. It yields the head's address, ``127.0.0.1:<port>`` (Ray names the nodes by the machine's
interface address; everything stays on this machine). On leaving, each node's process group is
killed (``ray start``, raylet, GCS, workers): never ``ray stop``, which stops every Ray cluster here.

Example (not run here: it starts processes)::

    with local_cluster(nodes=2, cpus=1) as cluster:
        subprocess.run(["kaggle-kit", "train", "cifar-10", "--ray", cluster.address])
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from kaggle_kit.errors import KitError

__all__ = ["LocalCluster", "local_cluster", "free_ports"]

_NODE_PORTS = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
               "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")
_WORKER_PORTS = 8                       # worker processes a node may run at once


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@dataclass
class LocalCluster:
    address: str
    temp: Path                              # Ray's temp dir: its processes name it on their command line
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def sessions(self) -> list[int]:
        """The session (process group) ids of the nodes: every process of the cluster is in one."""
        return [p.pid for p in self.procs]


def _ports_args(ports: Sequence[int]) -> list[str]:
    named = [x for name, port in zip(_NODE_PORTS, ports) for x in (name, str(port))]
    return named + ["--worker-port-list", ",".join(map(str, ports[len(_NODE_PORTS):]))]


@contextmanager
def local_cluster(*, nodes: int = 2, cpus: int = 1, logs: Path | None = None,
                  node_env: Callable[[int], Mapping[str, str]] = lambda i: {},
                  timeout: float = 120.0) -> Iterator[LocalCluster]:
    """Start ``nodes`` Ray nodes of ``cpus`` CPUs each here; ``node_env(i)``: extra environment of
    node ``i`` (0 is the head), e.g. its own ``KAGGLE_KIT_CACHE``. Logs go to ``logs`` (a temp dir)."""
    ray = Path(sys.executable).with_name("ray")
    if not ray.is_file():
        raise KitError("--ray needs Ray: pip install 'kaggle-kit[ray]'")
    temp = Path(tempfile.mkdtemp(prefix="rk", dir="/tmp"))
    logs = Path(logs or temp)
    logs.mkdir(parents=True, exist_ok=True)
    port, client, dashboard, *ports = free_ports(3 + nodes * (len(_NODE_PORTS) + _WORKER_PORTS))
    per_node = len(_NODE_PORTS) + _WORKER_PORTS
    cluster = LocalCluster(address=f"127.0.0.1:{port}", temp=temp)
    try:
        for i in range(nodes):
            own = _ports_args(ports[i * per_node:(i + 1) * per_node])
            args = (["--head", "--port", str(port), "--ray-client-server-port", str(client), "--include-dashboard=false",
                     "--dashboard-port", str(dashboard), "--temp-dir", str(temp)] if i == 0
                    else ["--address", cluster.address])
            log = logs / ("head.log" if i == 0 else f"node{i}.log")
            with log.open("w") as out:
                proc = subprocess.Popen([str(ray), "start", "--block", "--num-cpus", str(cpus), "--disable-usage-stats",
                                         *args, *own], stdout=out, stderr=subprocess.STDOUT,
                                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **node_env(i)},
                                        start_new_session=True)
            cluster.procs.append(proc)
            cluster.logs.append(log)
            _wait(lambda: _answers(port) if i == 0 else _alive_nodes(cluster.address) > i, timeout, proc, log)
        yield cluster
    finally:
        _stop(cluster.procs)
        shutil.rmtree(temp, ignore_errors=True)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _alive_nodes(address: str) -> int:
    """How many nodes the cluster counts, asked from a short-lived process (this one stays unconnected)."""
    code = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR'); "
            "print(sum(n['Alive'] for n in ray.nodes()))")
    try:
        out = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return 0
    lines = out.stdout.strip().splitlines()
    return int(lines[-1]) if out.returncode == 0 and lines and lines[-1].isdigit() else 0


def _wait(ok: Callable[[], bool], seconds: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not ok():
        if time.monotonic() > deadline or proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise KitError(f"{log}: the Ray node did not come up: {tail[0]}")
        time.sleep(0.5)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGKILL each node's process group, workers first (a SIGTERM would drain each node for 30 s)."""
    for p in reversed(procs):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=30)
