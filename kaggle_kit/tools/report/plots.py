"""The report's PNGs, drawn with matplotlib (Agg, no global pyplot state): learning curves, the
confusion matrix, the calibration plot, and the thumbnails of the mistakes gallery."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from kaggle_kit.atomic import atomic_write
from kaggle_kit.errors import KitError
from kaggle_kit.tools.report.data import CALIBRATION_BINS, calibration_bins

__all__ = ["save_figure", "plot_curves", "plot_confusion", "plot_calibration", "write_thumbnail"]

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

