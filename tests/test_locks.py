"""Lock files: a fold is trained by one process at a time, a gone holder's lock is taken over, and
``run.json`` is merged, so machines sharing a run folder train its folds with ``--only-folds``."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from toy_project import kit_here, make_project, run_json

from kaggle_kit.project import Project
from kaggle_kit.training.locks import FoldBusy, Holder, fold_lock, read_holder, run_lock
from kaggle_kit.training.run import Run


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_lock(path: Path, **holder: object) -> None:
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": 1, "since": "then", "owner": "", **holder}))


def test_a_held_fold_is_refused_naming_its_holder(tmp_path: Path) -> None:
    with fold_lock(tmp_path, 2):
        with pytest.raises(FoldBusy) as refused:
            with fold_lock(tmp_path, 2):
                pass
        with fold_lock(tmp_path, 1):           # another fold is free
            pass
    message = str(refused.value)
    assert f"fold 3 is being trained by {Holder.me().text().split(' since')[0]}" in message
    assert "\n" not in message and str(tmp_path / "fold_2.lock") in message
    assert not list(tmp_path.glob("*.lock"))


def test_the_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path: Path) -> None:
    pid = dead_pid()
    write_lock(tmp_path / "fold_0.lock", pid=pid)
    with fold_lock(tmp_path, 0) as gone:
        assert gone is not None and gone.pid == pid
        assert read_holder(tmp_path / "fold_0.lock").pid == os.getpid()
    assert not (tmp_path / "fold_0.lock").exists()


def test_another_hosts_lock_is_refused_unless_the_claimant_is_its_owner(tmp_path: Path) -> None:
    write_lock(tmp_path / "fold_0.lock", host="other-node", pid=4242, owner="ray:run:abcd")
    with pytest.raises(FoldBusy, match="pid 4242 on other-node"):
        with fold_lock(tmp_path, 0, owner="ray:run:ffff"):     # another driver's task: its holder may live
            pass
    with fold_lock(tmp_path, 0, owner="ray:run:abcd") as gone:   # the retry of the same task
        assert gone is not None and gone.host == "other-node"


def test_run_lock_waits_for_its_holder(tmp_path: Path) -> None:
    order: list[str] = []
    held = threading.Event()

    def hold() -> None:
        with run_lock(tmp_path):
            held.set()
            time.sleep(0.3)
            order.append("first")

    t = threading.Thread(target=hold)
    t.start()
    held.wait()
    with run_lock(tmp_path):
        order.append("second")
    t.join()
    assert order == ["first", "second"]
    write_lock(tmp_path / "run.lock", pid=dead_pid())             # a writer killed while holding it
    with run_lock(tmp_path, timeout=5):
        pass


@pytest.fixture
def toy(tmp_path: Path) -> Project:
    return Project(make_project(tmp_path / "p"))


def test_a_save_never_undoes_a_completion_by_another_process(toy: Project) -> None:
    comp = toy.competition("toy")
    first = Run.create(toy, comp, comp.config(None, {"folds": 2}))
    second = Run.resume(toy, comp, first.record.run_id)         # another machine's view of the run
    first.record.status, first.record.cv = "complete", 0.5
    first.save()
    second.save()                                                # written from its stale view
    assert run_json(first.record.path)["status"] == "complete" and second.record.status == "complete"


def test_only_folds_from_two_machines_complete_the_run(toy: Project) -> None:
    comp = toy.competition("toy")
    run_id = Run.create(toy, comp, comp.config(None, {"folds": 2, "head_epochs": 1})).record.run_id
    run_dir = toy.checkpoints / "toy" / run_id
    with fold_lock(run_dir, 0):                                  # "machine A" is training fold 0
        busy = kit_here(toy.root, "train", "toy", "--resume", run_id, "--only-folds", "0")
    assert busy.returncode != 0 and "fold 1 is being trained by pid" in busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1 and run_json(run_dir)["status"] == "running"

    one = kit_here(toy.root, "train", "toy", "--resume", run_id, "--only-folds", "1")
    assert one.returncode == 0, one.stdout + one.stderr
    assert "1 of 2 fold(s) done" in one.stdout and run_json(run_dir)["status"] == "running"
    assert not (run_dir / "oof.csv").exists()

    last = kit_here(toy.root, "train", "toy", "--resume", run_id, "--only-folds", "0")
    assert last.returncode == 0, last.stdout + last.stderr
    record = run_json(run_dir)
    assert record["status"] == "complete" and [f["fold"] for f in record["folds"]] == [0, 1]
    assert f"CV accuracy {record['cv']:.4f}" in last.stdout and (run_dir / "oof.csv").is_file()
    assert not list(run_dir.glob("*.lock"))

    unknown = kit_here(toy.root, "train", "toy", "--only-folds", "3")
    assert unknown.returncode != 0 and "--only-folds" in unknown.stderr and "--resume" in unknown.stderr
