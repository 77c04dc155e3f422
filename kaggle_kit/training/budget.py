"""A budgeted run's plan on this machine: the data's facts, the speed probes, the chosen plan.

:func:`plan_budget` turns a config with ``budget`` set into the config the run trains with, its
:class:`~kaggle_kit.training.planner.Plan` (kept in ``run.json``) and the
:class:`~kaggle_kit.training.planner.TimeBox` the folds train to. It probes the reference backbone
once per machine and size (cached), estimates the other candidates from it, and probes the chosen
backbone and size too when that costs little of the budget, then chooses again with the measurement.
Everything here, probes included, counts in the budget: the clock starts when the process did
(``kaggle-kit train``) or when :func:`~kaggle_kit.training.trainer.train` was called (a notebook).
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from kaggle_kit.competition import Competition
from kaggle_kit.config import TrainConfig, parse_budget
from kaggle_kit.data.cache import Cache
from kaggle_kit.data.images import load_resized
from kaggle_kit.data.manifest import Manifest, build_manifest
from kaggle_kit.errors import ConfigError
from kaggle_kit.model.lite.weights import notop_file
from kaggle_kit.events import PlanReady, Report, Stage, quiet, ticker
from kaggle_kit.project import Project
from kaggle_kit.training.planner import (CANDIDATES, PLANNED, PRIOR_TIME, DataFacts, Plan, TimeBox, candidate_sizes,
                                         candidates, choose, cut_layers, finetune_epoch_s, finetune_train_s, finish_s,
                                         head_epoch_s, median_side)
from kaggle_kit.training.probe import ProbeCache, Speeds, probe

__all__ = ["plan_budget", "data_facts", "process_started", "pinned", "REFERENCE_SIZE", "PROBE_SHARE"]

REFERENCE_SIZE = 128    # the first probe of a backbone; other sizes scale from it by their area
PROBE_SHARE = 0.05      # probe the chosen backbone and size as well when that takes at most this share
DECODE_SAMPLE = 8       # images decoded to time the image cache


def process_started() -> float:
    """When this process started (``time.time()`` seconds; now where /proc cannot tell)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


def pinned(competition: Competition, recipe: str | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The planned options the user chose (a recipe's or the command line's): the plan keeps them."""
    chosen = {**(competition.recipes.get(recipe or "", {})), **overrides}
    return {k: v for k, v in chosen.items() if k in PLANNED and v is not None}


def data_facts(project: Project, manifest: Manifest, resize: str, sizes: Iterable[int]) -> DataFacts:
    """The data's size (images, classes, median side from the headers), one image's decode time and
    the sizes whose decoded images are cached already."""
    sample = manifest.paths[:: max(1, len(manifest) // DECODE_SAMPLE)][:DECODE_SAMPLE]
    load_resized(sample[0], REFERENCE_SIZE, resize)              # the first read warms the libraries up
    t0 = time.perf_counter()
    for path in sample:
        load_resized(path, REFERENCE_SIZE, resize)
    cache = Cache(project.cache)
    cached = frozenset(s for s in sizes if cache.has("images", Cache.images_key(manifest, s, resize)))
    converted = frozenset(b for b in CANDIDATES if (project.cache / "weights" / notop_file(b)).is_file())
    return DataFacts(images=len(manifest), classes=int(manifest.labels.max()) + 1 if len(manifest) else 0,
                     median_side=median_side(manifest.infos), decode_s=(time.perf_counter() - t0) / len(sample),
                     cached_sizes=cached, converted=converted, workers=min(2, os.cpu_count() or 1))


def plan_budget(project: Project, competition: Competition, config: TrainConfig, *, keep: Mapping[str, Any] = {},
                started: float | None = None, report: Report = quiet) -> tuple[TrainConfig, Plan, TimeBox]:
    """The config a run of ``config.budget`` trains with, its plan and its deadline. ``keep``: the
    planned options the user set (:func:`pinned`); the plan chooses the others."""
    started = time.time() if started is None else started
    budget_s = parse_budget(config.budget)
    pins = dict(keep)
    if pins.get("finetune_from") and not pins.get("backbone"):
        pins["backbone"] = CANDIDATES[0]            # a layer name means a place in one backbone
    if pins.get("backbone") and pins["backbone"] not in CANDIDATES:
        raise ConfigError(f"--budget plans the offline backbones {', '.join(CANDIDATES)}, not "
                          f"{pins['backbone']}; drop --backbone or --budget", field="backbone")
    report(Stage(message=f"planning a {config.budget} run"))
    manifest = build_manifest(competition, project.data_root(competition.slug), "train", cache_dir=project.cache,
                              limit=config.limit, seed=config.seed, progress=ticker(report, "check"))
    backbones = [pins["backbone"]] if pins.get("backbone") else list(CANDIDATES)
    sizes = {pins["image_size"]} if pins.get("image_size") else {
        s for b in backbones for s in candidate_sizes(median_side(manifest.infos), b)}
    facts = data_facts(project, manifest, config.resize, sizes)
    cache, probed = ProbeCache.open(project.cache), []

    def measure(backbone: str, size: int) -> None:
        cuts = sorted({*cut_layers(backbone).values(), *([pins["finetune_from"]] if pins.get("finetune_from") else [])})
        cache.put(probe(backbone, size, cuts, n_classes=max(facts.classes, 2), cache_dir=project.cache,
                        report=report))
        probed.append(f"{backbone}@{size}")

    reference = backbones[0]
    if cache.measured(reference):        # a budget too small fails now, before TensorFlow loads
        choose(facts, budget_s - (time.time() - started), _estimator(cache, reference), pins=pins,
               budget=config.budget)
    import keras  # noqa: F401  (training needs it: imported now, its seconds count as spent, not guessed)

    if not cache.measured(reference):
        measure(reference, pins.get("image_size") or REFERENCE_SIZE)
    speeds_of = _estimator(cache, reference)
    choice = None
    for _ in range(3):
        left = budget_s - (time.time() - started)
        choice = choose(facts, left, speeds_of, pins=pins, budget=config.budget)
        if cache.get(choice.backbone, choice.image_size) is not None:
            break
        if _probe_cost(cache, reference, choice.backbone, choice.image_size) > PROBE_SHARE * budget_s:
            break
        measure(choice.backbone, choice.image_size)
    else:
        choice = choose(facts, budget_s - (time.time() - started), speeds_of, pins=pins, budget=config.budget)
    spent = time.time() - started
    plan = Plan(budget=config.budget, budget_s=budget_s, choice=choice, spent_s=spent, probed=probed,
                candidates=_count(facts, speeds_of, pins))
    speeds = speeds_of(choice.backbone, choice.image_size)
    epoch_2 = finetune_epoch_s(choice, facts, speeds)
    timebox = TimeBox(deadline=started + budget_s, reserve_s=finish_s(speeds),
                      epoch_s={1: head_epoch_s(facts), 2: epoch_2},
                      share_s=finetune_train_s(choice, facts, speeds),
                      adapt_share=choice.cut is not None and not (pins.get("finetune_epochs") or pins.get("finetune_share")))
    planned = dataclasses.replace(config, **plan.overrides(pins)).validate()
    report(PlanReady(budget=plan.budget, budget_s=budget_s, plan=choice.describe(), estimate_s=spent + choice.seconds,
                     spent_s=spent, stages=dict(choice.stages), probed=list(probed), candidates=plan.candidates))
    return planned, plan, timebox


def _estimator(cache: ProbeCache, reference: str):
    """Speeds of any backbone at any size: measured, else scaled from the nearest measured size of the
    same backbone, else from the reference backbone's times the prior ratio of their costs."""

    def speeds_of(backbone: str, size: int) -> Speeds:
        exact = cache.get(backbone, size)
        if exact is not None:
            return exact
        own = cache.measured(backbone)
        if own:
            return min(own, key=lambda s: abs(s.size - size)).scaled(size)
        ref = min(cache.measured(reference), key=lambda s: abs(s.size - size)).scaled(size)
        return _transfer(ref, backbone, PRIOR_TIME.get(backbone, 1.0) / PRIOR_TIME.get(reference, 1.0))

    return speeds_of


def _transfer(speeds: Speeds, backbone: str, slower: float) -> Speeds:
    """``speeds`` of another backbone as an estimate for ``backbone``, ``slower`` times the cost per
    image, each cut mapped to the same depth of ``backbone``."""
    theirs, ours = cut_layers(speeds.backbone), cut_layers(backbone)

    def move(d: dict[str, float]) -> dict[str, float]:
        return {ours[depth]: d[cut] / slower for depth, cut in theirs.items() if cut in d}

    return dataclasses.replace(speeds, backbone=backbone, bottom_ips=move(speeds.bottom_ips),
                               top_train_ips=move(speeds.top_train_ips), top_forward_ips=move(speeds.top_forward_ips),
                               trace_s={k: 1 / v for k, v in move({c: 1 / t for c, t in speeds.trace_s.items()}).items()},
                               measured=False, build_s=speeds.build_s * slower, save_s=speeds.save_s * slower)


def _probe_cost(cache: ProbeCache, reference: str, backbone: str, size: int) -> float:
    ref = min(cache.measured(reference), key=lambda s: abs(s.size - size))
    return ref.probe_s * (size / ref.size) ** 2 * PRIOR_TIME.get(backbone, 1.0) / PRIOR_TIME.get(reference, 1.0)


def _count(facts: DataFacts, speeds_of, pins: Mapping[str, Any]) -> int:
    return sum(1 for _ in candidates(facts, speeds_of, pins))
