"""The folds of one run trained side by side, one process each: ``kaggle-kit train --parallel-folds N``.

The parent creates the run and has one child build the caches (manifest, decoded images, backbone
features; a child, so that the parent itself never holds a GPU). Then ``N`` fold workers each run
:func:`~kaggle_kit.training.trainer.train_folds` on their share of the folds, on their own GPU
(``CUDA_VISIBLE_DEVICES``) or, without GPUs, on their share of the CPU cores. Workers write
``fold_<k>/result.json`` and send their progress events to stdout as JSON lines
(``@kaggle-kit `` + :func:`kaggle_kit.events.to_json`), which the parent parses and relays; their
other output goes to ``<run>/worker_<first fold>.log``. The parent owns the
:class:`~kaggle_kit.training.run.Run`: when every fold is in, it completes it (CV, ``oof.csv``).

Example:
    >>> [(p.folds, p.device) for p in plan_workers([0, 1, 2, 3, 4], 2, gpus=[], cpus=16, base={})]
    [([0, 2, 4], '8 CPU threads'), ([1, 3], '8 CPU threads')]
    >>> [(p.folds, p.env["CUDA_VISIBLE_DEVICES"]) for p in plan_workers([0, 1, 2], 4, gpus=["0", "3"], cpus=16)]
    [([0, 2], '0'), ([1], '3')]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from kaggle_kit import events, interrupt
from kaggle_kit.competition import Competition
from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import KitError
from kaggle_kit.events import DataReady, Event, FoldDone, Progress, Report, Stage, quiet
from kaggle_kit.project import Project
from kaggle_kit.training.run import Run
from kaggle_kit.training.runs import RunRecord

__all__ = ["EVENT", "RELAYED", "assign_folds", "visible_gpus", "WorkerPlan", "plan_workers", "train_parallel",
           "worker_main"]

EVENT = "@kaggle-kit "                    # prefix of a progress line on a child's stdout
# the fold workers' events the parent shows (their bars would overwrite one another)
RELAYED: tuple[type[Event], ...] = (events.EpochEnd, events.FoldResumed, events.FoldDone, events.FoldSkipped,
                                    events.Warned)


def assign_folds(folds: Sequence[int], workers: int) -> list[list[int]]:
    """Folds dealt round-robin to at most ``workers`` workers (none gets an empty list)."""
    n = max(1, min(workers, len(folds)))
    return [list(folds[i::n]) for i in range(n)] if folds else []


def visible_gpus(environ: Mapping[str, str] | None = None) -> list[str]:
    """The GPU ids this process may hand out, found without starting TensorFlow:
    ``$CUDA_VISIBLE_DEVICES`` when set (up to a ``-1``), else what ``nvidia-smi`` lists."""
    environ = os.environ if environ is None else environ
    if "CUDA_VISIBLE_DEVICES" in environ:
        ids = []
        for d in (x.strip() for x in environ["CUDA_VISIBLE_DEVICES"].split(",")):
            if not d or d == "-1":
                break
            ids.append(d)
        return ids
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


@dataclass(frozen=True)
class WorkerPlan:
    folds: list[int] | None          # None: the prepare step (caches only)
    env: dict[str, str]
    device: str                      # "GPU 1" or "8 CPU threads", for the progress line


def plan_workers(folds: Sequence[int] | None, workers: int, *, gpus: Sequence[str], cpus: int,
                 base: Mapping[str, str] | None = None) -> list[WorkerPlan]:
    """Who trains what where: folds dealt round-robin, at most one worker per GPU; without GPUs the
    CPU cores are shared out (``TF_NUM_INTRAOP_THREADS``). ``folds=None`` plans the prepare step."""
    if folds is None:
        groups: list[list[int] | None] = [None]
    else:
        groups = list(assign_folds(folds, min(workers, len(gpus)) if gpus else workers))
    plans = []
    for i, group in enumerate(groups):
        env = dict(os.environ if base is None else base)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[i]
            device = f"GPU {gpus[i]}"
        else:
            threads = max(1, cpus // len(groups))
            env["TF_NUM_INTRAOP_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
            device = f"{threads} CPU thread{'s' if threads > 1 else ''}"
        plans.append(WorkerPlan(group, env, device))
    return plans


def train_parallel(project: Project, competition: Competition, config: TrainConfig, *, workers: int,
                   resume: str | None = None, report: Report = quiet) -> RunRecord:
    """Train a run (or the unfinished folds of run ``resume``) in ``workers`` fold processes and
    return it completed. A failed worker fails the run, naming its log; the folds that finished stay
    and ``resume`` trains the rest."""
    from kaggle_kit.training.trainer import plan_data

    if workers < 1:
        raise KitError(f"--parallel-folds must be at least 1, got {workers}")
    if not resume:
        _check_shareable(config, workers)
    run = Run.open(project, competition, config, resume)
    _check_shareable(run.config, workers)
    report(run.started())
    lock = threading.Lock()

    def locked(event: Event) -> None:  # the relay threads report one at a time
        with lock:
            report(event)

    with run.recording():
        gpus = visible_gpus()
        tally = _Tally(done=len(run.record.folds))
        prep = _start(project, competition, run.record, plan_workers(None, 1, gpus=gpus[:1], cpus=_cpus())[0],
                      tally, locked)
        _wait([prep])
        if prep.ready is None:
            raise KitError(f"{prep.log}: preparing the data sent no summary: {_last_line(prep.log)}")
        run.attach(prep.ready)         # a resumed run's workers check the images against its fingerprint
        run.save()
        tally.total = run.record.n_splits
        if gpus and workers > len(gpus):
            locked(events.Warned(message=f"--parallel-folds {workers}: {len(gpus)} GPU(s) here, so "
                                         f"{len(gpus)} worker(s), one per GPU"))
        _wait([_start(project, competition, run.record, plan, tally, locked)
               for plan in plan_workers(run.todo(), workers, gpus=gpus, cpus=_cpus())])
        locked(Stage(message="scoring the out-of-fold predictions"))
        data = plan_data(project, competition, run.config)   # read back from the caches, quietly
        return run.complete(data.manifest, data.splits, data.groups)


def _check_shareable(config: TrainConfig, workers: int) -> None:
    if config.strategy == "tpu" and workers > 1:
        raise KitError("--parallel-folds: a TPU cannot be shared by several processes; "
                       "use --strategy tpu without --parallel-folds")


def _cpus() -> int:
    return os.cpu_count() or 1


@dataclass
class _Tally:
    """Folds finished so far, for the parent's progress bar."""

    done: int
    total: int = 0


@dataclass
class _Child:
    plan: WorkerPlan
    log: Path
    proc: subprocess.Popen
    relay: threading.Thread | None = None
    ready: DataReady | None = None                   # the prepare step's summary

    def failure(self) -> str | None:
        if self.proc.returncode == 0:
            return None
        what = ("preparing the data" if self.plan.folds is None
                else f"the worker for fold(s) {_folds_text(self.plan.folds)}")
        return f"{self.log}: {what} failed (exit {self.proc.returncode}): {_last_line(self.log)}"


def _folds_text(folds: Sequence[int]) -> str:
    """Fold numbers as a person reads them, from 1."""
    return ", ".join(str(k + 1) for k in folds)


def _start(project: Project, competition: Competition, run: RunRecord, plan: WorkerPlan, tally: _Tally,
           report: Report) -> _Child:
    """Start ``python -m kaggle_kit.training.parallel`` as ``plan`` says, with a thread relaying its events."""
    folds = plan.folds
    log = run.path / ("prepare.log" if folds is None else f"worker_{folds[0]}.log")
    cmd = [sys.executable, "-m", "kaggle_kit.training.parallel", "--competition", competition.slug, "--run", run.run_id]
    if folds is not None:
        cmd += ["--folds", ",".join(map(str, folds))]
    env = {**plan.env, "KAGGLE_KIT_HOME": str(project.root.resolve())}
    with log.open("w") as err:
        child = _Child(plan, log, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, text=True))
    if folds is not None:
        report(Stage(message=f"fold(s) {_folds_text(folds)}: process {child.proc.pid} on {plan.device}"))
    child.relay = threading.Thread(target=_relay, args=(child, tally, report), daemon=True)
    child.relay.start()
    return child


def _relay(child: _Child, tally: _Tally, report: Report) -> None:
    """Pass a child's events on: all of the prepare step's, the fold workers' :data:`RELAYED` ones."""
    assert child.proc.stdout is not None
    for line in child.proc.stdout:
        if not line.startswith(EVENT):
            continue
        try:
            event = events.from_json(line[len(EVENT):])
        except ValueError:             # not one of ours (another kit version?): the log has the rest
            continue
        if isinstance(event, DataReady):
            child.ready = event
        if child.plan.folds is None or isinstance(event, RELAYED):
            report(event)
        if isinstance(event, FoldDone):
            tally.done += 1
            report(Progress(task="folds", done=tally.done, total=tally.total))


def _wait(children: list[_Child]) -> None:
    """Wait for every child; failures become one KitError naming each log and its last line.
    An exception or Ctrl-C in the parent stops the children first (see :func:`_stop`)."""
    try:
        for child in children:
            child.proc.wait()
            if child.relay is not None:
                child.relay.join()
    except KeyboardInterrupt:
        _stop(children, grace=STOP_GRACE_S)
        raise
    except BaseException:
        _stop(children, grace=0.0)
        raise
    failed = [f for f in (c.failure() for c in children) if f]
    if failed:
        raise KitError("; ".join(failed))


STOP_GRACE_S = 30.0


def _stop(children: list[_Child], *, grace: float) -> None:
    """Stop the children still running. A terminal's Ctrl-C reaches every process of the group, and
    a worker stops after its batch and saves: ``grace`` seconds are left for that. Then those still
    running get a SIGINT of their own (a Ctrl-C sent to the parent alone), and 30 s later SIGKILL.

    A second Ctrl-C (counted by :func:`kaggle_kit.interrupt.presses`, also one that Python's
    ``Popen.wait`` swallowed) kills them at once: a worker replaces every file it writes atomically,
    so a SIGKILL leaves nothing half-written (the finished folds stay for ``--resume``)."""
    try:
        if interrupt.presses() < 2:
            _stop_gently(children, grace)
    except KeyboardInterrupt:         # the second Ctrl-C while waiting
        pass
    for child in children:
        if child.proc.poll() is None:
            child.proc.kill()
    for child in children:
        child.proc.wait()


def _stop_gently(children: list[_Child], grace: float) -> None:
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for child in children:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGINT)
    for child in children:
        try:
            child.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


# -- the child process -------------------------------------------------------------------------------
def worker_main(argv: Sequence[str] | None = None) -> int:
    """``python -m kaggle_kit.training.parallel --competition SLUG --run RUN_ID [--folds 0,2]``: train those
    folds of the run, or without ``--folds`` build its caches. Progress goes to stdout as JSON lines."""
    parser = argparse.ArgumentParser(prog="python -m kaggle_kit.training.parallel")
    parser.add_argument("--competition", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--folds", help="comma-separated fold numbers; without it: build the caches only")
    args = parser.parse_args(argv)
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the libraries print goes to the log, not into the event stream

    def emit(event: Event) -> None:
        stream.write(EVENT + events.to_json(event) + "\n")

    try:
        from kaggle_kit.training.runs import load_run
        from kaggle_kit.training.trainer import prepare, train_folds

        project = Project.find()
        competition = project.competition(args.competition)
        if args.folds is None:         # ends with the DataReady event the parent records
            prepare(project, competition, load_run(project, competition.slug, args.run).config, emit)
        else:
            folds = [int(k) for k in args.folds.split(",") if k]
            train_folds(project, competition, args.run, folds, report=emit)
    except KitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:         # stopped after a batch; the parent records the run as interrupted
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        stream.flush()
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
