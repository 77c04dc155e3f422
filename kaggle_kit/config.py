"""Training configuration: one dataclass, filled from a plugin's defaults, a recipe and CLI options.

Example:
    >>> cfg = TrainConfig().merged({"image_size": 128, "folds": 3})
    >>> (cfg.image_size, cfg.folds, cfg.backbone)
    (128, 3, 'efficientnet_lite0')
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from kaggle_kit.errors import KitError

ResizeMode = Literal["stretch", "crop", "pad"]


@dataclass(kw_only=True)
class TrainConfig:
    # model
    backbone: str = "efficientnet_lite0"
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
    finetune_lr: float = 1e-4
    finetune_schedule: str = "plateau" # or "cosine": warm-up then decay to 0 (see schedules.py)
    unfreeze: int = 30                 # top N backbone layers made trainable (BatchNorm stays frozen)
    finetune_from: str | None = None   # or: train everything above this backbone layer on cached
                                       # activations of the frozen layers below (fast; flips only)
    augment: str = "light"             # augmentation preset for phase 2 (see pipeline.AUGMENTS)
    # optimisation
    batch_size: int = 32
    label_smoothing: float = 0.0
    patience: int = 4                  # early stopping patience, epochs
    lr_patience: int = 2               # ReduceLROnPlateau patience, epochs
    # prediction
    tta: bool = True                   # average with horizontally flipped images
    # hardware
    strategy: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def merged(self, overrides: Mapping[str, Any]) -> "TrainConfig":
        """A copy with ``overrides`` applied; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise KitError(f"unknown training option(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """From a run record; keys another kit version wrote and this one lacks are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls().merged({k: v for k, v in data.items() if k in names})
