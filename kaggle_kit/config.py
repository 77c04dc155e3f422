"""Training configuration: one dataclass, filled from a plugin's defaults, a recipe and CLI options.

:meth:`TrainConfig.validate` checks every name and range before a run starts;
:meth:`Competition.config <kaggle_kit.competition.Competition.config>` and the CLI call it.

Example:
    >>> cfg = TrainConfig().merged({"image_size": 128, "folds": 3})
    >>> (cfg.image_size, cfg.folds, cfg.backbone)
    (128, 3, 'efficientnet_lite0')
    >>> cfg.validate() is cfg
    True
    >>> cfg.merged({"augment": "ligth"}).validate()
    Traceback (most recent call last):
    ...
    kaggle_kit.errors.ConfigError: unknown augmentation preset 'ligth'; did you mean light? Known: cutmix, erasing, flip, light, mixup, none, randaugment, seed, seed_chained, strong
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from kaggle_kit.errors import ConfigError, KitError

__all__ = ["TrainConfig", "ResizeMode", "parse_budget", "format_seconds"]

ResizeMode = Literal["stretch", "crop", "pad"]   # the modes of kaggle_kit.data.resize


@dataclass(kw_only=True)
class TrainConfig:
    # model
    backbone: str = "efficientnet_lite0" # a registered name, or a Keras model file / folder (model_files.py)
    weights: str = "imagenet"          # "imagenet", "none", or a path to a local weights file
    image_size: int = 224
    resize: ResizeMode = "stretch"     # stretch, centre crop, or pad keeping the aspect ratio
    dropout: float = 0.2
    # validation
    folds: int = 5                     # stratified k-fold; ignored when holdout is set
    holdout: float | None = None       # fraction kept out for a single holdout split (None: k-fold)
    seed: int = 42
    group_duplicates: bool = False     # keep near-duplicates on one side of every split
    limit: int | None = None           # train on a stratified sample of this many images
    # phase 1: head on the frozen backbone
    head_epochs: int = 30
    head_lr: float = 1e-3
    head_on_features: bool = True      # train the head on cached backbone features (no augmentation)
    # phase 2: unfreeze the top of the backbone
    finetune_epochs: int = 0
    finetune_share: float = 1.0        # the share of the training images each phase-2 epoch sees, a new
                                       # random subset every epoch (the planner's fill between whole epochs)
    finetune_lr: float = 1e-4
    finetune_schedule: str = "plateau" # or "cosine": warm-up then decay to 0 (see schedules.py)
    unfreeze: int = 30                 # top N backbone layers made trainable (BatchNorm: see bn)
    finetune_from: str | None = None   # or: train everything above this backbone layer on cached
                                       # activations of the frozen layers below (fast; flips only)
    augment: str = "light"             # augmentation preset for phase 2 (see data/augment.py)
    # phase 2's optimizer (training/optim.py; phase 1, the head alone, keeps plain Adam)
    optimizer: str = "adam"            # "adam", or "adamw": Adam with decoupled weight decay
    weight_decay: float = 0.05         # adamw only: each step shrinks weights by lr * weight_decay
                                       # (kernels only; biases and BatchNorm scales are not decayed)
    layer_decay: float = 1.0           # layer-wise learning rates: the top backbone stage learns at
                                       # lr * layer_decay, each stage below at one more factor of it,
                                       # the head at lr (1.0: one rate for all; 0.7 is usual)
    warmup: float = 0.1                # fraction of a cosine phase's steps spent warming up from 0
    ema: bool = False                  # keep an exponential moving average of the trained weights;
                                       # each epoch scores both and checkpoints the better (fold result:
                                       # ema true when the best checkpoint holds the average)
    ema_decay: float | None = None     # the average's momentum; None: from the phase length (window
                                       # of a fifth of its steps, within 0.9..0.9999)
    bn: str = "frozen"                 # BatchNorm in the trained part of the backbone: "frozen" (ImageNet
                                       # statistics and scales kept) or "train" (both updated)
    # optimisation
    batch_size: int = 32
    label_smoothing: float = 0.0        # e.g. 0.1: 1 - e on the true class, e spread over all (the one
                                       # clear gain in bench/RESULTS.md "Fine-tuning options"; 0 here
                                       # until the suite is rerun against it)
    patience: int = 4                  # early stopping patience, epochs
    lr_patience: int = 2               # ReduceLROnPlateau patience, epochs
    # prediction
    tta: bool = True                   # choose a TTA policy on the OOF predictions (training/tta.py)
    # hardware
    strategy: str = "auto"
    # time budget: "90s", "20m", "2h"; the planner (training/planner.py) then chooses the knobs above
    budget: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def merged(self, overrides: Mapping[str, Any]) -> "TrainConfig":
        """A copy with ``overrides`` applied; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise KitError(f"unknown training option(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def validate(self) -> "TrainConfig":
        """Check every name against its registry and every value's range; return ``self``.

        Raises :class:`~kaggle_kit.errors.ConfigError` (one line, its ``field`` the option) with
        close matches for a misspelt name, so a bad option fails before any data is read, not when
        a phase first uses it. The registries live in the stages below this module (model, data,
        training), so they are imported here, lazily: config.py stays at the top of the stack and
        importing it never loads them. None of them imports TensorFlow.
        """
        from kaggle_kit.data.augment import AUGMENTS
        from kaggle_kit.data.resize import RESIZERS
        from kaggle_kit.model.backbones import get_backbone
        from kaggle_kit.model.strategy import STRATEGIES
        from kaggle_kit.registry import UnknownName
        from kaggle_kit.training.optim import BN_MODES, OPTIMIZERS
        from kaggle_kit.training.schedules import SCHEDULES

        _check(isinstance(self.backbone, str), "backbone", f"must be a name or a path, got {self.backbone!r}")
        try:
            backbone = get_backbone(self.backbone)    # a registered name, or a Keras model file or folder
        except KitError as e:
            raise ConfigError(str(e), field="backbone") from None
        for name, registry in (("resize", RESIZERS), ("augment", AUGMENTS),
                               ("finetune_schedule", SCHEDULES), ("strategy", STRATEGIES),
                               ("optimizer", OPTIMIZERS), ("bn", BN_MODES)):
            _check(isinstance(getattr(self, name), str), name, f"must be a name, got {getattr(self, name)!r}")
            try:
                registry.check(getattr(self, name))
            except UnknownName as e:
                raise ConfigError(str(e), field=name) from None
        for name in ("image_size", "folds", "seed", "head_epochs", "finetune_epochs", "unfreeze", "batch_size",
                     "patience", "lr_patience"):
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool), name, f"must be a whole number, got {value!r}")
        for name in ("group_duplicates", "head_on_features", "tta", "ema"):
            _check(isinstance(getattr(self, name), bool), name, f"must be true or false, got {getattr(self, name)!r}")
        _check(self.image_size >= 1, "image_size", f"must be positive, got {self.image_size}")
        _check(self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}")
        for name in ("head_epochs", "finetune_epochs", "unfreeze", "patience", "lr_patience"):
            _check(getattr(self, name) >= 0, name, f"must not be negative, got {getattr(self, name)}")
        for name in ("head_lr", "finetune_lr"):
            value = getattr(self, name)
            _check(_number(value) and value > 0, name, f"must be a positive number, got {value!r}")
        for name in ("dropout", "label_smoothing"):
            value = getattr(self, name)
            _check(_number(value) and 0 <= value < 1, name, f"must be a fraction in [0, 1), got {value!r}")
        _check(_number(self.weight_decay) and 0 <= self.weight_decay < 1, "weight_decay",
               f"must be a fraction in [0, 1), got {self.weight_decay!r}")
        _check(_number(self.layer_decay) and 0 < self.layer_decay <= 1, "layer_decay",
               f"must be in (0, 1] (1: one learning rate for every layer), got {self.layer_decay!r}")
        _check(_number(self.finetune_share) and 0 < self.finetune_share <= 1, "finetune_share",
               f"must be a share of the training images in (0, 1], got {self.finetune_share!r}")
        _check(_number(self.warmup) and 0 <= self.warmup < 1, "warmup",
               f"must be a fraction of the phase in [0, 1), got {self.warmup!r}")
        _check(self.ema_decay is None or (_number(self.ema_decay) and 0 < self.ema_decay < 1), "ema_decay",
               f"must be a momentum in (0, 1) or unset, got {self.ema_decay!r}")
        if self.holdout is None:
            _check(self.folds >= 2, "folds", f"must be at least 2 (or set holdout), got {self.folds}")
        else:
            _check(_number(self.holdout) and 0 < self.holdout < 1, "holdout",
                   f"must be a fraction between 0 and 1, got {self.holdout!r}")
        if self.limit is not None:
            _check(isinstance(self.limit, int) and not isinstance(self.limit, bool) and self.limit >= 2, "limit",
                   f"must be a whole number of at least 2 images, got {self.limit!r}")
        _check(self.finetune_from is None or (isinstance(self.finetune_from, str) and self.finetune_from != ""),
               "finetune_from", f"must be a backbone layer name, got {self.finetune_from!r}")
        if self.budget is not None:
            try:
                parse_budget(self.budget)
            except KitError as e:
                raise ConfigError(str(e), field="budget") from None
        _check(isinstance(self.weights, str), "weights", f"must be imagenet, none or a file, got {self.weights!r}")
        for name, check in (("image_size", backbone.check_size), ("weights", backbone.check_weights)):
            try:
                check(getattr(self, name))
            except KitError as e:
                raise ConfigError(str(e), field=name) from None
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """From a run record; keys another kit version wrote and this one lacks are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls().merged({k: v for k, v in data.items() if k in names})


_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: Any) -> float:
    """A time budget in seconds: ``"90s"``, ``"20m"``, ``"2h"``, ``"1h30m"`` or ``"1.5h"``.

    >>> parse_budget("90s"), parse_budget("20m"), parse_budget("2h"), parse_budget("1h30m")
    (90.0, 1200.0, 7200.0, 5400.0)
    >>> parse_budget("20 minutes")
    Traceback (most recent call last):
    ...
    kaggle_kit.errors.KitError: budget '20 minutes' is not a time; write e.g. 90s, 20m, 2h or 1h30m
    """
    value = str(text).strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smh])", value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise KitError(f"budget {text!r} is not a time; write e.g. 90s, 20m, 2h or 1h30m")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise KitError(f"budget {text!r} must be more than no time at all")
    return seconds


def format_seconds(seconds: float) -> str:
    """A duration as a budget string ``parse_budget`` reads back, rounded up to whole seconds/minutes.

    >>> format_seconds(45), format_seconds(61), format_seconds(1200), format_seconds(5430)
    ('45s', '1m1s', '20m', '1h30m30s')
    """
    total = int(-(-seconds // 1))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "1s"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(ok: bool, name: str, problem: str) -> None:
    if not ok:
        raise ConfigError(f"training option {name} {problem}", field=name)
