"""The time planner behind ``--budget``: the strongest training plan that fits the user's time.

:func:`plan_run` reads the data's size (image count, classes, the median side from the image
headers the manifest already holds, a decode time from eight images), probes this machine's speed
(:mod:`kaggle_kit.training.probe`, cached per machine, backbone and size) and :func:`choose`\\ s,
among every candidate (backbone x image size x how much of the backbone is fine-tuned x folds),
the strongest whose :func:`estimate` fits; the epochs then fill the time left. Strength is a
plain order (:func:`strength`): fine-tuning deeper first, then enough fine-tuning steps, then k-fold
on small data, then a larger image up to the useful size, then a larger backbone, then more epochs.
A :class:`TimeBox` then enforces the deadline while training, so an estimate that is off does not
blow the budget. docs/budget.md explains it; bench/RESULTS.md has the experiments behind it.

Example (a fake probe table, as the tests use):
    >>> from kaggle_kit.training.probe import Speeds
    >>> def speeds(backbone, size):
    ...     f = {"efficientnet_lite0": 1.0, "efficientnet_lite1": 0.8, "efficientnet_lite2": 0.6}[backbone]
    ...     return Speeds(backbone=backbone, size=128, build_s=1.0, save_s=0.3,
    ...                   bottom_ips={c: 400.0 * f for c in cut_layers(backbone).values()},
    ...                   top_train_ips={c: v * f for c, v in zip(cut_layers(backbone).values(), (800.0, 100.0))},
    ...                   top_forward_ips={c: v * f for c, v in zip(cut_layers(backbone).values(), (3000.0, 800.0))}
    ...                   ).scaled(size)
    >>> facts = DataFacts(images=1000, classes=2, median_side=400, decode_s=0.004, converted=frozenset(CANDIDATES))
    >>> c = choose(facts, 600.0, speeds)
    >>> c.describe(), c.head_epochs, round(c.seconds)
    ('efficientnet_lite0 at 192px, the backbone above block7_add fine-tuned 14 epoch(s) of 95% of the images, one 20% holdout', 30, 530)
    >>> choose(facts, 3600.0, speeds).describe()              # more time: k-fold, then a larger image
    'efficientnet_lite0 at 224px, the backbone above block7_add fine-tuned 13 epoch(s) of 95% of the images, 5 folds'
    >>> choose(facts, 20.0, speeds).depth                     # a tiny budget: a head on frozen features
    'frozen'
    >>> choose(facts, 2.0, speeds)
    Traceback (most recent call last):
    ...
    kaggle_kit.errors.ConfigError: budget 2s is too small: the cheapest plan (efficientnet_lite0 at 96px, a head on frozen features, one 20% holdout) needs about 12s; use --budget 14s or more
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from kaggle_kit.config import format_seconds, parse_budget
from kaggle_kit.errors import ConfigError
from kaggle_kit.training.probe import Speeds

__all__ = ["CANDIDATES", "DEPTHS", "PLAN_DEFAULTS", "PLANNED", "DataFacts", "Choice", "Plan", "TimeBox",
           "cut_layers", "candidate_sizes", "fold_s", "finish_s", "validations", "estimate", "head_epoch_s",
           "finetune_epoch_s", "finetune_train_s", "strength", "stretch", "candidates", "choose", "median_side",
           "DEFAULT_BUDGET", "PRIOR_TIME", "SHARE_MARGIN"]

DEFAULT_BUDGET = "20m"      # `kaggle-kit train` with no --budget, no recipe and no training option
CANDIDATES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")   # offline ImageNet weights
DEPTHS = ("frozen", "top", "upper")   # a head only; the last stage above the cut; the three last stages
PRIOR_TIME = {"efficientnet_lite0": 1.0, "efficientnet_lite1": 1.3, "efficientnet_lite2": 1.6}  # per image,
#                                       before a backbone is probed (from lite0's speed; bench/RESULTS.md)
SMALLEST_SIZE = 96
HEAD_IPS = 16000.0          # a softmax head on cached features, training and validation (cifar-10 --budget 20m:
#                             50,000 features in 2.5-3.6 s an epoch; bench/RESULTS.md throughput: 7,800-17,800)
EPOCH_S = 0.3               # a head epoch's fixed cost: callbacks, a small checkpoint
FOLD_S = 1.0                # a fold's fixed cost besides building (x2) and saving (x4) the classifier
FINISH_S = 3.0              # scoring the folds, writing the record, the process ending (and 2 saves)
FILL = 0.9                  # the share of the time left the estimate may fill (the TimeBox guards the rest)
SHARE_MARGIN = 0.95         # phase 2 fits its share of the images to this much of its fold's time left
GOOD_STEPS = 900            # fine-tuning steps worth having before a larger image or backbone ...
ENOUGH_EPOCHS = 3           # ... or this many epochs (bench/RESULTS.md: 2-3 cosine epochs on cifar-10); more
#                             epochs, up to MAX_EPOCHS, then fill the time that is left
MIN_STEPS = 200             # fewer fine-tuning steps than this is not worth fine-tuning
MAX_EPOCHS = 15
ENOUGH_HEAD_EPOCHS = 10     # a head on features needs some: before k-fold, a larger image or backbone
CONVERT_S = 10.0            # converting a Lite backbone's ImageNet weights, once per cache
HEAD_EPOCHS = (30, 10, 3, 1)  # phase 1 on cached features; early stopping ends it sooner when it plateaus

# The knobs a plan sets without choosing them. Label smoothing 0.1 was the one fine-tuning option that
# helped both accuracy and log loss in bench/finetune.py (bench/RESULTS.md); adamw, EMA, layer decay and
# BatchNorm training were in the noise or worse there, so plans keep adam, frozen BatchNorm, no EMA.
# "flip" follows the plugin's symmetry (d8: the cached flips and turns; none: no mirror).
PLAN_DEFAULTS: dict[str, Any] = {
    "weights": "imagenet", "head_on_features": True, "head_lr": 1e-3, "finetune_lr": 1e-3,
    "finetune_schedule": "cosine", "patience": 4, "lr_patience": 2, "label_smoothing": 0.1,
    "augment_frozen": "none",          # a head on cached features sees no augmentation
    "augment_finetune": "flip",        # cached activations: the images and their mirror images
}
PLANNED = ("backbone", "weights", "image_size", "folds", "holdout", "head_epochs", "head_on_features", "head_lr",
           "finetune_epochs", "finetune_share", "finetune_lr", "finetune_schedule", "finetune_from", "unfreeze", "augment",
           "batch_size", "patience", "lr_patience", "label_smoothing")   # the TrainConfig fields a plan writes


@dataclass(frozen=True, kw_only=True)
class DataFacts:
    """What the planner knows of the data before training: all cheap, from the manifest."""

    images: int
    classes: int
    median_side: int
    decode_s: float                     # seconds to decode and resize one image (one core)
    cached_sizes: frozenset[int] = frozenset()   # sizes whose decoded images are cached already
    converted: frozenset[str] = frozenset()      # backbones whose ImageNet weights are converted already
    workers: int = 2


@dataclass(frozen=True, kw_only=True)
class Choice:
    """One candidate plan: what it trains, and its estimated seconds per stage."""

    backbone: str
    image_size: int
    depth: str                          # one of DEPTHS
    cut: str | None                     # the layer above which phase 2 trains (None: frozen)
    folds: int                          # splits trained (1 for a holdout)
    holdout: float | None
    head_epochs: int
    finetune_epochs: int
    batch_size: int
    finetune_share: float = 1.0         # the share of the training images each fine-tuning epoch sees
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.stages.values())

    def describe(self) -> str:
        share = f" of {self.finetune_share:.0%} of the images" if self.finetune_share < 1 else ""
        how = ("a head on frozen features" if self.depth == "frozen" else
               f"the backbone above {self.cut} fine-tuned {self.finetune_epochs} epoch(s){share}")
        split = f"one {self.holdout:.0%} holdout" if self.holdout else f"{self.folds} folds"
        return f"{self.backbone} at {self.image_size}px, {how}, {split}"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The chosen :class:`Choice` within ``budget_s``, and how it was found."""

    budget: str
    budget_s: float
    choice: Choice
    spent_s: float                      # before training: reading the data, probing (counted in the budget)
    probed: list[str]                   # ``backbone@size`` measured by this run (the rest came from the cache)
    candidates: int

    def overrides(self, keep: Mapping[str, Any] = {}) -> dict[str, Any]:
        """The TrainConfig fields of this plan; ``keep`` (options the user set) wins."""
        c = self.choice
        out = {k: v for k, v in PLAN_DEFAULTS.items() if not k.startswith("augment_")}
        out.update(backbone=c.backbone, image_size=c.image_size, folds=max(c.folds, 2), holdout=c.holdout,
                   head_epochs=c.head_epochs, finetune_epochs=c.finetune_epochs, finetune_share=c.finetune_share,
                   finetune_from=c.cut,
                   augment=PLAN_DEFAULTS["augment_frozen" if c.depth == "frozen" else "augment_finetune"],
                   batch_size=c.batch_size, patience=max(PLAN_DEFAULTS["patience"], c.finetune_epochs))
        return {**out, **{k: v for k, v in keep.items() if k in PLANNED}}

    def to_dict(self) -> dict[str, Any]:
        """What ``run.json`` keeps under ``plan``."""
        return {"budget": self.budget, "budget_s": self.budget_s, "spent_s": round(self.spent_s, 1),
                "estimate_s": round(self.spent_s + self.choice.seconds, 1),
                "stages": {k: round(v, 1) for k, v in self.choice.stages.items()},
                "probed": self.probed, "candidates": self.candidates, "plan": self.choice.describe(),
                **{k: v for k, v in dataclasses.asdict(self.choice).items() if k != "stages"}}


@dataclass(frozen=True, kw_only=True)
class TimeBox:
    """The deadline a budgeted run trains to (``time.time()`` seconds) and the plan's epoch estimates."""

    deadline: float
    epoch_s: dict[int, float]           # phase -> estimated seconds per epoch of one fold
    reserve_s: float = 2.0              # kept for scoring the folds and writing the run record
    share_s: float = 0.0                # of epoch_s[2]: the seconds that scale with the share of the images
    adapt_share: bool = False           # phase 2 fits its share of the images to the time its fold has left

    def fold_deadline(self, folds_left: int, now: float | None = None) -> float:
        """When the fold starting now must end: an equal share of the time left for each fold left."""
        now = time.time() if now is None else now
        return now + max(0.0, self.deadline - now - self.reserve_s) / max(1, folds_left)

    def share_for(self, epochs: int, share: float, left_s: float) -> float:
        """The share of the images each of ``epochs`` fine-tuning epochs can see in ``left_s`` seconds
        (``share``: the planned one, whose epoch takes ``epoch_s[2]``), in steps of 5 %, from 25 % to all;
        ``share`` unchanged when the plan's estimates cannot tell."""
        if not self.adapt_share or self.share_s <= 0 or epochs < 1:
            return share
        fixed = self.epoch_s.get(2, 0.0) - self.share_s            # validation and checkpoints, per epoch
        per_share = self.share_s / share                           # an epoch over all the images
        fit = (SHARE_MARGIN * left_s / epochs - fixed) / per_share
        return min(1.0, max(0.25, math.floor(20 * fit) / 20))


def cut_layers(backbone: str) -> dict[str, str]:
    """The cut layer of each fine-tuning depth of a Lite backbone: the ends of its stages 5 and 3
    (Lite0: ``block14_add``, ``block7_add``; Lite1 and Lite2 repeat blocks more, so the names differ)."""
    from kaggle_kit.model.lite.architecture import blocks

    last = {b.stage: b.index for b in blocks(backbone)}
    return {"top": f"block{last[5]}_add", "upper": f"block{last[3]}_add"}


def candidate_sizes(median_side: int, backbone: str) -> list[int]:
    """Image sides worth trying: from 96 px by 32 px up to the useful size, four times a small
    image's side (a 32-px image at 128 px) and at most the size the backbone was trained at."""
    from kaggle_kit.model.backbones import get_backbone

    top = get_backbone(backbone).default_size
    useful = max(128, min(top, math.ceil(median_side * 4 / 32) * 32))
    return sorted({*range(SMALLEST_SIZE, useful + 1, 32), useful})


def validations(images: int) -> list[tuple[int, float | None]]:
    """(splits trained, holdout) options: 5 folds below 10,000 images, else one holdout
    (10 % from 20,000 images, where it estimates accuracy to about +-0.5 %)."""
    if images >= 20_000:
        return [(1, 0.1)]
    if images >= 10_000:
        return [(1, 0.2)]
    return [(5, None), (1, 0.2)]


def estimate(choice: Choice, facts: DataFacts, speeds: Speeds) -> dict[str, float]:
    """Seconds per stage of ``choice`` on ``facts`` at ``speeds``: decoding, the backbone passes, the
    head and the fine-tuning epochs of every fold, and each fold's fixed cost."""
    n, k = facts.images, choice.folds
    stages = {"images": 0.0 if choice.image_size in facts.cached_sizes else n * facts.decode_s / facts.workers,
              "weights": 0.0 if choice.backbone in facts.converted else CONVERT_S}
    head_epoch = head_epoch_s(facts)
    if choice.cut is None:
        stages["features"] = n / speeds.features_ips()
    else:
        stages["activations"] = 2 * n / speeds.bottom_ips[choice.cut]          # the images and their mirrors
        stages["features"] = n / speeds.top_forward_ips[choice.cut]
    stages["head"] = k * choice.head_epochs * head_epoch
    stages["finetune"] = k * (choice.finetune_epochs * finetune_epoch_s(choice, facts, speeds)
                              + (speeds.trace_s.get(choice.cut, 0.0) + 2 * speeds.save_s if choice.finetune_epochs
                                 else 0.0))   # phase 2's own start: its graph traced, the trainee saved
    stages["folds"] = k * fold_s(speeds)
    stages["finish"] = finish_s(speeds)
    return stages


def fold_s(speeds: Speeds) -> float:
    """A fold's fixed cost: the classifier built (and its ImageNet weights read), the first epoch's
    graph traced, checkpoints written; measured as about two builds and four saves."""
    return FOLD_S + 2 * speeds.build_s + 4 * speeds.save_s


def finish_s(speeds: Speeds) -> float:
    """After the last fold: the out-of-fold score, the run record, the process ending."""
    return FINISH_S + 2 * speeds.save_s


def head_epoch_s(facts: DataFacts) -> float:
    """One fold's head epoch on cached features (training and validation)."""
    return facts.images / HEAD_IPS + EPOCH_S


def finetune_epoch_s(choice: Choice, facts: DataFacts, speeds: Speeds) -> float:
    """One fold's fine-tuning epoch: a step over every training activation (mirrors too), the
    validation pass, and a checkpoint of the classifier and of the trainee."""
    if choice.cut is None:
        return 0.0
    val = choice.holdout if choice.holdout else 1 / max(choice.folds, 2)
    return (finetune_train_s(choice, facts, speeds) + facts.images * val / speeds.top_forward_ips[choice.cut]
            + 2 * speeds.save_s)


def finetune_train_s(choice: Choice, facts: DataFacts, speeds: Speeds) -> float:
    """The part of a fine-tuning epoch that scales with its share of the images: the training steps."""
    if choice.cut is None:
        return 0.0
    val = choice.holdout if choice.holdout else 1 / max(choice.folds, 2)
    return choice.finetune_share * 2 * facts.images * (1 - val) / speeds.top_train_ips[choice.cut]


def strength(choice: Choice, facts: DataFacts) -> tuple:
    """How strong a candidate is expected to be, as an order (the larger tuple wins; docs/budget.md)."""
    steps = choice.finetune_epochs * choice.finetune_share * _steps_per_epoch(choice, facts)
    level = 0 if not steps else max(1, min(choice.finetune_epochs, ENOUGH_EPOCHS,
                                           int(steps // (GOOD_STEPS / ENOUGH_EPOCHS))))
    return (DEPTHS.index(choice.depth), level, choice.head_epochs >= ENOUGH_HEAD_EPOCHS, choice.folds > 1, choice.image_size, CANDIDATES.index(choice.backbone) if choice.backbone in CANDIDATES
            else 0, choice.finetune_epochs, choice.head_epochs)


def _steps_per_epoch(choice: Choice, facts: DataFacts) -> float:
    val = choice.holdout if choice.holdout else 1 / max(choice.folds, 2)
    return 2 * facts.images * (1 - val) / choice.batch_size


def choose(facts: DataFacts, seconds: float, speeds_of: Callable[[str, int], Speeds], *,
           pins: Mapping[str, Any] = {}, budget: str | None = None) -> Choice:
    """The strongest candidate whose estimate fits in ``seconds`` x FILL; ``pins`` (TrainConfig fields
    the user set) narrow the candidates. None fits: a ConfigError naming the smallest budget that works."""
    fits, cheapest = [], None
    for c in candidates(facts, speeds_of, pins):
        if cheapest is None or c.seconds < cheapest.seconds:
            cheapest = c
        if c.seconds <= seconds * FILL:
            fits.append(c)
    if cheapest is None:
        raise ConfigError("no plan trains with these options; drop some of them or the budget", field="budget")
    if not fits:
        have = budget or format_seconds(seconds)
        spent = max(0.0, parse_budget(budget) - seconds) if budget else 0.0   # starting, reading, probing
        need = spent + cheapest.seconds / FILL
        after = f" after the {format_seconds(spent)} already spent starting and probing" if spent >= 1 else ""
        raise ConfigError(f"budget {have} is too small: the cheapest plan ({cheapest.describe()}) needs about "
                          f"{format_seconds(cheapest.seconds)}{after}; use --budget {format_seconds(need)} or more",
                          field="budget")
    best = max(fits, key=lambda c: (strength(c, facts), -c.seconds))
    return best if pins.get("finetune_epochs") or pins.get("finetune_share") else stretch(best, facts, seconds * FILL, speeds_of)


def stretch(choice: Choice, facts: DataFacts, seconds: float, speeds_of: Callable[[str, int], Speeds]) -> Choice:
    """``choice`` with one more fine-tuning epoch, each epoch on a random share of the images, when the
    time it leaves unused fits more fine-tuning steps than its whole epochs (large data: one epoch more
    is often a quarter of the budget, which whole epochs would leave unused)."""
    if choice.cut is None or choice.finetune_epochs >= MAX_EPOCHS:
        return choice
    speeds, more = speeds_of(choice.backbone, choice.image_size), choice.finetune_epochs + 1
    whole = dataclasses.replace(choice, finetune_epochs=more, finetune_share=1.0)
    at_full = estimate(whole, facts, speeds)
    train_s = choice.folds * more * finetune_train_s(whole, facts, speeds)
    share = math.floor(20 * (1 - (sum(at_full.values()) - seconds) / train_s)) / 20 if train_s > 0 else 0.0
    if not choice.finetune_epochs / more < share < 1:   # more steps than the whole epochs, or nothing gained
        return choice
    c = dataclasses.replace(whole, finetune_share=share)
    return dataclasses.replace(c, stages=estimate(c, facts, speeds))


def candidates(facts: DataFacts, speeds_of: Callable[[str, int], Speeds], pins: Mapping[str, Any]):
    backbones = [pins["backbone"]] if pins.get("backbone") else list(CANDIDATES)
    batch = pins.get("batch_size") or (64 if facts.images >= 5000 else 32)
    head_epochs = [pins["head_epochs"]] if pins.get("head_epochs") else HEAD_EPOCHS
    if pins.get("holdout"):
        splits = [(1, pins["holdout"])]
    elif pins.get("folds"):
        splits = [(pins["folds"], None)]
    else:
        splits = validations(facts.images)
    for backbone in backbones:
        sizes = [pins["image_size"]] if pins.get("image_size") else candidate_sizes(facts.median_side, backbone)
        cuts = {"pinned": pins["finetune_from"]} if pins.get("finetune_from") else cut_layers(backbone)
        depths = [("frozen", None)] + [(d, cut) for d, cut in cuts.items()]
        if pins.get("finetune_epochs") == 0:
            depths = depths[:1]
        for size in sizes:
            speeds = speeds_of(backbone, size)
            for depth, cut in depths:
                for folds, holdout in splits:
                    for heads in head_epochs:
                        base = Choice(backbone=backbone, image_size=size, cut=cut, folds=folds, holdout=holdout,
                                      depth="upper" if depth == "pinned" else depth, head_epochs=heads,
                                      finetune_epochs=0, batch_size=batch)
                        yield from _with_epochs(base, facts, speeds, pins.get("finetune_epochs"))


def _with_epochs(base: Choice, facts: DataFacts, speeds: Speeds, pinned: int | None):
    """The candidate at each worthwhile number of fine-tuning epochs (none for a frozen backbone)."""
    if base.cut is None:
        epochs = [0]
    elif pinned:
        epochs = [pinned]
    else:
        per = _steps_per_epoch(base, facts)
        low = max(1, math.ceil(MIN_STEPS / per))
        epochs = list(range(low, MAX_EPOCHS + 1))   # the weakest order: they fill what the rest leaves
    for e in epochs:
        c = dataclasses.replace(base, finetune_epochs=e)
        yield dataclasses.replace(c, stages=estimate(c, facts, speeds))


def median_side(infos) -> int:
    """The median of the images' shorter sides (from their headers)."""
    return int(statistics.median(min(i.width, i.height) for i in infos)) if infos else 224
