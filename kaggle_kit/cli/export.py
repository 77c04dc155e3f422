"""The export command: a run's fold ensemble as one model file (see kaggle_kit/prediction/export.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

from kaggle_kit.cli.base import arg, command, competition_arg, console, pick_and_say, run_args
from kaggle_kit.cli.core import one_of, tta_args
from kaggle_kit.prediction.export import EXPORT_FORMATS

__all__ = ["export_cmd"]


@command("export", "write a run's fold ensemble (preprocessing, TTA views, average) as one model file",
         competition_arg(),
         *run_args(),
         arg("--format", dest="fmt", default="savedmodel", **one_of(EXPORT_FORMATS),
             help="savedmodel (a folder), keras, onnx or tflite (default savedmodel)"),
         *tta_args(),
         arg("--out", type=Path, metavar="PATH",
             help="where to write it (default exports/<slug>/<run-id>[-tta[-POLICY]].<format suffix>)"))
def export_cmd(args: argparse.Namespace) -> int:
    from kaggle_kit.api import export
    from kaggle_kit.project import Project

    project = Project.find()
    comp = project.competition(args.competition)
    out = console()
    run = pick_and_say(project, comp, args.run, out)
    done = export(run, format=args.fmt, competition=comp, project=project, tta=args.tta, out=args.out)
    size = done.image_size
    out.print(f"wrote {done.path} ({done.format}: run {run.run_id}, {done.folds} fold(s), "
              f"TTA {done.tta})")
    out.print(f"  input: float32 RGB 0-255 (N, {size}, {size}, 3), resized with --resize {run.config.resize}; "
              f"output: (N, {len(done.classes)}) probabilities of {', '.join(done.classes)}")
    out.print(f"  load: {EXPORT_FORMATS.get(done.format).load}")
    out.print(f"  facts: {done.info_path}")
    return 0
