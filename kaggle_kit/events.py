"""Typed progress events: what the library tells whoever is watching, as frozen dataclasses.

Library code never prints. A long call (``train``, ``predict``, ``run_audit``, ``serve``) takes a
``report`` callable and calls it with one of the events below; a renderer draws them (see
:mod:`kaggle_kit.progress`: rich in a terminal, the same in Jupyter). ``--parallel-folds`` workers send
the same events to their parent as JSON lines (:func:`to_json` / :func:`from_json`), so one schema
serves both.

Example:
    >>> seen = []
    >>> report = seen.append
    >>> report(FoldDone(fold=0, folds=5, score=0.91))
    >>> from_json(to_json(seen[0])) == seen[0]
    True
    >>> seen[0].fold_number            # folds are counted from 1 wherever a person reads them
    1
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

__all__ = [
    "Event", "Report", "Tick", "quiet", "ticker", "to_json", "from_json", "event_types",
    "RunStarted", "Stage", "Progress", "DataReady", "EpochBegin", "Batch", "EpochEnd", "PhaseEnd",
    "FoldResumed", "FoldSkipped", "FoldDone", "Warned", "ServerReady", "PlanReady", "BudgetStop", "Calibrated",
    "NotebookStatus",
]

_TYPES: dict[str, type["Event"]] = {}


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every progress event; subclasses register themselves by class name."""

    name: ClassVar[str] = "event"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.__name__
        _TYPES[cls.__name__] = cls


Report = Callable[[Event], None]
"""What the library calls with each event; ``list.append`` is a valid one."""


Tick = Callable[[int, int], None]
"""A plain ``(done, total)`` progress callback, what the data layer's loops take (see :func:`ticker`)."""


def quiet(event: Event) -> None:
    """The default ``report``: ignores every event."""


def ticker(report: Report, task: str) -> Tick:
    """A :data:`Tick` that reports ``Progress(task=task, ...)``.

    >>> seen = []
    >>> ticker(seen.append, "check")(3, 10)
    >>> seen
    [Progress(task='check', done=3, total=10)]
    """
    return lambda done, total: report(Progress(task=task, done=done, total=total))


def event_types() -> list[str]:
    """The names of all event classes, the ``event`` field of their JSON form."""
    return sorted(_TYPES)


def to_json(event: Event) -> str:
    """One line of JSON: ``{"event": "<class name>", **fields}``."""
    return json.dumps({"event": event.name, **dataclasses.asdict(event)}, default=float)


def from_json(line: str) -> Event:
    """The event :func:`to_json` wrote; an unknown event name raises ``ValueError``."""
    data = json.loads(line)
    cls = _TYPES.get(data.pop("event", ""))
    if cls is None:
        raise ValueError(f"not a kaggle-kit event: {line[:80]!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


class _FoldEvent:
    fold: int

    @property
    def fold_number(self) -> int:
        """The fold counted from 1, as every message shows it (``fold`` itself counts from 0)."""
        return self.fold + 1


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    """A run was created or resumed; its record lives in ``path``."""

    run_id: str
    path: str
    resumed: bool = False


@dataclass(frozen=True, kw_only=True)
class Stage(Event):
    """A step begins (caching images, computing features, hashing ...). ``cached``: it is read from the
    on-disk cache, not computed."""

    message: str
    cached: bool = False


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    """``done`` of ``total`` units of the task ``task`` (``cache``, ``features``, ``predict`` ...)."""

    task: str
    done: int
    total: int


@dataclass(frozen=True, kw_only=True)
class DataReady(Event):
    """The training data of a run is ready: ``train_size`` images (``excluded``: the unreadable ones
    left out, as ``{"path", "reason"}``) in ``splits`` splits; ``fingerprint`` identifies the images."""

    splits: int
    train_size: int
    fingerprint: str
    excluded: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class EpochBegin(_FoldEvent, Event):
    fold: int
    phase: int
    epoch: int            # from 1
    epochs: int | None
    steps: int | None


@dataclass(frozen=True, kw_only=True)
class Batch(_FoldEvent, Event):
    fold: int
    phase: int
    step: int             # from 1
    steps: int | None


@dataclass(frozen=True, kw_only=True)
class EpochEnd(_FoldEvent, Event):
    """An epoch ended; ``logs`` holds ``loss``, ``val_score``, ``val_logloss``, ``lr``.
    ``higher_is_better``: the competition metric's direction, so a renderer can name the best epoch."""

    fold: int
    phase: int
    epoch: int            # from 1
    epochs: int | None
    logs: dict[str, float] = field(default_factory=dict)
    higher_is_better: bool = True


@dataclass(frozen=True, kw_only=True)
class PhaseEnd(_FoldEvent, Event):
    fold: int
    phase: int


@dataclass(frozen=True, kw_only=True)
class FoldResumed(_FoldEvent, Event):
    """A fold resumes ``phase`` after ``epoch`` finished epochs."""

    fold: int
    phase: int
    epoch: int


@dataclass(frozen=True, kw_only=True)
class FoldSkipped(_FoldEvent, Event):
    """A fold that had already finished is kept as it is."""

    fold: int


@dataclass(frozen=True, kw_only=True)
class FoldDone(_FoldEvent, Event):
    fold: int
    folds: int
    score: float


@dataclass(frozen=True, kw_only=True)
class PlanReady(Event):
    """A ``--budget`` run's plan, chosen before training: ``plan`` says what it trains, ``stages`` the
    estimated seconds of each step, ``spent_s`` the time already gone (reading the data, ``probed``)."""

    budget: str
    budget_s: float
    plan: str
    estimate_s: float
    spent_s: float
    stages: dict[str, float] = field(default_factory=dict)
    probed: list[str] = field(default_factory=list)
    candidates: int = 0


@dataclass(frozen=True, kw_only=True)
class BudgetStop(_FoldEvent, Event):
    """A phase of fold ``fold`` stopped after ``epoch`` of ``epochs`` (0: skipped) to end within the
    budget; ``left_s`` were left for this fold. The best checkpoint so far is kept."""

    fold: int
    phase: int
    epoch: int
    epochs: int
    left_s: float


@dataclass(frozen=True, kw_only=True)
class Warned(Event):
    """Something the user should know; the work goes on."""

    message: str


@dataclass(frozen=True, kw_only=True)
class ServerReady(Event):
    """``serve`` is listening."""

    url: str
    run_id: str
    folds: int
    tta: str | None                # the TTA policy answers use (None: a blend's members each their own)
    top_k: int
    max_bytes: int
    batch_window_ms: float = 0.0   # 0: every request runs alone
    max_batch: int = 1
    calibrated: bool = False       # the probabilities go through the run's fitted temperature and floor

    @property
    def service(self) -> str:
        """``2 fold model(s), tta flip, calibrated, batching up to 32 requests within 5 ms``."""
        return (f"{self.folds} fold model(s), tta {self.tta or 'of each member'}"
                f"{', calibrated' if self.calibrated else ''}, {self.batching}")

    @property
    def batching(self) -> str:
        """``batching up to 32 requests within 5 ms``, or ``batching off``."""
        if self.batch_window_ms <= 0 or self.max_batch <= 1:
            return "batching off"
        return f"batching up to {self.max_batch} requests within {self.batch_window_ms:g} ms"


@dataclass(frozen=True, kw_only=True)
class Calibrated(Event):
    """The temperature and probability floor fitted on the out-of-fold predictions for a probability
    metric, the OOF log loss and calibration error before and after (nested CV), and whether they are
    ``used`` on the test probabilities (only where they helped)."""

    temperature: float
    floor: float
    used: bool
    raw_log_loss: float
    nested_log_loss: float
    raw_ece: float
    nested_ece: float


@dataclass(frozen=True, kw_only=True)
class NotebookStatus(Event):
    """A pushed notebook version's state on Kaggle (``queued``, ``running``, ``complete``, ``error``), polled."""

    notebook: str          # <owner>/<slug>
    version: int
    status: str
    seconds: float         # since it was pushed
