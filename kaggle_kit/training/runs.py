"""Run records: ``checkpoints/<slug>/<run-id>/run.json`` and friends, listed best first.

A run folder holds ``run.json`` (config, versions, seed, classes, per-fold and CV scores, timings,
excluded images, submissions), ``fold_<k>/best.keras``, ``oof.csv`` and ``history.csv``. A blend of
runs (:class:`BlendRecord`, fitted by :mod:`kaggle_kit.training.blend`) lives beside them in
``blend-<id>/``: ``blend.json`` (members, weights, nested CV) and ``oof.csv`` (its nested out-of-fold
blend); it is listed, picked by ``--best`` and loaded wherever a run is.

Example:
    >>> import tempfile
    >>> from kaggle_kit.project import Project
    >>> project = Project(Path(tempfile.mkdtemp()))
    >>> rec = RunRecord.create(project, "cifar-10", backbone="simple_cnn")
    >>> rec.status, load_run(project, "cifar-10", rec.run_id).run_id == rec.run_id
    ('running', True)
    >>> load_run(project, "cifar-10", rec.run_id).config.seed     # a TrainConfig, a dict in run.json
    42
"""
from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from kaggle_kit.atomic import atomic_write_json
from kaggle_kit.competition import Competition
from kaggle_kit.config import TrainConfig
from kaggle_kit.data.audit_record import load_audit
from kaggle_kit.errors import KitError
from kaggle_kit.project import Project
from kaggle_kit.registry import unknown_message
from kaggle_kit.training.cv import CVInterval

__all__ = ["FoldResult", "RunRecord", "BlendRecord", "Choice", "list_runs", "load_run", "choose_best", "best_run", "pick_run",
           "library_versions"]


@dataclass
class FoldResult:
    fold: int
    score: float
    best_epoch: int
    epochs: int
    train_size: int
    val_size: int
    seconds: float
    ema: bool = False                    # the best checkpoint holds the moving average of the weights


@dataclass
class RunRecord:
    run_id: str
    slug: str
    path: Path
    status: str = "running"              # running, complete, failed
    created: str = ""
    config: TrainConfig = field(default_factory=TrainConfig)   # run.json holds it as a dict
    classes: list[str] = field(default_factory=list)
    metric: str = ""
    direction: str = "max"
    folds: list[FoldResult] = field(default_factory=list)
    n_splits: int = 0
    cv: float | None = None
    cv_interval: CVInterval | None = None    # the CV's 95 % bootstrap interval (absent in older run.json)
    seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    excluded: list[dict[str, str]] = field(default_factory=list)
    train_size: int = 0
    fingerprint: str = ""                # of the training images, so a resume checks they did not change
    submissions: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    plan: dict[str, Any] | None = None   # a --budget run's plan (training/planner.py), with its estimates
    tta: str | None = None               # the TTA policy chosen on the OOF (None: a run from before TTA choice)
    tta_cv: dict[str, dict] = field(default_factory=dict)   # each TTA policy's OOF CV interval
    tta_note: str = ""                   # why that policy: its lead over no TTA

    FILE: ClassVar[str] = "run.json"
    is_blend: ClassVar[bool] = False

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "config" and not isinstance(value, TrainConfig):   # a dict, as run.json holds it
            value = TrainConfig.from_dict(value or {})
        if name == "cv_interval" and isinstance(value, dict):
            value = CVInterval.from_dict(value)
        super().__setattr__(name, value)

    # -- files ---------------------------------------------------------------------------------
    @property
    def json_path(self) -> Path:
        return self.path / self.FILE

    def fold_dir(self, k: int) -> Path:
        return self.path / f"fold_{k}"

    def model_paths(self) -> list[Path]:
        return [self.fold_dir(f.fold) / "best.keras" for f in self.folds]

    @property
    def backbone(self) -> str:
        return self.config.backbone

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def grouped(self) -> bool:
        """The folds kept groups together (a plugin group column or ``--group-duplicates``)."""
        return self.cv_interval.grouped if self.cv_interval is not None else self.config.group_duplicates

    def fold_done(self, k: int) -> bool:
        return any(f.fold == k for f in self.folds)

    def add_fold(self, result: FoldResult) -> None:
        """Record a finished fold in ``fold_<k>/result.json``, the source of truth for folds
        (parallel fold workers never write the same file; ``run.json`` keeps a summary)."""
        atomic_write_json(self.fold_dir(result.fold) / "result.json", asdict(result))
        self.refresh_folds()

    def refresh_folds(self) -> None:
        """Read the finished folds back from ``fold_<k>/result.json`` (other processes may add some)."""
        self.folds = _fold_results(self.path)

    # -- persistence ---------------------------------------------------------------------------
    @classmethod
    def create(cls, project: Project, slug: str, backbone: str = "model", **values: Any) -> "RunRecord":
        """A new run folder with a unique id (two runs started at once never share one)."""
        base = project.checkpoints / slug
        base.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        while True:
            run_id = f"{stamp}-{backbone}-{secrets.token_hex(2)}"
            try:
                (base / run_id).mkdir()
                break
            except FileExistsError:
                continue
        rec = cls(run_id=run_id, slug=slug, path=base / run_id,
                  created=datetime.now(timezone.utc).isoformat(timespec="seconds"), **values)
        rec.save()
        return rec

    def save(self) -> None:
        data = asdict(self)
        data.pop("path")
        atomic_write_json(self.json_path, data)

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        """The record in ``path``: a :class:`BlendRecord` where the folder holds ``blend.json``."""
        if cls is RunRecord and (path / BlendRecord.FILE).is_file():
            return BlendRecord.load(path)
        try:
            data = json.loads((path / cls.FILE).read_text())
        except FileNotFoundError:
            raise KitError(f"{path / cls.FILE}: run record not found") from None
        except json.JSONDecodeError as e:
            raise KitError(f"{path / cls.FILE}: not valid JSON ({e.msg}, line {e.lineno})") from None
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["folds"] = _fold_results(path) or [FoldResult(**f) for f in data.get("folds", [])]
        return cls(path=path, **data)

    def add_submission(self, *, ref: Any, file: str, message: str) -> None:
        self.submissions.append({"ref": ref, "file": file, "message": message,
                                 "date": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        self.save()


@dataclass
class BlendRecord(RunRecord):
    """A blend of finished runs of one competition (same classes, same folds): member run ids, their
    weights, how they are averaged (``space``), the nested CV (``cv``, ``cv_interval``) and what it
    was chosen over (``candidates``: each method's nested CV, ``singles``: each member's own CV on
    the same images)."""

    members: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    method: str = ""
    space: str = "linear"
    folds_fingerprint: str = ""
    candidates: list[dict[str, Any]] = field(default_factory=list)
    singles: dict[str, float] = field(default_factory=dict)
    fold_weights: list[list[float]] = field(default_factory=list)

    FILE: ClassVar[str] = "blend.json"
    is_blend: ClassVar[bool] = True

    @property
    def backbone(self) -> str:
        return f"blend of {len(self.members)}"

    @property
    def image_size(self) -> int:
        return 0

    def member_runs(self) -> list[RunRecord]:
        """The member runs' records, beside the blend's folder (a member deleted since is a one-line
        error naming it)."""
        out = []
        for run_id in self.members:
            path = self.path.parent / run_id
            if not (path / RunRecord.FILE).is_file():
                raise KitError(f"{self.json_path}: member run {run_id} is gone from {path.parent}")
            out.append(RunRecord.load(path))
        return out


def _fold_results(path: Path) -> list[FoldResult]:
    out = []
    for f in sorted(path.glob("fold_*/result.json")):
        try:
            out.append(FoldResult(**json.loads(f.read_text())))
        except (ValueError, TypeError):
            continue
    return sorted(out, key=lambda r: r.fold)


def list_runs(project: Project, competition: Competition, complete_only: bool = False) -> list[RunRecord]:
    """Runs of one competition, best CV first in the metric's direction; unscored runs last."""
    base = project.checkpoints / competition.slug
    runs = []
    if base.is_dir():
        for d in sorted(base.iterdir()):
            if (d / RunRecord.FILE).is_file() or (d / BlendRecord.FILE).is_file():
                try:
                    runs.append(RunRecord.load(d))
                except KitError:
                    continue  # a damaged record is shown by `runs --all`, not used for --best
    if complete_only:
        runs = [r for r in runs if r.status == "complete"]
    sign = -1 if competition.scorer.direction == "max" else 1
    return sorted(runs, key=lambda r: (r.cv is None, sign * (r.cv or 0.0), r.run_id))


def load_run(project: Project, slug: str, run_id: str) -> RunRecord:
    path = project.checkpoints / slug / run_id
    if not ((path / RunRecord.FILE).is_file() or (path / BlendRecord.FILE).is_file()):
        base = project.checkpoints / slug
        known = sorted(d.name for d in base.iterdir()) if base.is_dir() else []
        raise KitError(unknown_message(f"run of {slug}", run_id, known))
    return RunRecord.load(path)


@dataclass(frozen=True)
class Choice:
    """The run ``--best`` takes, the runs it was chosen among (best first) and, when the choice is
    not simply the best CV or is suspect, one line saying why."""

    run: RunRecord
    among: list[RunRecord]
    note: str = ""


def choose_best(project: Project, competition: Competition) -> Choice:
    """The best finished run by CV, except that a run whose folds were grouped (leak-aware) is
    preferred when the saved audit found duplicate groups; the note says so, or why it could not."""
    runs = [r for r in list_runs(project, competition, complete_only=True) if r.cv is not None]
    if not runs:
        raise KitError(f"{project.checkpoints / competition.slug}: no finished run of {competition.slug} yet; "
                       f"train one with `kaggle-kit train {competition.slug}`")
    found = _audit_groups(project, competition)
    if not found or runs[0].grouped:
        return Choice(runs[0], runs)
    grouped = [r for r in runs if r.grouped]
    found_text = f"the audit found {found} duplicate group(s), so ungrouped CV reads optimistic"
    if grouped:
        pick, top = grouped[0], runs[0]
        return Choice(pick, grouped, f"picked {pick.run_id} (CV {pick.cv:.4f}), the best run with grouped folds, "
                                     f"over {top.run_id} (CV {top.cv:.4f}, ungrouped): {found_text}")
    return Choice(runs[0], runs, f"{runs[0].run_id} has ungrouped folds and {found_text}; "
                                 f"train with --group-duplicates")


def _audit_groups(project: Project, competition: Competition) -> int:
    """How many duplicate groups the saved audit found (0: none, or never inspected, or unreadable)."""
    try:
        audit = load_audit(project, competition)
    except KitError:
        return 0
    return 0 if audit is None else len(audit.fold_groups) or len(audit.near_train)


def best_run(project: Project, competition: Competition) -> RunRecord:
    """The run ``--best`` takes (see :func:`choose_best`)."""
    return choose_best(project, competition).run


def pick_run(project: Project, competition: Competition, run_id: str | None) -> RunRecord:
    """``--run <id>`` if given, else the best finished run (:func:`choose_best`)."""
    return load_run(project, competition.slug, run_id) if run_id else best_run(project, competition)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("kaggle-kit", "tensorflow", "tensorflow-cpu", "keras", "numpy", "opencv-python-headless", "kaggle"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    out["python"] = ".".join(map(str, __import__("sys").version_info[:3]))
    return out
