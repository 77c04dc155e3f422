"""A run's report: one offline HTML page with its plots, written beside the run.

``write_report`` reads a run's ``history.csv`` and ``oof.csv`` and writes ``<run>/report/index.html``
with PNGs beside it: learning curves per fold, the confusion matrix, precision/recall/F1 per class,
the most confident mistakes as a thumbnail gallery and, for metrics that score probabilities
(log loss), a calibration plot. Nothing is loaded from the network: the folder can be zipped,
mailed or opened offline. The page shows the run's record and configuration, never the environment.

The package: :mod:`.data` reads the run (history, out-of-fold predictions) and finds the mistakes,
:mod:`.plots` draws the PNGs, :mod:`.html` fills the template ``templates/report.html`` (Jinja2,
autoescaped) and writes the page.

Example::

    from kaggle_kit.project import Project
    from kaggle_kit.training.runs import best_run
    project = Project.find()
    comp = project.competition("cifar-10")
    write_report(project, comp, best_run(project, comp))
    # -> PosixPath('.../checkpoints/cifar-10/20261123-113203-simple_cnn-523a/report/index.html')

"""
from __future__ import annotations

from kaggle_kit.tools.report.data import (CALIBRATION_BINS, Mistake, calibration_bins, confident_mistakes,
                                          image_paths, load_history)
from kaggle_kit.tools.report.html import (REPORT_DIR, SECTIONS, THUMBS_DIR, Page, render_page,
                                          write_report)
from kaggle_kit.tools.report.plots import (plot_calibration, plot_confusion, plot_curves, save_figure,
                                           write_thumbnail)

__all__ = ["write_report", "render_page", "load_history", "image_paths", "confident_mistakes",
           "calibration_bins", "Mistake", "Page", "SECTIONS", "REPORT_DIR", "THUMBS_DIR",
           "CALIBRATION_BINS", "save_figure", "plot_curves", "plot_confusion",
           "plot_calibration", "write_thumbnail"]
