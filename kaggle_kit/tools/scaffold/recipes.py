"""The ``fast`` and ``best`` recipes ``kaggle-kit new`` writes into every plugin, sized from the data.

Both are explicit settings (no budget): ``fast`` trains a softmax head on cached backbone features,
``best`` also fine-tunes the backbone's upper stages on cached activations, as
``competitions/cifar-10.py``'s ``best`` does. What the data decides: the image size (from the median
image side), the validation (5 folds, or one 10 % holdout from :data:`HOLDOUT_FROM` images) and the
batch size (from :data:`BIG_BATCH_FROM` images).

Example:
    >>> recipes, _ = infer_recipes(images=400, side=32)
    >>> recipes["fast"]["image_size"], recipes["best"]["image_size"], recipes["best"]["folds"]
    (96, 128, 5)
    >>> infer_recipes(images=50_000, side=500)[0]["best"]["holdout"]
    0.1
"""
from __future__ import annotations

from typing import Any

from kaggle_kit.tools.scaffold.scan import Finding

__all__ = ["RECIPES", "HOLDOUT_FROM", "BIG_BATCH_FROM", "SMALL_SIDE", "FINETUNE_FROM", "infer_recipes",
           "recipe_comment"]

RECIPES = ("fast", "best")              # every generated plugin has these; `check` warns when one is missing
HOLDOUT_FROM = 20_000                   # images: one 10 % holdout estimates the score to about +-0.5 %
BIG_BATCH_FROM = 5_000                  # images: batches of 64 from here, 32 below
SMALL_SIDE = 64                         # median side at most this: small images, upscaled less
FINETUNE_FROM = "block7_add"            # EfficientNet-Lite0: the three stages above it are fine-tuned


def infer_recipes(*, images: int, side: int | None) -> tuple[dict[str, dict[str, Any]], Finding]:
    """The ``fast`` and ``best`` recipes for ``images`` training images of median side ``side`` px."""
    small = side is not None and side <= SMALL_SIDE
    split: dict[str, Any] = {"holdout": 0.1} if images >= HOLDOUT_FROM else {"folds": 5}
    batch = 64 if images >= BIG_BATCH_FROM else 32
    fast = {"backbone": "efficientnet_lite0", "image_size": 96 if small else 160, "head_epochs": 20,
            "finetune_epochs": 0, "patience": 3, "batch_size": batch, **split}
    best = {"backbone": "efficientnet_lite0", "image_size": 128 if small else 160, "head_epochs": 30,
            "finetune_epochs": 3, "finetune_lr": 1e-3, "finetune_schedule": "cosine",
            "finetune_from": FINETUNE_FROM, "augment": "flip", "batch_size": batch, **split}
    how = (f"sized from {images} training images" + (f" of median side {side} px" if side else "")
           + f": {'one 10% holdout' if 'holdout' in split else '5 folds'}, batches of {batch}, "
           + f"images at {fast['image_size']}/{best['image_size']} px")
    return {"fast": fast, "best": best}, Finding(field="recipes", value="fast, best", reason=how)


def recipe_comment(name: str) -> str:
    """The one-line comment above a generated recipe."""
    return {"fast": "a softmax head on cached features of the frozen backbone, no fine-tuning: the quick run",
            "best": f"the head, then the stages above {FINETUNE_FROM} fine-tuned on cached activations "
                    f"(flips included), cosine schedule"}.get(name, "")
