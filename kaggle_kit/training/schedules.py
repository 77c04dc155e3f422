"""Learning-rate schedules by name: what each training phase's optimizer gets as its learning rate.

- ``plateau``: a constant rate that :class:`~kaggle_kit.training.callbacks.ReduceLR` lowers when the
  validation score stalls (for long phases whose length early stopping decides).
- ``cosine``: a linear warm-up over the first ``warmup`` of the phase's steps (a tenth unless the
  config's ``warmup`` says otherwise), then a cosine decay to zero at its last step (for short
  phases of a known length: a few fine-tuning epochs). The one warm-up + cosine of the kit.

Example:
    >>> sched = make_schedule("cosine", 1e-3, total_steps=100)
    >>> [round(float(sched(step)), 6) for step in (0, 10, 55, 100)]
    [0.0, 0.001, 0.0005, 0.0]
    >>> round(float(make_schedule("cosine", 1e-3, total_steps=100, warmup=0.0)(0)), 6)
    0.001
    >>> make_schedule("plateau", 1e-3, total_steps=100)
    0.001
    >>> adapts_on_plateau("cosine")
    False
    >>> list_schedules()
    ['cosine', 'plateau']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kaggle_kit.registry import Registry

__all__ = ["Schedule", "SCHEDULES", "make_schedule", "adapts_on_plateau", "get_schedule", "list_schedules"]

WARMUP_FRACTION = 0.1


@dataclass(frozen=True, kw_only=True)
class Schedule:
    name: str
    factory: Callable[[float, int, float], Any]   # (lr, total_steps, warmup fraction) -> a float or a
                                                  # keras LearningRateSchedule
    adapts_on_plateau: bool                # a constant rate that ReduceLR may lower mid-phase
    description: str = ""


SCHEDULES: Registry[Schedule] = Registry("learning-rate schedule")


def make_schedule(name: str, lr: float, *, total_steps: int, warmup: float = WARMUP_FRACTION) -> Any:
    """The learning rate (a float or a Keras schedule) for a phase of ``total_steps`` optimizer steps,
    the first ``warmup`` fraction of them warming up (where the schedule has a warm-up)."""
    return SCHEDULES.get(name).factory(lr, max(1, int(total_steps)), float(warmup))


def adapts_on_plateau(name: str) -> bool:
    """Whether ReduceLR may lower the rate (only a constant rate can be changed mid-phase)."""
    return SCHEDULES.get(name).adapts_on_plateau


def get_schedule(name: str) -> Schedule:
    return SCHEDULES.get(name)


def list_schedules() -> list[str]:
    return SCHEDULES.names()


def _constant(lr: float, total_steps: int, warmup: float) -> float:
    return float(lr)


def _cosine(lr: float, total_steps: int, warmup: float):
    import keras

    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(float(lr), total_steps, alpha=0.0)
    steps = max(1, int(total_steps * warmup))
    return keras.optimizers.schedules.CosineDecay(0.0, max(1, total_steps - steps), alpha=0.0,
                                                  warmup_target=float(lr), warmup_steps=steps)


SCHEDULES.add("plateau", Schedule(name="plateau", factory=_constant, adapts_on_plateau=True,
                                  description="constant, lowered when the validation score stalls"))
SCHEDULES.add("cosine", Schedule(name="cosine", factory=_cosine, adapts_on_plateau=False,
                                 description="linear warm-up (a tenth of the steps), then cosine decay to 0"))
