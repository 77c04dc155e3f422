"""Core commands: competitions, use, train, runs, predict."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from kaggle_kit import interrupt
from kaggle_kit.cli.base import arg, best_choice, command, competition_arg, console, cv_text, pick_and_say, run_args
from kaggle_kit.data.augment import AUGMENTS
from kaggle_kit.data.resize import RESIZERS
from kaggle_kit.errors import KitError
from kaggle_kit.model.backbones import BACKBONES
from kaggle_kit.model.model_files import looks_like_path
from kaggle_kit.model.strategy import STRATEGIES
from kaggle_kit.errors import KitError
from kaggle_kit.registry import Registry, unknown_message
from kaggle_kit.training.optim import BN_MODES, OPTIMIZERS
from kaggle_kit.training.schedules import SCHEDULES
from kaggle_kit.symmetry import list_tta

__all__ = ["competitions", "use", "train_cmd", "runs_cmd", "predict_cmd", "one_of", "tta_args"]


def one_of(registry: Registry) -> dict:
    """``choices=`` and ``type=`` for an option naming an entry of ``registry``: the help lists the
    names, and a misspelt one is refused with close matches (``did you mean ...?``)."""

    def check(value: str) -> str:
        if value not in registry:
            raise argparse.ArgumentTypeError(unknown_message(registry.kind, value, registry.names()))
        return value

    return {"choices": registry.names(), "type": check}


def _backbone_arg(value: str) -> str:
    """A registered backbone, or a path: made absolute when it exists, so ``run.json`` (and a resume or a
    fold worker started elsewhere) finds it; checked, like every option, by ``TrainConfig.validate``."""
    if value in BACKBONES:
        return value
    if not looks_like_path(value):
        raise argparse.ArgumentTypeError(unknown_message(BACKBONES.kind, value, BACKBONES.names()))
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def _budget_arg(value: str) -> str:
    from kaggle_kit.config import parse_budget
    from kaggle_kit.errors import KitError

    try:
        parse_budget(value)
    except KitError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def _fold_list(value: str) -> list[int]:
    """``0,2`` -> ``[0, 2]``: fold numbers as the ``fold_<k>`` folders count them."""
    try:
        folds = sorted({int(k) for k in value.split(",") if k.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fold numbers like 0,2, got {value!r}") from None
    if not folds or folds[0] < 0:
        raise argparse.ArgumentTypeError(f"expected fold numbers (from 0) like 0,2, got {value!r}")
    return folds


def _run_ids(project, slug: str) -> set[str]:
    folder = project.checkpoints / slug
    return {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()


def _newest(project, slug: str, run_ids: set[str]) -> str | None:
    """The most recently changed of ``run_ids`` (the run this command created), or None."""
    folder = project.checkpoints / slug
    return max(run_ids, key=lambda r: (folder / r).stat().st_mtime, default=None)


def _project():
    from kaggle_kit.project import Project

    return Project.find()


@command("competitions", "list the known competitions (plugins) and their data status")
def competitions(args: argparse.Namespace) -> int:
    from rich.table import Table
    from rich.text import Text

    project = _project()
    default = project.default_slug()
    table = Table("slug", "classes", "metric", "submission", "data", "plugin", box=None)
    for slug, comp in sorted(project.competitions.items()):
        root = project.data_root(slug)
        fetched = (root / ".kaggle-kit-fetched.json").is_file() or (root.is_dir() and any(root.iterdir()))
        mark = " *" if slug == default else ""
        table.add_row(slug + mark, str(len(comp.classes)), f"{comp.metric} ({comp.scorer.direction})",
                      comp.submission.labels, "ready" if fetched else "not fetched",
                      _short(comp.source, project.root))
    out = console()
    out.print(table)
    if default:
        out.print(f"* default competition: {default}")
    errors = console(stderr=True)
    for broken in project.plugins.errors:   # listed after the others, one line each
        errors.print(Text("error: ", style="bold red") + Text(broken))
    return 1 if project.plugins.errors else 0


def _short(path: str, root) -> str:
    from pathlib import Path

    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path


@command("use", "set the project's default competition (used when a command names none)",
         competition_arg(required=True))
def use(args: argparse.Namespace) -> int:
    project = _project()
    comp = project.competition(args.competition)
    project.set_default(comp.slug)
    console().print(f"default competition: {comp.slug}")
    return 0


def _tta_arg(value: str) -> str:
    from kaggle_kit.registry import UnknownName
    from kaggle_kit.symmetry import TTA_POLICIES

    try:
        TTA_POLICIES.check(value)
    except UnknownName as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def tta_args() -> tuple:
    """``--tta [POLICY]`` and ``--no-tta``: the options of every command that predicts (predict, export)."""

    return (arg("--tta", nargs="?", const=True, default=None, metavar="POLICY", type=_tta_arg,
                help=f"test-time augmentation: a policy ({', '.join(list_tta())}); alone: the mirrors the "
                     f"plugin's symmetry allows (default: the policy the run chose on its out-of-fold CV)"),
            arg("--no-tta", dest="tta", action="store_const", const=False, help="no test-time augmentation"))


def _overrides(args: argparse.Namespace) -> dict:
    keys = ("backbone", "weights", "image_size", "resize", "folds", "holdout", "seed", "limit", "batch_size",
            "head_epochs", "finetune_epochs", "finetune_lr", "finetune_schedule", "finetune_from", "unfreeze",
            "augment", "strategy", "group_duplicates", "label_smoothing", "optimizer", "weight_decay",
            "layer_decay", "warmup", "ema", "bn", "budget")
    out = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if args.epochs is not None:
        out["finetune_epochs"] = args.epochs

    if getattr(args, "group_duplicates", False) is False:
        out.pop("group_duplicates", None)
    return out


@command("train", "train a run: k-fold (or holdout) fine-tuning with checkpoints and early stopping",
         competition_arg(),
         arg("--recipe", help="a plugin recipe: fast, best (default: a 20m budget)"),
         arg("--budget", type=_budget_arg, metavar="TIME",
             help="train the strongest plan that fits this time, probe included: 90s, 20m, 2h (the default, "
                  "20m, applies when no recipe and no training option is given)"),
         arg("--folds", type=int, help="stratified k-fold splits (default 5)"),
         arg("--holdout", type=float, help="a single holdout split with this validation fraction, e.g. 0.2"),
         arg("--backbone", type=_backbone_arg, metavar="NAME|PATH",
             help=f"backbone: {', '.join(BACKBONES.names())}; or a Keras model file (.keras, .h5) or a folder "
                  f"holding one, taking raw 0-255 RGB (see docs/commands.md)"),
         arg("--weights", help="imagenet, none, or a local weights file"),
         arg("--size", dest="image_size", type=int, help="image side in pixels"),
         arg("--resize", **one_of(RESIZERS), help="how images are fitted to the square"),
         arg("--epochs", type=int, help="phase 2 (fine-tuning) epochs"),
         arg("--head-epochs", type=int, help="phase 1 (head on frozen backbone) epochs"),
         arg("--lr", dest="finetune_lr", type=float, help="phase 2 learning rate (the peak, with --schedule cosine)"),
         arg("--schedule", dest="finetune_schedule", **one_of(SCHEDULES),
             help="phase 2 learning rate: lowered on plateau, or warm-up then cosine decay"),
         arg("--unfreeze", type=int, help="top backbone layers unfrozen in phase 2"),
         arg("--finetune-from", metavar="LAYER",
             help="phase 2 trains the layers above this backbone layer on its cached activations"),
         arg("--augment", **one_of(AUGMENTS), help="augmentation preset for phase 2"),
         arg("--optimizer", **one_of(OPTIMIZERS), help="phase 2 optimizer: adam, or adamw (decoupled weight decay)"),
         arg("--weight-decay", type=float, help="adamw's decoupled weight decay (default 0.05)"),
         arg("--layer-decay", type=float,
             help="layer-wise learning rates: each backbone stage down learns at this factor of the one above "
                  "(1: one rate; e.g. 0.7)"),
         arg("--warmup", type=float, help="fraction of a cosine phase spent warming up (default 0.1)"),
         arg("--ema", action=argparse.BooleanOptionalAction, default=None,
             help="keep a moving average of the phase 2 weights; checkpoint it when it scores better"),
         arg("--bn", **one_of(BN_MODES), help="BatchNorm in the fine-tuned layers: frozen statistics, or train"),
         arg("--label-smoothing", type=float, help="label smoothing of the training loss, e.g. 0.1 (default 0)"),
         arg("--batch-size", type=int),
         arg("--seed", type=int),
         arg("--limit", type=int, help="train on a stratified sample of N images (quick runs)"),
         arg("--group-duplicates", action="store_true", default=None,
             help="keep near-duplicate images on one side of every split"),
         arg("--strategy", **one_of(STRATEGIES), help="hardware: auto takes a TPU, every GPU, else the CPU"),
         arg("--parallel-folds", type=int, metavar="N", help="train folds in N processes, one per GPU"),
         arg("--resume", metavar="RUN_ID", help="continue an interrupted run"),
         arg("--only-folds", type=_fold_list, metavar="K,K",
             help="with --resume: train just these folds (numbered as the fold_<k> folders, from 0), e.g. from "
                  "another machine sharing the project folder; the run completes when its last fold lands"),
         arg("--ray", metavar="auto|HOST:PORT",
             help="train each fold as a task on a Ray cluster (needs kaggle-kit[ray]; see docs/scale-out.md)"))
def train_cmd(args: argparse.Namespace) -> int:
    from kaggle_kit.training.trainer import train
    from kaggle_kit.progress import ProgressView

    from kaggle_kit.training.budget import pinned, process_started
    from kaggle_kit.training.planner import DEFAULT_BUDGET, PLANNED

    started = process_started()
    project = _project()
    comp = project.competition(args.competition)
    overrides = _overrides(args)
    parallel = args.parallel_folds not in (None, 1) or args.ray is not None
    if (args.recipe is None and args.resume is None and not parallel and "budget" not in overrides
            and not set(overrides) & set(PLANNED)):
        overrides["budget"] = DEFAULT_BUDGET     # no recipe, no training option: the default budget
    config = comp.config(args.recipe, overrides)
    if config.budget and parallel:
        raise KitError("--budget trains its folds one after another; drop --parallel-folds/--ray or the budget")
    if args.folds is not None and args.holdout is None:
        config = dataclasses.replace(config, holdout=None).validate()  # --folds beats a plugin's default holdout
    if project.default_slug() is None:
        project.set_default(comp.slug)
    out = console()
    runs_before = _run_ids(project, comp.slug)
    try:
        with ProgressView(out) as view:
            if args.ray is not None:
                from kaggle_kit.training.ray_engine import train_ray

                if args.parallel_folds not in (None, 1):
                    raise KitError("--ray and --parallel-folds: pick one (Ray already runs the folds side by side)")
                run = train_ray(project, comp, config, address=args.ray, resume=args.resume, folds=args.only_folds,
                                report=view)
            elif args.parallel_folds not in (None, 1):
                if args.only_folds is not None:
                    raise KitError("--only-folds and --parallel-folds: pick one (start one --only-folds per machine)")
                from kaggle_kit.training.parallel import train_parallel

                run = train_parallel(project, comp, config, workers=args.parallel_folds, resume=args.resume,
                                     report=view)
            else:
                run = train(project, comp, config, resume=args.resume, only_folds=args.only_folds, report=view,
                            keep=pinned(comp, args.recipe, overrides), started=started)
    except KeyboardInterrupt:
        run_id = args.resume or _newest(project, comp.slug, _run_ids(project, comp.slug) - runs_before)
        if run_id is None:
            raise
        raise interrupt.Interrupted(f"interrupted; finished work is saved (resume with "
                                    f"`kaggle-kit train {comp.slug} --resume {run_id}`)") from None
    if run.excluded:
        out.print(f"[yellow]{len(run.excluded)} unreadable image(s) left out[/] (listed in {run.json_path}):")
        for e in run.excluded[:5]:
            out.print(f"  {e['path']}: {e['reason']}")
    scores = "  ".join(f"{f.score:.4f}" for f in run.folds)
    if run.status != "complete":        # --only-folds: other folds are still to come
        out.print(f"[bold]{run.run_id}[/]: {len(run.folds)} of {run.n_splits} fold(s) done (folds: {scores}); "
                  f"the run completes when its last fold lands")
        return 0
    out.print(f"[bold]{run.run_id}[/]: CV {comp.metric} [bold]{cv_text(run)}[/] (95% interval, "
              f"{'grouped' if run.grouped else 'ungrouped'} folds) over {run.n_splits} split(s) "
              f"(folds: {scores}) in {run.seconds:.0f}s")
    if run.tta_cv:
        policies = "  ".join(f"{name} {v['score']:.4f}" for name, v in run.tta_cv.items())
        out.print(f"TTA on the out-of-fold images: {policies}; predict uses [bold]{run.tta}[/] ({run.tta_note})")
    return 0


@command("runs", "list a competition's runs, best CV first", competition_arg(),
         arg("--all", action="store_true", help="include unfinished runs"))
def runs_cmd(args: argparse.Namespace) -> int:
    from rich.table import Table

    from kaggle_kit.training.runs import list_runs

    project = _project()
    comp = project.competition(args.competition)
    runs = list_runs(project, comp, complete_only=not args.all)
    out = console()
    if not runs:
        out.print(f"no {'' if args.all else 'finished '}runs of {comp.slug} in {project.checkpoints / comp.slug}")
        return 0
    calibrated = comp.scorer.needs_proba
    table = Table("run", f"CV {comp.metric} [95%]", *(["ECE"] if calibrated else []), "grouped", "folds",
                  "backbone", "size", "time", "status", "submitted", box=None)
    for r in runs:
        if r.is_blend:
            folds = f"{len(r.members)} runs"
        else:
            folds = f"{len(r.folds)}/{r.n_splits}" if r.n_splits else "-"
        table.add_row(r.run_id, cv_text(r), *([_ece_text(r)] if calibrated else []), "yes" if r.grouped else "no",
                      folds, r.backbone, str(r.image_size or "-"), f"{r.seconds:.0f}s", r.status, str(len(r.submissions)))
    out.print(table)
    if any(r.status == "complete" and r.cv is not None for r in runs):
        best, notes = best_choice(project, comp)
        out.print(f"--best: {best.run_id}")
        for note in notes:
            out.print(f"[yellow]{note}[/]")
    return 0


def _ece_text(run) -> str:
    """The expected calibration error (15 bins) of the run's out-of-fold predictions, or ``-``."""
    from kaggle_kit.errors import KitError
    from kaggle_kit.prediction.calibrate import ece
    from kaggle_kit.training.cv import load_oof

    try:
        oof = load_oof(run.path / "oof.csv", run.classes)
    except KitError:
        return "-"
    return "-" if oof is None else f"{ece(oof.y_true, oof.proba):.4f}"


@command("predict", "predict the test set with a run's fold ensemble and write the submission CSV",
         competition_arg(),
         *run_args(),
         *tta_args())
def predict_cmd(args: argparse.Namespace) -> int:
    from kaggle_kit.prediction.predictor import make_submission
    from kaggle_kit.progress import ProgressView

    project = _project()
    comp = project.competition(args.competition)
    out = console()
    run = pick_and_say(project, comp, args.run, out)
    with ProgressView(out) as view:
        path = make_submission(project, comp, run, tta=args.tta, reuse=False, report=view)
    out.print(f"wrote {path} (run {run.run_id}, CV {comp.metric} {cv_text(run)}); validated: every test id once")
    return 0
