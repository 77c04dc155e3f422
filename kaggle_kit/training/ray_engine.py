"""The folds of one run as Ray tasks across machines: ``kaggle-kit train --ray auto|HOST:PORT``.

Needs the ``ray`` extra (``pip install 'kaggle-kit[ray]'``); ``ray`` is imported here only, inside
:func:`train_ray`, never when ``kaggle_kit`` is. The driver (the ``kaggle-kit train`` process)
connects to a running cluster (``ray start``, see docs/scale-out.md) and owns the
:class:`~kaggle_kit.training.run.Run`, as the ``--parallel-folds`` parent does:

1. one prepare task per alive node, pinned to it, builds that node's caches (manifest, decoded
   images, backbone features) and first checks that the node sees the project folder;
2. one task per unfinished fold, ``num_gpus=1`` where the cluster has GPUs, else a share of a node's
   CPUs (``TF_NUM_INTRAOP_THREADS`` set to it), runs
   :func:`~kaggle_kit.training.trainer.train_folds` on that fold. Its lock file names the driver's
   token as owner, so when a worker dies (killed, out of memory, its node lost) Ray's retry
   (``max_retries``) takes the lock over and the fold resumes after its last finished epoch;
3. the driver completes the run (CV, ``oof.csv``): the same run record a local run writes.

The tasks' progress events travel back as JSON (:func:`kaggle_kit.events.to_json`) through a
``ray.util.queue.Queue`` and are relayed to the driver's ``report``. The project folder must be on
storage every node mounts at the same path; the caches may be node-local (``KAGGLE_KIT_CACHE``).

Example (the CPU share of a fold):
    >>> fold_cpus(node_cpus=[8, 8], folds=5)       # 3 folds on a node at most: 2 CPUs each
    2
    >>> fold_cpus(node_cpus=[1, 1], folds=3)
    1
"""
from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any, Sequence

from kaggle_kit import events
from kaggle_kit.competition import Competition
from kaggle_kit.config import TrainConfig
from kaggle_kit.errors import KitError
from kaggle_kit.events import DataReady, Event, FoldDone, Progress, Report, Stage, Warned, quiet
from kaggle_kit.project import Project
from kaggle_kit.training.locks import FoldBusy
from kaggle_kit.training.parallel import RELAYED
from kaggle_kit.training.run import Run
from kaggle_kit.training.runs import RunRecord

__all__ = ["train_ray", "fold_cpus", "import_ray", "connect", "open_on_node", "MAX_RETRIES", "CONNECT_TIMEOUT_S"]

MAX_RETRIES = 3                 # attempts after the first, for a fold whose worker died
CONNECT_TIMEOUT_S = 20.0        # a Ray address that does not answer is reported within this


def import_ray() -> Any:
    """The ``ray`` module, or a one-line :class:`KitError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise KitError("--ray needs Ray: pip install 'kaggle-kit[ray]' (on every node of the cluster)") from None
    return ray


def connect(ray: Any, address: str) -> None:
    """``ray.init`` to the cluster at ``address`` (``auto``: the one started on this machine, or
    ``$RAY_ADDRESS``); one line within :data:`CONNECT_TIMEOUT_S` when it does not answer."""
    host, _, port = address.rpartition(":")
    if address != "auto":
        if not host or not port.isdigit():
            raise KitError(f"--ray {address}: expected auto or HOST:PORT (the head's `ray start --head --port`)")
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as e:
            raise KitError(f"--ray {address}: no Ray head answers there ({e.strerror or e}); start one with "
                           f"`ray start --head --port {port}`") from None
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise KitError(f"--ray {address}: could not connect to a Ray cluster: {first}") from None


def fold_cpus(*, node_cpus: Sequence[float], folds: int) -> int:
    """CPUs for one fold task: folds spread evenly over the nodes, each node's CPUs shared out."""
    if not node_cpus:
        return 1
    per_node = math.ceil(max(1, folds) / len(node_cpus))
    return max(1, int(min(node_cpus)) // per_node)


def train_ray(project: Project, competition: Competition, config: TrainConfig, *, address: str,
              resume: str | None = None, folds: Sequence[int] | None = None, report: Report = quiet,
              max_retries: int = MAX_RETRIES) -> RunRecord:
    """Train a run (or the unfinished folds of ``resume``; of them ``folds`` only) as Ray tasks on the
    cluster at ``address`` and return its record, completed when every fold is in."""
    ray = import_ray()
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    connect(ray, address)
    try:
        run = Run.open(project, competition, config, resume)
        report(run.started())
        root = str(project.root.resolve())
        with run.recording():
            queue = Queue(actor_options={"num_cpus": 0})
            nodes = [n for n in ray.nodes() if n.get("Alive")]
            report(Stage(message=f"Ray cluster at {address}: {len(nodes)} node(s), "
                                 f"{_resources_text(ray.cluster_resources())}"))
            gpus = ray.cluster_resources().get("GPU", 0)
            todo = run.todo(folds) if run.record.n_splits else list(folds or range(1 if run.config.holdout else run.config.folds))
            cpus = fold_cpus(node_cpus=[n["Resources"].get("CPU", 1) for n in nodes], folds=len(todo))
            # one environment for every task, so a node's prepare worker (TensorFlow loaded) trains its folds too
            env = {**{k: v for k, v in os.environ.items()     # where the plugins are, the cache budget...
                      if k.startswith("KAGGLE_KIT_") and k != "KAGGLE_KIT_CACHE"},   # ...the cache is the node's
                   "TF_CPP_MIN_LOG_LEVEL": "2",
                   **({} if gpus else {"TF_NUM_INTRAOP_THREADS": str(cpus), "OMP_NUM_THREADS": str(cpus)})}
            prepare = ray.remote(_prepare_task)
            refs = [prepare.options(num_cpus=1, runtime_env={"env_vars": env}, max_retries=max_retries,
                                    scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                    .remote(root, competition.slug, run.record.run_id, queue) for n in nodes]
            readies = _gather(ray, refs, queue, report)
            for warning in readies[0].warnings:
                report(Warned(message=warning))
            run.attach(readies[0])
            run.save()
            todo = run.todo(folds)
            owner = f"ray:{run.record.run_id}:{secrets.token_hex(4)}"
            options: dict[str, Any] = {"num_gpus": 1} if gpus else {"num_cpus": cpus}
            fold = ray.remote(_fold_task).options(max_retries=max_retries, retry_exceptions=False,
                                                  runtime_env={"env_vars": env}, **options)
            report(Stage(message=f"fold(s) {', '.join(str(k + 1) for k in todo)}: one Ray task each on "
                                 f"{'1 GPU' if gpus else f'{cpus} CPU(s)'}"))
            tally = [len(run.record.folds), run.record.n_splits]
            _gather(ray, [fold.remote(root, competition.slug, run.record.run_id, k, owner, queue) for k in todo],
                    queue, report, tally)
            from kaggle_kit.training.trainer import plan_data

            run.record.refresh_folds()
            if run.todo():                 # only some folds were asked for
                run.save()
                return run.record
            report(Stage(message="scoring the out-of-fold predictions"))
            data = plan_data(project, competition, run.config)
            return run.complete(data.manifest, data.splits, data.groups)
    finally:
        ray.shutdown()


def _resources_text(resources: dict[str, float]) -> str:
    gpus = int(resources.get("GPU", 0))
    return f"{int(resources.get('CPU', 0))} CPU(s)" + (f", {gpus} GPU(s)" if gpus else "")


def _gather(ray: Any, refs: list, queue: Any, report: Report, tally: list[int] | None = None) -> list:
    """Wait for ``refs`` while relaying the queued events; a failed task becomes one KitError (the
    others are cancelled; their folds' finished epochs stay for ``--resume``)."""
    results: dict[Any, Any] = {}
    pending = list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.25)
            _drain(queue, report, tally)
            for ref in done:
                results[ref] = _result(ray, ref)
        _drain(queue, report, tally)
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    return [results[r] for r in refs]


def _result(ray: Any, ref: Any) -> Any:
    from ray.exceptions import RayError, RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, FoldBusy):    # someone else trains that fold: the run is not failed
            raise FoldBusy(str(cause)) from None
        if isinstance(cause, KitError):
            raise KitError(str(cause)) from None
        raise KitError(f"a Ray task failed: {type(cause or e).__name__}: {_first_line(cause or e)}") from None
    except RayError as e:               # its worker died more than max_retries times, its node is gone...
        raise KitError(f"a Ray task failed: {type(e).__name__}: {_first_line(e)}; the finished folds and "
                       f"epochs stay (go on with --resume)") from None


def _first_line(e: BaseException) -> str:
    return next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)


def _drain(queue: Any, report: Report, tally: list[int] | None) -> None:
    n = queue.qsize()
    for line in queue.get_nowait_batch(n) if n else []:
        event = events.from_json(line)
        report(event)
        if tally is not None and isinstance(event, FoldDone):
            tally[0] += 1
            report(Progress(task="folds", done=tally[0], total=tally[1]))


# -- the tasks (run on the cluster's workers) ------------------------------------------------------------
def _relay(queue: Any, kinds: tuple[type[Event], ...]) -> Report:
    def send(event: Event) -> None:
        if isinstance(event, kinds):
            queue.put(events.to_json(event))

    return send


def _node() -> str:
    import ray

    return f"{ray.util.get_node_ip_address()} ({socket.gethostname()})"


def open_on_node(root: str, slug: str, run_id: str) -> tuple[Project, Competition]:
    """The project as this node sees it; one line naming the path and the node if it cannot."""
    run_json = Path(root) / "checkpoints" / slug / run_id / "run.json"
    project = Project(Path(root))
    if not project.checkpoints.joinpath(slug, run_id, "run.json").is_file():
        raise KitError(f"node {_node()}: cannot see the project folder {root} ({run_json} is not there); "
                       f"put the project on storage every node mounts at the same path")
    return project, project.competition(slug)


def _prepare_task(root: str, slug: str, run_id: str, queue: Any) -> DataReady:
    from kaggle_kit.training.runs import load_run
    from kaggle_kit.training.trainer import prepare

    project, competition = open_on_node(root, slug, run_id)
    started = time.perf_counter()
    ready = prepare(project, competition, load_run(project, slug, run_id).config)
    queue.put(events.to_json(Stage(message=f"node {_node()}: caches ready in {time.perf_counter() - started:.0f}s")))
    return ready.ready()


def _fold_task(root: str, slug: str, run_id: str, k: int, owner: str, queue: Any) -> int:
    from kaggle_kit.training.trainer import train_folds

    project, competition = open_on_node(root, slug, run_id)
    queue.put(events.to_json(Stage(message=f"fold {k + 1}: process {os.getpid()} on node {_node()}")))
    train_folds(project, competition, run_id, [k], owner=owner, report=_relay(queue, RELAYED))
    return k
