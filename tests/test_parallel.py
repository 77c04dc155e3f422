"""``--parallel-folds``: folds of one run trained by separate processes, then completed by the parent.

The end-to-end tests train the toy competition (simple_cnn, 16 px, 60 images) for one epoch a fold."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import toy_project
from toy_project import KIT, kit, kit_env, make_project, run_dirs, run_json

from kaggle_kit import events
from kaggle_kit.training import trainer
from kaggle_kit.errors import KitError
from kaggle_kit.training.parallel import assign_folds, plan_workers, train_parallel, visible_gpus
from kaggle_kit.project import Project
from kaggle_kit.training.run import Run
from kaggle_kit.training.runs import load_run

PROCESS = re.compile(r"fold\(s\) ([\d, ]+): process (\d+) on (.+)")


def test_folds_are_dealt_round_robin() -> None:
    assert assign_folds([0, 1, 2, 3, 4], 2) == [[0, 2, 4], [1, 3]]
    assert assign_folds([3, 4], 8) == [[3], [4]]              # never an idle worker
    assert assign_folds([], 2) == []


def test_one_worker_per_gpu_each_seeing_only_its_own() -> None:
    plans = plan_workers([0, 1, 2, 3, 4], 8, gpus=["2", "5"], cpus=16, base={"CUDA_VISIBLE_DEVICES": "2,5"})
    assert [(p.folds, p.env["CUDA_VISIBLE_DEVICES"], p.device) for p in plans] == [
        ([0, 2, 4], "2", "GPU 2"), ([1, 3], "5", "GPU 5")]


def test_without_gpus_the_cpu_cores_are_shared_out() -> None:
    plans = plan_workers([0, 1, 2], 3, gpus=[], cpus=8, base={"PATH": "/bin"})
    assert [(p.folds, p.env["TF_NUM_INTRAOP_THREADS"], p.env["PATH"]) for p in plans] == [
        ([0], "2", "/bin"), ([1], "2", "/bin"), ([2], "2", "/bin")]
    prepare = plan_workers(None, 1, gpus=[], cpus=8, base={})
    assert [(p.folds, p.device) for p in prepare] == [(None, "8 CPU threads")]


def test_visible_gpus_follow_cuda_visible_devices() -> None:
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0, 3"}) == ["0", "3"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,2"}) == ["1"]    # CUDA stops at an invalid id
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({"PATH": ""}) == []                             # no nvidia-smi: no GPU


@pytest.fixture
def toy(tmp_path: Path, kit_env: pytest.MonkeyPatch) -> Project:
    """The toy project, as the current project of this process and of the processes it starts."""
    root = make_project(tmp_path / "p")
    for name, value in kit_env_vars(root).items():
        kit_env.setenv(name, value)
    return Project(root)


def kit_env_vars(root: Path) -> dict[str, str]:
    full = kit_env(root)
    return {k: full[k] for k in ("KAGGLE_KIT_HOME", "KAGGLE_KIT_CACHE", "TF_CPP_MIN_LOG_LEVEL")}


def test_two_processes_train_the_folds_and_the_run_is_scored(toy: Project) -> None:
    done = kit(toy.root, "train", "toy", "--folds", "2", "--head-epochs", "1", "--parallel-folds", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    workers = PROCESS.findall(done.stdout)
    assert sorted(f for f, _, _ in workers) == ["1", "2"]             # one fold each (counted from 1) ...
    assert len({pid for _, pid, _ in workers}) == 2                   # ... in two processes
    assert all(device == "1 CPU thread" for *_, device in workers)    # the 2 CI cores shared out
    [run_dir] = run_dirs(toy.root)
    record = run_json(run_dir)
    assert record["status"] == "complete" and record["n_splits"] == 2 and record["train_size"] == 60
    assert [f["fold"] for f in record["folds"]] == [0, 1]
    oof = pd.read_csv(run_dir / "oof.csv")
    assert len(oof) == 60 and sorted(oof["fold"].unique()) == [0, 1]
    assert record["cv"] == pytest.approx((oof[["red", "green", "blue"]].idxmax(axis=1) == oof["label"]).mean(),
                                         abs=1e-6)
    assert f"CV accuracy {record['cv']:.4f}" in done.stdout
    for k in (0, 1):
        assert (run_dir / f"fold_{k}" / "best.keras").is_file() and (run_dir / f"worker_{k}.log").is_file()


def test_resume_trains_only_the_missing_folds(toy: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    comp = toy.competition("toy")
    config = comp.config(None, {"folds": 2, "head_epochs": 1})
    run = Run.create(toy, comp, config).record
    trainer.train_folds(toy, comp, run.run_id, [0])                     # fold 0 here, in this process
    assert load_run(toy, "toy", run.run_id).status == "running"

    def not_here(*args, **kwargs):
        raise AssertionError("the parent process trained a fold")

    monkeypatch.setattr(trainer, "train_fold", not_here)
    seen: list[events.Event] = []
    done = train_parallel(toy, comp, config, workers=2, resume=run.run_id, report=seen.append)
    started = [PROCESS.match(e.message).group(1) for e in seen
               if isinstance(e, events.Stage) and PROCESS.match(e.message)]
    assert started == ["2"]                                            # fold 1 was kept, no idle worker
    assert [e.fold for e in seen if isinstance(e, events.FoldDone)] == [1]   # relayed from the worker's JSON
    assert [e for e in seen if isinstance(e, events.EpochEnd)][0].higher_is_better is True
    assert events.Progress(task="folds", done=2, total=2) in seen
    assert [e.train_size for e in seen if isinstance(e, events.DataReady)] == [60]
    assert done.status == "complete" and [f.fold for f in done.folds] == [0, 1] and done.cv is not None
    assert load_run(toy, "toy", run.run_id).cv == done.cv


def test_failing_workers_fail_the_run_naming_their_logs(toy: Project) -> None:
    comp = toy.competition("toy")
    config = comp.config(None, {"folds": 2, "head_epochs": 1})
    run = Run.create(toy, comp, config).record
    run.fingerprint = "images-of-another-day"   # the workers find other training images than the run's
    run.save()
    with pytest.raises(KitError) as e:
        train_parallel(toy, comp, config, workers=2, resume=run.run_id)
    message = str(e.value)
    for k in (0, 1):
        assert f"{run.path / f'worker_{k}.log'}: the worker for fold(s) {k + 1} failed (exit 1): error: " in message
    assert "the training images changed since run" in message and "\n" not in message
    assert run_json(run.path)["status"] == "failed" and run_json(run.path)["folds"] == []


def test_a_tpu_is_not_shared(toy: Project) -> None:
    comp = toy.competition("toy")
    with pytest.raises(KitError, match="a TPU cannot be shared"):
        train_parallel(toy, comp, comp.config(None, {"strategy": "tpu"}), workers=2)


def test_the_worker_reports_a_bad_run_in_one_line(toy: Project) -> None:
    out = subprocess.run([sys.executable, "-m", "kaggle_kit.training.parallel", "--competition", "toy", "--run", "nope"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("error: unknown run of toy 'nope'")


def test_ctrl_c_stops_every_worker_after_its_batch_and_resume_finishes_the_run(toy: Project) -> None:
    """A terminal's Ctrl-C reaches the parent and both workers (one process group): each worker
    stops after its batch by itself, the run says interrupted, and --resume trains on from there."""
    plugin = toy.root / "competitions" / "toy.py"
    plugin.write_text(plugin.read_text().replace('"batch_size": 16}', '"batch_size": 16, "patience": 1000}'))
    epochs = 30                         # never stopped early: the Ctrl-C comes long before the end
    proc = subprocess.Popen([str(KIT), "train", "toy", "--folds", "2", "--head-epochs", str(epochs),
                             "--parallel-folds", "2"], cwd=toy.root, env=toy_project.kit_env(toy.root),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not (run_dirs(toy.root) and {"0", "1"} <= {r["fold"] for r in history(run_dirs(toy.root)[0])}):
            assert proc.poll() is None and time.monotonic() < deadline, "both workers should be training"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    [run_dir] = run_dirs(toy.root)
    assert proc.returncode == 130 and "Traceback" not in err, out + err
    assert run_json(run_dir)["status"] == "interrupted"
    for k in (0, 1):
        assert (run_dir / f"worker_{k}.log").read_text().splitlines()[-1] == "interrupted"   # not killed
        assert not (run_dir / f"fold_{k}" / "result.json").exists()
    pids = {int(pid) for _, pid, _ in PROCESS.findall(out)}
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)                                            # no worker left behind

    done = kit(toy.root, "train", "--resume", run_dir.name, "--parallel-folds", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_json(run_dir)["status"] == "complete"
    for k in ("0", "1"):
        trained = [int(r["epoch"]) for r in history(run_dir) if r["fold"] == k]
        assert trained == list(range(1, epochs + 1)), f"fold {k}: each epoch once, none restarted"


def history(run_dir: Path) -> list[dict]:
    path = run_dir / "history.csv"
    return pd.read_csv(path, dtype=str).to_dict("records") if path.is_file() else []
