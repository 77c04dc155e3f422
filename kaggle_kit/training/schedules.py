"""Learning-rate schedules by name: what each training phase's optimizer gets as its learning rate.

- ``plateau``: a constant rate that :class:`~kaggle_kit.training.callbacks.ReduceLR` lowers when the
  validation score stalls (for long phases whose length early stopping decides).
- ``cosine``: a linear warm-up over the first tenth of the phase's steps, then a cosine decay to
  zero at its last step (for short phases of a known length: a few fine-tuning epochs).

Example:
    >>> sched = make_schedule("cosine", 1e-3, total_steps=100)
    >>> [round(float(sched(step)), 6) for step in (0, 10, 55, 100)]
    [0.0, 0.001, 0.0005, 0.0]
    >>> make_schedule("plateau", 1e-3, total_steps=100)
    0.001
    >>> adapts_on_plateau("cosine")
    False
"""
from __future__ import annotations

from typing import Any, Callable

from kaggle_kit.registry import Registry

WARMUP_FRACTION = 0.1

# name -> (factory(lr, total_steps) -> a float or a keras LearningRateSchedule, lowered on plateau?)
SCHEDULES: Registry[tuple[Callable[[float, int], Any], bool]] = Registry("learning-rate schedule")


def make_schedule(name: str, lr: float, *, total_steps: int) -> Any:
    """The learning rate (a float or a Keras schedule) for a phase of ``total_steps`` optimizer steps."""
    factory, _ = SCHEDULES.get(name)
    return factory(lr, max(1, int(total_steps)))


def adapts_on_plateau(name: str) -> bool:
    """Whether ReduceLR may lower the rate (only a constant rate can be changed mid-phase)."""
    return SCHEDULES.get(name)[1]


def _constant(lr: float, total_steps: int) -> float:
    return float(lr)


def _cosine(lr: float, total_steps: int):
    import keras

    warmup = max(1, int(total_steps * WARMUP_FRACTION))
    return keras.optimizers.schedules.CosineDecay(0.0, max(1, total_steps - warmup), alpha=0.0,
                                                  warmup_target=float(lr), warmup_steps=warmup)


SCHEDULES.add("plateau", (_constant, True))
SCHEDULES.add("cosine", (_cosine, False))
