"""The report page: each section gathers its values (and draws its PNGs), then one Jinja2 template,
``templates/report.html`` (package data), lays them out with autoescaping on, so a class name, an
image id or an error message is always text, never markup.

Example:
    >>> page = render_page({"title": "toy · <run>", "per_class": {
    ...     "rows": [("<script>", "1.000", "0.500", "0.667", 2)], "macro": ("1.000", "0.500", "0.667", 2),
    ...     "accuracy": "0.5000"}})
    >>> page.split("<title>")[1].split("</title>")[0]
    'toy · &lt;run&gt;'
    >>> print(page.split("<section id='per-class'>")[1].splitlines()[2])
    <tr><td>&lt;script&gt;</td><td>1.000</td><td>0.500</td><td>0.667</td><td>2</td></tr>
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from kaggle_kit.atomic import atomic_write_text
from kaggle_kit.competition import Competition
from kaggle_kit.errors import DataError, KitError
from kaggle_kit.metrics import METRICS, get_metric
from kaggle_kit.project import Project
from kaggle_kit.tools.report.data import CALIBRATION_BINS, confident_mistakes, image_paths, load_history
from kaggle_kit.prediction.calibrate import fit_calibration
from kaggle_kit.training.cv import OutOfFold, load_oof
from kaggle_kit.tools.report.plots import plot_calibration, plot_confusion, plot_curves, write_thumbnail
from kaggle_kit.training.runs import RunRecord

__all__ = ["write_report", "render_page", "Page", "SECTIONS", "REPORT_DIR", "THUMBS_DIR", "TEMPLATE",
           "SECRET_NAME"]

REPORT_DIR = "report"
THUMBS_DIR = "thumbs"
TEMPLATE = "report.html"                        # in templates/, shipped as package data
SECRET_NAME = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class Page:
    """What the sections share: where the page goes and what it is about."""

    out_dir: Path
    project: Project
    competition: Competition
    run: RunRecord
    classes: tuple[str, ...]
    history: Any                        # pandas DataFrame or None
    oof: OutOfFold | None
    mistakes: int


def write_report(project: Project, competition: Competition, run: RunRecord, *,
                 out_dir: Path | None = None, mistakes: int = 24) -> Path:
    """Write the run's report and return the path of its ``index.html``.

    ``out_dir`` defaults to ``<run>/report``; ``mistakes`` is how many of the most confident wrong
    out-of-fold predictions the gallery shows. Raises :class:`KitError` when the run has neither
    a history nor out-of-fold predictions, or when one of them is malformed.
    """
    out_dir = Path(out_dir) if out_dir else run.path / REPORT_DIR
    classes = tuple(run.classes or competition.classes)
    history = load_history(run.path / "history.csv")
    oof = load_oof(run.path / "oof.csv", classes)
    if history is None and oof is None:
        raise KitError(f"{run.path}: run {run.run_id} has no history.csv and no oof.csv yet; "
                       f"nothing to report (status: {run.status})")
    page = Page(out_dir=out_dir, project=project, competition=competition, run=run, classes=classes,
                history=history, oof=oof, mistakes=mistakes)
    context = {name: section(page) for name, section in SECTIONS.items()}
    index = out_dir / "index.html"
    atomic_write_text(index, render_page({"title": f"{run.slug} · {run.run_id}", **context}))
    shown = {card["thumb"] for card in (context["mistakes"] or {}).get("cards", ()) if card["thumb"]}
    _remove_stale_thumbs(out_dir, shown)
    return index


@cache
def _template() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("kaggle_kit.tools.report", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    return env.get_template(TEMPLATE)


def render_page(context: Mapping[str, Any]) -> str:
    """The page from the template: ``title`` and each :data:`SECTIONS` entry's values; a section whose
    values are None (or not given) is left out."""
    return _template().render({**dict.fromkeys(SECTIONS), **context})


# -- sections: the values each one shows -------------------------------------------------------------
def section_summary(page: Page) -> dict[str, Any]:
    run, comp = page.run, page.competition
    cv = "–" if run.cv is None else f"{run.cv:.4f}"
    if run.cv_interval is not None:
        cv = f"{run.cv_interval.text()}, 95% bootstrap interval over {run.cv_interval.unit}"
    notes = [*run.warnings]
    if run.excluded:
        notes.append(f"{len(run.excluded)} unreadable image(s) left out (listed in run.json)")
    return {
        "heading": f"{comp.title or comp.slug} · run {run.run_id}",
        "warnings": notes,
        "facts": [
            ("competition", comp.slug), ("run", run.run_id), ("status", run.status),
            (f"CV {run.metric or comp.metric}", f"{cv} ({'higher' if run.direction == 'max' else 'lower'} is better)"),
            ("splits", f"{len(run.folds)}/{run.n_splits}" if run.n_splits else "–"),
            ("folds grouped", "yes (copies kept on one side of every split)" if run.grouped else "no"),
            ("backbone", f"{run.backbone} at {run.image_size}px"), ("training images", str(run.train_size)),
            ("created", run.created), ("training time", f"{run.seconds:.0f}s"),
        ],
        "folds": [(f.fold, f"{f.score:.4f}", f.best_epoch, f.epochs, f.train_size, f.val_size, f"{f.seconds:.0f}s")
                  for f in run.folds],
        "config": [(k, _shown(k, v)) for k, v in sorted(run.config.to_dict().items())],
    }


def section_curves(page: Page) -> dict[str, Any]:
    if page.history is None:
        return {"image": None, "missing": "No history.csv yet."}
    plot_curves(page.history, page.run.metric or page.competition.metric, page.out_dir / "curves.png")
    return {"image": "curves.png", "missing": None}


def section_confusion(page: Page) -> dict[str, Any]:
    if page.oof is None:
        return {"image": None, "missing": "No out-of-fold predictions (oof.csv) yet."}
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(page.oof.y_true, page.oof.y_pred, labels=range(len(page.classes)))
    plot_confusion(matrix, page.classes, page.out_dir / "confusion.png")
    return {"image": "confusion.png", "missing": None}


def section_per_class(page: Page) -> dict[str, Any] | None:
    if page.oof is None:
        return None
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        page.oof.y_true, page.oof.y_pred, labels=range(len(page.classes)), zero_division=0)
    return {
        "rows": [(c, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", int(s))
                 for c, p, r, f, s in zip(page.classes, precision, recall, f1, support)],
        "macro": (f"{precision.mean():.3f}", f"{recall.mean():.3f}", f"{f1.mean():.3f}", int(support.sum())),
        "accuracy": f"{float(np.mean(page.oof.y_pred == page.oof.y_true)):.4f}",
    }


def section_calibration(page: Page) -> dict[str, Any] | None:
    metric = page.run.metric or page.competition.metric
    if page.oof is None or metric not in METRICS or not get_metric(metric).needs_proba:  # calibration matters
        return None
    ece = plot_calibration(page.oof.y_true, page.oof.proba, page.out_dir / "calibration.png")
    fit = fit_calibration(page.oof.y_true, page.oof.proba, page.oof.folds)
    return {"image": "calibration.png", "ece": f"{ece:.4f}", "bins": CALIBRATION_BINS, "fit": fit}


def section_mistakes(page: Page) -> dict[str, Any] | None:
    if page.oof is None:
        return None
    mistakes = confident_mistakes(page.oof, page.classes, page.mistakes)
    if not mistakes:
        return {"cards": [], "unavailable": None, "wrong": 0}
    try:
        paths, unavailable = image_paths(page.project, page.competition, page.run), None
    except DataError as e:
        paths, unavailable = {}, str(e)
    cards = []
    for i, m in enumerate(mistakes):
        thumb: str | None = f"{THUMBS_DIR}/mistake_{i:03d}.png"
        source, missing = paths.get(m.id), None
        try:
            if source is None:
                raise DataError("not in the training manifest")
            write_thumbnail(source, page.out_dir / thumb)
        except DataError as e:
            thumb, missing = None, str(e)
        cards.append({"thumb": thumb, "missing": missing, "id": m.id, "fold": m.fold, "predicted": m.predicted,
                      "p_predicted": f"{m.p_predicted:.3f}", "true": m.true, "p_true": f"{m.p_true:.3f}"})
    return {"cards": cards, "unavailable": unavailable, "wrong": int((page.oof.y_pred != page.oof.y_true).sum())}


SECTIONS: dict[str, Callable[[Page], dict[str, Any] | None]] = {
    "summary": section_summary, "curves": section_curves, "confusion": section_confusion,
    "per_class": section_per_class, "calibration": section_calibration, "mistakes": section_mistakes,
}
"""Each section's values under its name in the template, in the order the page shows them."""


def _shown(name: str, value: Any) -> Any:
    """A configuration value as the page shows it: anything named like a secret is masked."""
    if isinstance(value, dict):
        return {k: _shown(k, v) for k, v in value.items()}
    return "(hidden)" if SECRET_NAME.search(name) else value


def _remove_stale_thumbs(out_dir: Path, shown: set[str]) -> None:
    """Thumbnails of an earlier report that this page no longer shows."""
    folder = out_dir / THUMBS_DIR
    if folder.is_dir():
        for thumb in folder.glob("mistake_*.png"):
            if f"{THUMBS_DIR}/{thumb.name}" not in shown:
                thumb.unlink(missing_ok=True)
