"""Prediction: a run's fold models, averaged over a TTA policy's views, and the submission CSV.

``tta`` everywhere here is a policy name (:data:`kaggle_kit.symmetry.TTA_POLICIES`: ``none``,
``flip``, ``d8``, ``scale``, ...), ``True``/``False`` (the old switch: ``flip``/``none``), or None:
the policy the run chose on its out-of-fold predictions (``run.json``'s ``tta``; :func:`resolve_tta`). A policy
whose views the competition's symmetry forbids is a one-line error.

A blend (:class:`~kaggle_kit.training.runs.BlendRecord`) predicts as the weighted mean of its member
runs' test probabilities, each member with its own fold ensemble and TTA policy (or the one a call
names), in the blend's space (:func:`~kaggle_kit.training.blend.combine`). When the metric scores
probabilities, the final probabilities are then calibrated (:mod:`kaggle_kit.prediction.calibrate`: a
temperature and floor fitted on the run's or blend's out-of-fold predictions, used where they helped
in nested CV).

Example (a notebook)::

    from kaggle_kit.project import Project
    from kaggle_kit.training.runs import best_run
    project = Project.find(); comp = project.competition("cifar-10")
    path = make_submission(project, comp, best_run(project, comp))

"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kaggle_kit.data.cache import Cache
from kaggle_kit.competition import Competition
from kaggle_kit.errors import KitError
from kaggle_kit.events import Calibrated, Progress, Report, Stage, Warned, quiet
from kaggle_kit.data.manifest import build_manifest
from kaggle_kit.project import Project
from kaggle_kit.training.blend import combine
from kaggle_kit.training.cv import load_oof
from kaggle_kit.training.runs import BlendRecord, RunRecord
from kaggle_kit.prediction.calibrate import IDENTITY, Calibration, fit_calibration
from kaggle_kit.prediction.submission import build_frame, expected_ids, validate_frame, write_submission
from kaggle_kit.model.features import backbone_outputs, view_batch
from kaggle_kit.symmetry import TTAPolicy, check_tta, get_symmetry, split_key
from kaggle_kit.training.trainer import head_only

__all__ = ["Predictor", "BlendPredictor", "load_predictor", "predict_test", "calibration_for", "submission_path",
           "make_submission", "resolve_tta"]

TTA = bool | str | None


def resolve_tta(run: RunRecord, tta: TTA, symmetry: str = "hflip") -> TTAPolicy:
    """The policy ``tta`` names for ``run``. None: the one the run chose on its OOF (a run from before
    that choice: its config's switch); True: ``flip`` where ``symmetry`` has mirrors, else ``none``;
    False: ``none``; a name: that policy, if ``symmetry`` allows its views."""
    if tta is None:
        tta = run.tta or run.config.tta
    if isinstance(tta, bool):
        tta = "flip" if tta and get_symmetry(symmetry).mirrors else "none"
    return check_tta(tta, symmetry, f"run {run.run_id}")


@dataclass
class Predictor:
    """A run's fold ensemble, loaded once. Input: uint8/float RGB batches at the run's image size."""

    run: RunRecord
    models: list
    image_size: int
    resize: str
    classes: tuple[str, ...]
    symmetry: str = "hflip"         # the competition's (which TTA views are allowed)

    @classmethod
    def from_run(cls, run: RunRecord, symmetry: str = "hflip") -> "Predictor":
        from kaggle_kit.model.classifier import load_model

        if run.status != "complete" or not run.folds:
            raise KitError(f"{run.path}: run {run.run_id} is not complete ({run.status}); "
                           f"finish it with `kaggle-kit train --resume {run.run_id}`")
        models = [load_model(p) for p in run.model_paths()]
        return cls(run=run, models=models, image_size=run.image_size,
                   resize=run.config.resize, classes=tuple(run.classes), symmetry=symmetry)

    def keys(self, tta: TTA) -> tuple[str, ...]:
        """The view keys of ``tta`` for this run (bool/None as :func:`resolve_tta`)."""
        if isinstance(tta, TTAPolicy):
            return tta.keys
        return resolve_tta(self.run, tta, self.symmetry).keys

    def predict_batch(self, images: np.ndarray, tta: TTA = False) -> np.ndarray:
        """Mean probability over the fold models and the views of ``tta``. The images under every
        view go to each model as one batch: one call per fold model."""
        x = np.asarray(images, dtype=np.float32)
        keys = self.keys(tta)
        n, views = len(x), len(keys)
        batch = np.concatenate([view_batch(k, x) for k in keys]) if keys != ("id",) else x
        total = np.zeros((views * n, len(self.classes)))
        for model in self.models:
            total += np.asarray(model.predict_on_batch(batch), dtype=np.float64)
        return total.reshape(views, n, -1).sum(axis=0) / (len(self.models) * views)

    def predict_dataset(self, records, indices: np.ndarray, tta: TTA, batch_size: int = 64,
                        report: Report = quiet) -> np.ndarray:
        from kaggle_kit.data.pipeline import image_dataset

        total = np.zeros((len(indices), len(self.classes)))
        keys = self.keys(tta)
        steps = len(self.models) * len(keys)
        for m, model in enumerate(self.models):
            for v, key in enumerate(keys):
                view, zoom = split_key(key)
                ds = image_dataset(records, indices, None, n_classes=len(self.classes), batch_size=batch_size,
                                   view=view, zoom=zoom)
                total += model.predict(ds, verbose=0)
                report(Progress(task="predict", done=m * len(keys) + v + 1, total=steps))
        return total / steps

    def predict_features(self, features, n: int, tta: TTA) -> np.ndarray:
        """For head-only runs: every fold model shares the frozen backbone, so the (cached) test
        features are computed once and only each fold's head runs. Records ``v*n .. (v+1)*n-1`` are
        the images under the policy's ``v``-th view key."""
        x = features.read_all().astype(np.float32)
        views = [x[v * n:(v + 1) * n] for v in range(len(self.keys(tta)))]
        total = np.zeros((n, len(self.classes)))
        for model in self.models:
            head = model.get_layer("head")
            for v in views:
                total += np.asarray(head(v), dtype=np.float64)
        return total / (len(self.models) * len(views))


@dataclass
class BlendPredictor:
    """A blend's member predictors, loaded once; the same interface as :class:`Predictor` for
    ``serve``. Images come at the largest member's size and are resized for the others; each member
    uses its own TTA policy, or the one a call names."""

    run: BlendRecord
    members: list[Predictor]
    image_size: int
    resize: str
    classes: tuple[str, ...]
    symmetry: str = "hflip"         # the competition's (which TTA views are allowed)

    @property
    def models(self) -> list:
        return [m for p in self.members for m in p.models]

    def predict_batch(self, images: np.ndarray, tta: TTA = False) -> np.ndarray:
        import cv2

        x = np.asarray(images)
        probas = []
        for p in self.members:
            xs = x if p.image_size == self.image_size else np.stack(
                [cv2.resize(np.asarray(i), (p.image_size, p.image_size), interpolation=cv2.INTER_AREA) for i in x])
            probas.append(p.predict_batch(xs, tta=tta or None))    # False/None: the member's own policy
        return combine(probas, self.run.weights, self.run.space)


def load_predictor(run: RunRecord, symmetry: str = "hflip") -> Predictor | BlendPredictor:
    """The run's fold ensemble, or a blend's member ensembles."""
    if not run.is_blend:
        return Predictor.from_run(run, symmetry)
    members = [Predictor.from_run(r, symmetry) for r in run.member_runs()]
    big = max(members, key=lambda p: p.image_size)
    return BlendPredictor(run=run, members=members, image_size=big.image_size, resize=big.resize,
                          classes=tuple(run.classes), symmetry=symmetry)


def _predict_blend(project: Project, competition: Competition, blend: BlendRecord, *, tta: TTA,
                   report: Report) -> tuple[list[str], np.ndarray, list[str]]:
    probas, ids, warnings = [], None, []
    for run in blend.member_runs():
        report(Stage(message=f"blend member {run.run_id} (weight {blend.weights[blend.members.index(run.run_id)]:.3f})"))
        member_ids, proba, warned = predict_test(project, competition, run, tta=tta, report=report)
        if ids is not None and member_ids != ids:
            raise KitError(f"{run.path}: member {run.run_id} predicted other test ids than the blend's first member")
        ids = member_ids
        probas.append(proba)
        warnings.extend(w for w in warned if w not in warnings)
    return ids, combine(probas, blend.weights, blend.space), warnings


def calibration_for(run: RunRecord, competition: Competition) -> Calibration:
    """The calibration fitted on the run's (or blend's) ``oof.csv`` when the metric scores
    probabilities; the identity otherwise or without out-of-fold predictions."""
    if not competition.scorer.needs_proba:
        return IDENTITY
    oof = load_oof(run.path / "oof.csv", run.classes)
    if oof is None or len(oof.ids) < 20:
        return IDENTITY
    return fit_calibration(oof.y_true, oof.proba, oof.folds)


def predict_test(project: Project, competition: Competition, run: RunRecord, *, tta: TTA,
                 report: Report = quiet) -> tuple[list[str], np.ndarray, list[str]]:
    """Test-set probabilities in submission id order, and warnings (e.g. unreadable test images).
    Raw probabilities: :func:`make_submission` calibrates them. ``tta`` None: the run's chosen policy
    (a blend's: each member's own)."""
    if run.is_blend:
        return _predict_blend(project, competition, run, tta=tta, report=report)
    root = project.data_root(competition.slug)
    manifest = build_manifest(competition, root, "test", cache_dir=project.cache)
    if len(manifest) == 0 and not manifest.excluded:
        raise KitError(f"{competition.slug} has no test split: nothing to predict")
    policy = resolve_tta(run, tta, competition.symmetries)
    predictor = Predictor.from_run(run, competition.symmetries)
    records = Cache(project.cache).images(manifest, predictor.image_size, predictor.resize, report=report)
    config = run.config
    if head_only(config):
        features = backbone_outputs(project, config, records, layer=None, views=policy.keys, report=report)
        proba = predictor.predict_features(features, len(manifest), policy)
    else:
        proba = predictor.predict_dataset(records, np.arange(len(manifest)), policy, report=report)
    by_id = {competition.submission.id_of(i): p for i, p in zip(manifest.ids, proba)}
    all_test_ids = list(manifest.ids) + [Path(e.path).name for e in manifest.excluded]
    ids = expected_ids(competition, root, all_test_ids)
    prior = proba.mean(axis=0) if len(proba) else np.full(len(competition.classes), 1 / len(competition.classes))
    warnings = [f"{e.path}: {e.reason}; predicted the mean class distribution" for e in manifest.excluded]
    return ids, np.stack([by_id.get(i, prior) for i in ids]), warnings


def submission_path(project: Project, competition: Competition, run: RunRecord, tta: TTA) -> Path:
    """``<run-id>.csv`` (no TTA), ``<run-id>-tta.csv`` (flip, as before policies), ``<run-id>-tta-<policy>.csv``;
    a blend's ``<blend-id>.csv`` when its members use their own policies."""
    if run.is_blend:
        name = "none" if tta is None or tta is False else check_tta("flip" if tta is True else tta,
                                                                    competition.symmetries, f"blend {run.run_id}").name
    else:
        name = resolve_tta(run, tta, competition.symmetries).name
    suffix = {"none": "", "flip": "-tta"}.get(name, f"-tta-{name}")
    return project.submissions / competition.slug / f"{run.run_id}{suffix}.csv"


def make_submission(project: Project, competition: Competition, run: RunRecord, *, tta: TTA = None,
                    reuse: bool = True, report: Report = quiet) -> Path:
    """The run's submission CSV: an existing valid one when ``reuse``, else a new file (never overwritten).
    ``tta`` None: the policy the run chose on its out-of-fold predictions. Probabilities are calibrated
    first when the metric scores them (:func:`calibration_for`)."""
    if not run.is_blend:
        tta = resolve_tta(run, tta, competition.symmetries).name
    path = submission_path(project, competition, run, tta)
    if reuse and path.is_file():    # checked again: every id the sample submission names, valid labels
        import pandas as pd

        id_column = competition.submission.id_column
        frame = pd.read_csv(path, dtype={id_column: str}, keep_default_na=False)
        ids = expected_ids(competition, project.data_root(competition.slug), frame.get(id_column, []))
        validate_frame(competition, frame, ids, where=str(path))
        return path
    ids, proba, warnings = predict_test(project, competition, run, tta=tta, report=report)
    for w in warnings:
        report(Warned(message=w))
    calibration = calibration_for(run, competition)
    if competition.scorer.needs_proba:
        report(Calibrated(**calibration.to_dict()))
    proba = calibration.apply(proba)
    frame = build_frame(competition.submission, competition.classes, ids, proba)
    return write_submission(competition, frame, ids, path)
