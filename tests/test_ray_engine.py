"""``--ray``: the folds of a run as tasks on a real local Ray cluster (a head and a second worker
node, one CPU each, both on this machine: :func:`kaggle_kit.training.ray_cluster.local_cluster`,
its own ports and temp dir, stopped by killing its process groups, never ``ray stop``), with a
worker killed mid-fold. No mock of Ray.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from toy_project import kit, kit_env, make_project, run_dirs, run_json

from kaggle_kit.training.ray_cluster import free_ports, local_cluster

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                               reason="the ray extra is not installed (pip install 'kaggle-kit[ray]'; "
                                      "`make test` installs it)")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict]:
    """A head and one worker node on this machine, one CPU each, each with its own cache folder."""
    caches = [tmp_path / "cache_head", tmp_path / "cache_worker"]
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    with local_cluster(nodes=2, cpus=1, logs=tmp_path / "ray",
                       node_env=lambda i: {"KAGGLE_KIT_CACHE": str(caches[i]), "PYTHONPATH": path}) as running:
        yield {"address": running.address, "caches": caches}


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


@needs_ray
def test_folds_run_as_ray_tasks_and_a_killed_worker_is_retried(tmp_path: Path, cluster: dict) -> None:
    root = make_project(tmp_path / "p")
    args = ["train", "toy", "--folds", "3", "--head-epochs", "2", "--epochs", "2", "--seed", "7"]
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
    [port] = free_ports(1)
    started = time.monotonic()
    done = kit(root, "train", "toy", "--folds", "2", "--ray", f"127.0.0.1:{port}")
    assert done.returncode != 0 and time.monotonic() - started < 30
    [line] = done.stderr.strip().splitlines()
    assert f"--ray 127.0.0.1:{port}: no Ray head answers there" in line


def test_without_the_extra_one_line_says_how_to_install_it(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    shadow = tmp_path / "no_ray" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named ray')\n")   # as if not installed
    path = os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])
    done = kit(root, "train", "toy", "--folds", "2", "--ray", "auto", PYTHONPATH=path)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: --ray needs Ray: pip install 'kaggle-kit[ray]' (on every node of the cluster)"


@needs_ray
def test_a_node_that_cannot_see_the_project_names_the_path_and_the_node(tmp_path: Path) -> None:
    import ray

    from kaggle_kit.errors import KitError
    from kaggle_kit.training.ray_engine import open_on_node

    with pytest.raises(KitError) as seen:
        open_on_node(str(tmp_path / "elsewhere"), "toy", "20261202-000000-cnn-abcd")
    message = str(seen.value)
    assert message.startswith(f"node {ray.util.get_node_ip_address()} ({socket.gethostname()}): cannot see "
                              f"the project folder {tmp_path / 'elsewhere'}") and "\n" not in message
