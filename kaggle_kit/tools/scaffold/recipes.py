"""The ``fast`` and ``best`` recipes ``kaggle-kit new`` writes into every plugin: time budgets.

Each recipe is a budget for the planner (:mod:`kaggle_kit.training.planner`, docs/budget.md), not
fixed settings: ``fast`` is :data:`FAST_BUDGET`, ``best`` :data:`BEST_BUDGET`. At ``train`` time the
planner reads the data's size and probes the machine, and picks the backbone, the image size, the
validation and how much of the backbone to fine-tune, so the same plugin trains well on a laptop, a
Kaggle notebook or a GPU box, and a new competition of any size fits the time. Options given on the
command line are kept and the rest is planned around them.

Example:
    >>> recipes, note = infer_recipes(images=400, side=32)
    >>> recipes
    {'fast': {'budget': '5m'}, 'best': {'budget': '1h'}}
    >>> note.reason
    'time budgets for the planner (400 training images of median side 32 px): fast 5m, best 1h'
"""
from __future__ import annotations

from typing import Any

from kaggle_kit.tools.scaffold.scan import Finding

__all__ = ["RECIPES", "FAST_BUDGET", "BEST_BUDGET", "infer_recipes", "recipe_comment"]

RECIPES = ("fast", "best")              # every generated plugin has these; `check` warns when one is missing
FAST_BUDGET = "5m"                      # a first fine-tuned run within minutes on a 2-core CPU
BEST_BUDGET = "1h"                      # the planner's strongest plan for an hour


def infer_recipes(*, images: int, side: int | None) -> tuple[dict[str, dict[str, Any]], Finding]:
    """The ``fast`` and ``best`` recipes for ``images`` training images of median side ``side`` px:
    budgets, which the planner sizes from the data and the machine when it trains."""
    recipes = {"fast": {"budget": FAST_BUDGET}, "best": {"budget": BEST_BUDGET}}
    how = (f"time budgets for the planner ({images} training images"
           + (f" of median side {side} px" if side else "") + f"): fast {FAST_BUDGET}, best {BEST_BUDGET}")
    return recipes, Finding(field="recipes", value="fast, best", reason=how)


def recipe_comment(name: str) -> str:
    """The one-line comment above a generated recipe."""
    return {"fast": f"a {FAST_BUDGET} budget: the planner picks backbone, size, folds and fine-tuning (docs/budget.md)",
            "best": f"a {BEST_BUDGET} budget: the planner's strongest plan for an hour on this machine"}.get(name, "")
