"""A run's report: one offline HTML page with its plots, written beside the run.

``write_report`` reads a run's ``history.csv`` and ``oof.csv`` and writes ``<run>/report/index.html``
with PNGs beside it: learning curves per fold, the confusion matrix, precision/recall/F1 per class,
the most confident mistakes as a thumbnail gallery and, for metrics that score probabilities
(log loss), a calibration plot. Nothing is loaded from the network: the folder can be zipped,
mailed or opened offline. The page shows the run's record and configuration, never the environment.

Example::

    from kaggle_kit.project import Project
    from kaggle_kit.training.runs import best_run
    project = Project.find()
    comp = project.competition("cifar-10")
    write_report(project, comp, best_run(project, comp))
    # -> PosixPath('.../checkpoints/cifar-10/20261123-113203-simple_cnn-523a/report/index.html')

"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import quote

import numpy as np

from kaggle_kit.atomic import atomic_write, atomic_write_text
from kaggle_kit.competition import Competition
from kaggle_kit.errors import DataError, KitError
from kaggle_kit.project import Project
from kaggle_kit.training.runs import RunRecord

REPORT_DIR = "report"
THUMBS_DIR = "thumbs"
PROBABILITY_METRICS = frozenset({"log_loss"})   # metrics that score probabilities: calibration matters
SECRET_NAME = re.compile(r"key|token|secret|password|credential", re.IGNORECASE)
CALIBRATION_BINS = 10


@dataclass(frozen=True, kw_only=True)
class OutOfFold:
    """``oof.csv`` as arrays: one row per training image, probabilities in class order."""

    ids: tuple[str, ...]
    folds: np.ndarray
    y_true: np.ndarray                  # class indices
    proba: np.ndarray                   # (n, n_classes)

    @property
    def y_pred(self) -> np.ndarray:
        return self.proba.argmax(axis=1)


@dataclass(frozen=True, kw_only=True)
class Mistake:
    id: str
    fold: int
    true: str
    predicted: str
    p_predicted: float
    p_true: float
    thumb: str | None = None            # path relative to the page, None when the image is unavailable
    note: str = ""


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
    body = "\n".join(section(page) for section in SECTIONS)
    index = out_dir / "index.html"
    atomic_write_text(index, render_page(f"{run.slug} · {run.run_id}", body))
    _remove_stale_thumbs(out_dir, body)
    return index


# -- reading the run -------------------------------------------------------------------------------
def load_history(path: Path):
    """``history.csv`` sorted by fold, phase and epoch, with ``step`` = the epoch's position in its
    fold (phase 2 continues after phase 1); a row repeated by a resume keeps its last copy."""
    import pandas as pd

    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as e:
        raise KitError(f"{path}: not a readable history CSV ({e})") from None
    missing = {"fold", "phase", "epoch"} - set(frame.columns)
    if missing:
        raise KitError(f"{path}: history has no column(s) {', '.join(sorted(missing))}")
    if frame.empty:
        return None
    frame = (frame.drop_duplicates(["fold", "phase", "epoch"], keep="last")
             .sort_values(["fold", "phase", "epoch"]).reset_index(drop=True))
    frame["step"] = frame.groupby("fold").cumcount() + 1
    return frame


def load_oof(path: Path, classes: Sequence[str]) -> OutOfFold | None:
    """``oof.csv`` (id, fold, label, one probability column per class) as :class:`OutOfFold`."""
    import pandas as pd

    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, dtype={"id": str, "label": str})
    except (ValueError, pd.errors.ParserError) as e:
        raise KitError(f"{path}: not a readable out-of-fold CSV ({e})") from None
    missing = [c for c in ("id", "fold", "label", *classes) if c not in frame.columns]
    if missing:
        raise KitError(f"{path}: out-of-fold predictions have no column(s) {', '.join(missing)}")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(frame["label"]) - set(index))
    if unknown:
        raise KitError(f"{path}: label(s) not among the run's classes: {', '.join(map(str, unknown[:5]))}")
    return OutOfFold(ids=tuple(frame["id"]), folds=frame["fold"].to_numpy(np.int64),
                     y_true=frame["label"].map(index).to_numpy(np.int64),
                     proba=frame[list(classes)].to_numpy(np.float64))


def image_paths(project: Project, competition: Competition, run: RunRecord) -> dict[str, Path]:
    """Training image id -> path, through the same manifest the run trained on."""
    from kaggle_kit.data.manifest import build_manifest

    manifest = build_manifest(competition, project.data_root(competition.slug), "train",
                              cache_dir=project.cache, limit=run.config.get("limit"),
                              seed=run.config.get("seed", 0))
    return dict(zip(manifest.ids, manifest.paths))


# -- analysis --------------------------------------------------------------------------------------
def confident_mistakes(oof: OutOfFold, classes: Sequence[str], n: int) -> list[Mistake]:
    """The ``n`` wrong predictions made with the highest probability, most confident first."""
    pred = oof.y_pred
    rows = np.arange(len(pred))
    p_pred = oof.proba[rows, pred]
    wrong = np.flatnonzero(pred != oof.y_true)
    order = wrong[np.argsort(-p_pred[wrong], kind="stable")][:max(n, 0)]
    return [Mistake(id=oof.ids[i], fold=int(oof.folds[i]), true=classes[oof.y_true[i]],
                    predicted=classes[pred[i]], p_predicted=float(p_pred[i]),
                    p_true=float(oof.proba[i, oof.y_true[i]])) for i in order]


def calibration_bins(y_true: np.ndarray, proba: np.ndarray, bins: int = CALIBRATION_BINS):
    """Top-class confidence against accuracy in ``bins`` equal-width bins.

    Returns (mean confidence, accuracy, count) per bin (NaN where empty) and the expected
    calibration error (the count-weighted mean gap).

    Example:
        >>> conf, acc, count, ece = calibration_bins(np.array([0, 1]), np.array([[0.9, 0.1], [0.8, 0.2]]), 2)
        >>> count.tolist(), round(ece, 2)
        ([0, 2], 0.35)
    """
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, confidence, bins) / count
        accuracy = np.bincount(which, correct, bins) / count
    gaps = np.where(count > 0, np.abs(np.nan_to_num(mean_conf) - np.nan_to_num(accuracy)), 0.0)
    ece = float((gaps * count).sum() / max(count.sum(), 1))
    return mean_conf, accuracy, count, ece


# -- plots -----------------------------------------------------------------------------------------
def save_figure(path: Path, draw: Callable[[Any], None], size: tuple[float, float]) -> None:
    """Draw on a fresh matplotlib figure (Agg, no global pyplot state) and write it as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"), suffix=".png")


def plot_curves(history, metric: str, path: Path) -> None:
    """Training loss, validation metric, validation log loss and learning rate per fold."""
    from matplotlib.ticker import MaxNLocator

    panels: list[tuple[str, str]] = []
    for column, title in (("loss", "training loss"), ("val_score", f"validation {metric}"),
                          ("val_logloss", "validation log loss"), ("lr", "learning rate")):
        shown = column in history.columns and history[column].notna().any()
        if shown and not any(history[column].equals(history[c]) for c, _ in panels):  # log loss is the metric
            panels.append((column, title))

    def draw(fig) -> None:
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (column, title) in zip(axes, panels):
            for k, (fold, rows) in enumerate(history.groupby("fold")):
                colour = f"C{k % 10}"
                ax.plot(rows["step"], rows[column], marker="o", markersize=3, color=colour, label=f"fold {fold}")
                later = rows[rows["phase"] > rows["phase"].iloc[0]]
                if len(later):  # where fine-tuning started
                    ax.axvline(later["step"].iloc[0] - 0.5, color=colour, linestyle=":", alpha=0.6)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            if column == "lr":
                ax.set_yscale("log")
        axes[0].legend(fontsize="small")

    save_figure(path, draw, (4.0 * len(panels), 3.4))


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: Path) -> None:
    """Counts, coloured by the share of each true class; numbers written up to 25 classes."""
    n = len(classes)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)

    def draw(fig) -> None:
        ax = fig.subplots()
        image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
        ax.set_xticks(range(n), labels=classes, rotation=90 if n > 6 else 0, fontsize="small")
        ax.set_yticks(range(n), labels=classes, fontsize="small")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if n <= 25:
            for (i, j), value in np.ndenumerate(matrix):
                ax.text(j, i, str(value), ha="center", va="center", fontsize="small",
                        color="white" if share[i, j] > 0.5 else "black")

    side = min(24.0, max(4.5, 0.4 * n + 2.5))
    save_figure(path, draw, (side + 1.0, side))


def plot_calibration(y_true: np.ndarray, proba: np.ndarray, path: Path) -> float:
    """Reliability diagram of the top-class probability; returns the expected calibration error."""
    conf, acc, count, ece = calibration_bins(y_true, proba)
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2

    def draw(fig) -> None:
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
        top.bar(centres, np.nan_to_num(acc), width=1 / CALIBRATION_BINS, edgecolor="black", alpha=0.7,
                label="accuracy in bin")
        top.plot(conf, acc, marker="o", color="C3", label="accuracy at the bin's mean confidence")
        top.set_ylabel("accuracy")
        top.set_ylim(0, 1)
        top.set_title(f"calibration (expected calibration error {ece:.3f})")
        top.legend(fontsize="small", loc="upper left")
        bottom.bar(centres, count, width=1 / CALIBRATION_BINS, color="C0", edgecolor="black")
        bottom.set_xlabel("predicted probability of the top class")
        bottom.set_ylabel("images")
        bottom.set_xlim(0, 1)

    save_figure(path, draw, (6.0, 6.0))
    return ece


def write_thumbnail(source: Path, target: Path, side: int = 128) -> None:
    """A PNG no larger than ``side`` pixels on its long side."""
    import cv2

    from kaggle_kit.data.images import read_rgb

    image = read_rgb(source)
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise KitError(f"{target}: could not encode the thumbnail of {source}")
    atomic_write(target, lambda tmp: tmp.write_bytes(data.tobytes()), suffix=".png")


# -- sections --------------------------------------------------------------------------------------
def section_summary(page: Page) -> str:
    run, comp = page.run, page.competition
    cv = "–" if run.cv is None else f"{run.cv:.4f}"
    facts = [
        ("competition", comp.slug), ("run", run.run_id), ("status", run.status),
        (f"CV {run.metric or comp.metric}", f"{cv} ({'higher' if run.direction == 'max' else 'lower'} is better)"),
        ("splits", f"{len(run.folds)}/{run.n_splits}" if run.n_splits else "–"),
        ("backbone", f"{run.backbone} at {run.image_size}px"), ("training images", str(run.train_size)),
        ("created", run.created), ("training time", f"{run.seconds:.0f}s"),
    ]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    folds = "".join(
        f"<tr><td>{f.fold}</td><td>{f.score:.4f}</td><td>{f.best_epoch}</td><td>{f.epochs}</td>"
        f"<td>{f.train_size}</td><td>{f.val_size}</td><td>{f.seconds:.0f}s</td></tr>" for f in run.folds)
    fold_table = (f"<table><tr><th>fold</th><th>score</th><th>best epoch</th><th>epochs</th><th>train</th>"
                  f"<th>validation</th><th>time</th></tr>{folds}</table>") if folds else ""
    config = "".join(f"<tr><th>{_e(k)}</th><td>{_e(_shown(k, v))}</td></tr>" for k, v in sorted(run.config.items()))
    notes = [*run.warnings]
    if run.excluded:
        notes.append(f"{len(run.excluded)} unreadable image(s) left out (listed in run.json)")
    warn = "".join(f"<p class='warn'>{_e(w)}</p>" for w in notes)
    return (f"<h1>{_e(comp.title or comp.slug)} · run {_e(run.run_id)}</h1>{warn}"
            f"<section id='summary'><table>{rows}</table>{fold_table}"
            f"<details><summary>training configuration</summary><table>{config}</table></details></section>")


def section_curves(page: Page) -> str:
    if page.history is None:
        return _section("curves", "Learning curves", "<p>No history.csv yet.</p>")
    plot_curves(page.history, page.run.metric or page.competition.metric, page.out_dir / "curves.png")
    return _section("curves", "Learning curves",
                    _img("curves.png", "learning curves per fold")
                    + "<p class='note'>One line per fold; a dotted line marks where fine-tuning began.</p>")


def section_confusion(page: Page) -> str:
    if page.oof is None:
        return _section("confusion", "Confusion matrix", "<p>No out-of-fold predictions (oof.csv) yet.</p>")
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(page.oof.y_true, page.oof.y_pred, labels=range(len(page.classes)))
    plot_confusion(matrix, page.classes, page.out_dir / "confusion.png")
    return _section("confusion", "Confusion matrix (out-of-fold)", _img("confusion.png", "confusion matrix"))


def section_per_class(page: Page) -> str:
    if page.oof is None:
        return ""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        page.oof.y_true, page.oof.y_pred, labels=range(len(page.classes)), zero_division=0)
    rows = "".join(f"<tr><td>{_e(c)}</td><td>{p:.3f}</td><td>{r:.3f}</td><td>{f:.3f}</td><td>{s}</td></tr>"
                   for c, p, r, f, s in zip(page.classes, precision, recall, f1, support))
    accuracy = float(np.mean(page.oof.y_pred == page.oof.y_true))
    table = (f"<table class='num'><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>"
             f"{rows}<tr class='total'><td>macro average</td><td>{precision.mean():.3f}</td><td>{recall.mean():.3f}</td>"
             f"<td>{f1.mean():.3f}</td><td>{int(support.sum())}</td></tr></table>"
             f"<p>Out-of-fold accuracy {accuracy:.4f}.</p>")
    return _section("per-class", "Per-class precision, recall and F1", table)


def section_mistakes(page: Page) -> str:
    if page.oof is None:
        return ""
    mistakes = confident_mistakes(page.oof, page.classes, page.mistakes)
    if not mistakes:
        return _section("mistakes", "Most confident mistakes", "<p>No out-of-fold prediction is wrong.</p>")
    try:
        paths = image_paths(page.project, page.competition, page.run)
        note = ""
    except DataError as e:
        paths, note = {}, f"<p class='warn'>Training images unavailable, no thumbnails: {_e(str(e))}</p>"
    cards = []
    for i, m in enumerate(mistakes):
        thumb = f"{THUMBS_DIR}/mistake_{i:03d}.png"
        source = paths.get(m.id)
        try:
            if source is None:
                raise DataError("not in the training manifest")
            write_thumbnail(source, page.out_dir / thumb)
            picture = _img(thumb, m.id)
        except DataError as e:
            picture = f"<div class='missing'>image unavailable: {_e(str(e))}</div>"
        cards.append(f"<figure>{picture}<figcaption><b>{_e(m.predicted)}</b> {m.p_predicted:.3f}<br>"
                     f"true: {_e(m.true)} ({m.p_true:.3f})<br><span class='id'>{_e(m.id)} · fold {m.fold}"
                     f"</span></figcaption></figure>")
    wrong = int((page.oof.y_pred != page.oof.y_true).sum())
    intro = (f"<p>{len(mistakes)} of {wrong} wrong out-of-fold predictions, most confident first: "
             f"predicted class and its probability, then the true class and the probability given to it.</p>")
    return _section("mistakes", "Most confident mistakes", note + intro + f"<div class='gallery'>{''.join(cards)}</div>")


def section_calibration(page: Page) -> str:
    metric = page.run.metric or page.competition.metric
    if page.oof is None or metric not in PROBABILITY_METRICS:
        return ""
    ece = plot_calibration(page.oof.y_true, page.oof.proba, page.out_dir / "calibration.png")
    return _section("calibration", "Calibration",
                    _img("calibration.png", "calibration plot")
                    + f"<p>Expected calibration error {ece:.4f}: the count-weighted gap between the top "
                      f"class's probability and how often it is right.</p>")


SECTIONS: tuple[Callable[[Page], str], ...] = (section_summary, section_curves, section_confusion,
                                               section_per_class, section_calibration, section_mistakes)


# -- HTML ------------------------------------------------------------------------------------------
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; } th, td { padding: 2px 10px; text-align: left; }
tr:nth-child(even) { background: #f5f5f5; } table.num td + td { text-align: right; font-variant-numeric: tabular-nums; }
tr.total { font-weight: bold; border-top: 1px solid #999; }
img.plot { max-width: 100%; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
figure { margin: 0; width: 150px; border: 1px solid #ddd; padding: 6px; background: #fafafa; }
figure img { width: 128px; height: 128px; object-fit: contain; image-rendering: pixelated; display: block; }
figcaption { font-size: 12px; margin-top: 4px; overflow-wrap: anywhere; } .id { color: #777; }
.warn { color: #a15c00; } .note { color: #666; } .missing { width: 128px; height: 128px; color: #a00; font-size: 12px; }
"""

# Records on load how many images failed to decode: a browser test reads it from the DOM.
IMAGE_CHECK = """window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  document.body.dataset.images = images.length;
  document.body.dataset.brokenImages = images.filter(function (i) { return !i.complete || i.naturalWidth === 0; }).length;
});"""


def render_page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<style>{STYLE}</style><script>{IMAGE_CHECK}</script></head>\n<body>\n{body}\n"
            f"<p class='note'>Written by kaggle-kit report.</p></body></html>\n")


def _section(anchor: str, title: str, content: str) -> str:
    return f"<section id='{anchor}'><h2>{_e(title)}</h2>{content}</section>"


def _img(src: str, alt: str) -> str:
    kind = "" if src.startswith(THUMBS_DIR) else " class='plot'"
    return f"<img{kind} src='{quote(src)}' alt='{_e(alt)}'>"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _shown(name: str, value: Any) -> Any:
    """A configuration value as the page shows it: anything named like a secret is masked."""
    if isinstance(value, dict):
        return {k: _shown(k, v) for k, v in value.items()}
    return "(hidden)" if SECRET_NAME.search(name) else value


def _remove_stale_thumbs(out_dir: Path, body: str) -> None:
    """Thumbnails of an earlier report that this page no longer shows."""
    folder = out_dir / THUMBS_DIR
    if folder.is_dir():
        for thumb in folder.glob("mistake_*.png"):
            if f"{THUMBS_DIR}/{thumb.name}" not in body:
                thumb.unlink(missing_ok=True)
