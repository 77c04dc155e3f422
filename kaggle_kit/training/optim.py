"""Phase 2's optimizer: Adam or AdamW, layer-wise learning rates, and a moving average of the weights.

- **Layer-wise (discriminative) learning rates**: :func:`stage_multipliers` gives each trained
  variable a factor, 1 for the head and ``layer_decay ** (1 + d)`` for a backbone stage ``d`` stages
  below the top trained one (stages: :func:`~kaggle_kit.model.classifier.layer_stages`). The
  optimizer multiplies its *update* step's learning rate by it, inside Adam: scaling the gradients
  instead would do nothing, as Adam divides the gradient's scale away.
- **AdamW**: decoupled weight decay, ``w -= lr * factor * weight_decay * w`` before each update, on
  kernels only (not biases, nor BatchNorm's scales and offsets).
- **EMA**: Keras' own ``use_ema`` keeps the average; :func:`swap_ema` swaps it with the weights so
  the checkpoint tracker can score both (:class:`~kaggle_kit.training.callbacks.EvaluateMetric`).

Example:
    >>> list_optimizers(), BN_MODES.names()
    (['adam', 'adamw'], ['frozen', 'train'])
    >>> ema_momentum(500), ema_momentum(10), ema_momentum(10**6), ema_momentum(500, decay=0.95)
    (0.99, 0.9, 0.9999, 0.95)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from kaggle_kit.registry import Registry

if TYPE_CHECKING:
    import keras

__all__ = ["OptimizerEntry", "OPTIMIZERS", "BN_MODES", "list_optimizers", "make_optimizer", "stage_multipliers",
           "ema_momentum", "has_ema", "swap_ema", "EMA_SPAN"]

EMA_SPAN = 0.2   # the average's window, as a fraction of the phase's steps (when ema_decay is unset)


@dataclass(frozen=True, kw_only=True)
class OptimizerEntry:
    name: str
    decoupled_decay: bool          # applies TrainConfig.weight_decay
    description: str = ""


OPTIMIZERS: Registry[OptimizerEntry] = Registry("optimizer")
for _entry in (OptimizerEntry(name="adam", decoupled_decay=False, description="Adam, no weight decay"),
               OptimizerEntry(name="adamw", decoupled_decay=True,
                              description="Adam with decoupled weight decay on kernels (Loshchilov & Hutter)")):
    OPTIMIZERS.add(_entry.name, _entry)

BN_MODES: Registry[str] = Registry("BatchNorm mode")
BN_MODES.add("frozen", "statistics and scales kept from pretraining (BatchNorm runs in inference mode)")
BN_MODES.add("train", "statistics re-estimated on the competition's images, scales and offsets trained")


def list_optimizers() -> list[str]:
    return OPTIMIZERS.names()


def make_optimizer(name: str, learning_rate: Any, *, weight_decay: float = 0.0,
                   multipliers: Mapping[int, float] | None = None,
                   ema: float | None = None) -> "keras.optimizers.Optimizer":
    """Optimizer ``name`` at ``learning_rate`` (a float or a schedule). ``multipliers`` maps
    ``id(variable)`` to its learning-rate factor (absent: 1); ``ema`` is the moving average's
    momentum, None for no average."""
    entry = OPTIMIZERS.get(name)
    return _layerwise_adam()(learning_rate=learning_rate,
                             decay=float(weight_decay) if entry.decoupled_decay else 0.0,
                             multipliers=dict(multipliers or {}), use_ema=ema is not None,
                             ema_momentum=0.99 if ema is None else float(ema))


def stage_multipliers(model: "keras.Model", variables: Iterable[Any], layer_decay: float) -> dict[int, float]:
    """``id(variable) -> factor`` for the ``variables`` being trained (shared with ``model``'s backbone
    or head): 1 for anything outside the backbone, ``layer_decay ** (1 + d)`` for a backbone variable
    ``d`` trained stages below the top trained stage. Empty when ``layer_decay`` is 1."""
    from kaggle_kit.model.classifier import backbone_of, layer_stages

    if layer_decay == 1:
        return {}
    stages = layer_stages(model)
    owner = {id(w): stages[lyr.name] for lyr in backbone_of(model).layers if lyr.name in stages
             for w in lyr.weights}
    trained = [id(v) for v in variables]
    present = sorted({owner[i] for i in trained if i in owner}, reverse=True)
    depth = {stage: d for d, stage in enumerate(present)}
    return {i: float(layer_decay ** (1 + depth[owner[i]])) for i in trained if i in owner}


def ema_momentum(total_steps: int, *, decay: float | None = None) -> float:
    """The moving average's momentum: ``decay``, else a window of :data:`EMA_SPAN` of the phase's
    steps (momentum ``1 - 1/window``), kept within 0.9..0.9999."""
    if decay is not None:
        return float(decay)
    window = max(1.0, EMA_SPAN * total_steps)
    return round(min(0.9999, max(0.9, 1 - 1 / window)), 6)


def _inner(optimizer: Any) -> Any:
    return getattr(optimizer, "inner_optimizer", optimizer)   # under a mixed-precision LossScaleOptimizer


def has_ema(optimizer: Any) -> bool:
    """Whether ``optimizer`` keeps a moving average that has started (built, at least one step)."""
    opt = _inner(optimizer)
    return bool(getattr(opt, "use_ema", False)) and bool(getattr(opt, "_model_variables_moving_average", None)) \
        and int(opt.iterations) > 0


def swap_ema(optimizer: Any) -> None:
    """Swap the trained variables with their moving averages (calling it again swaps them back). The
    same two lists Keras' ``SwapEMAWeights`` swaps; non-trainable state (BatchNorm statistics) stays."""
    import keras

    opt = _inner(optimizer)
    for var, average in zip(opt._trainable_variables, opt._model_variables_moving_average):
        if average is not None:
            held = keras.ops.convert_to_numpy(var)
            var.assign(average)
            average.assign(held)


@functools.cache
def _layerwise_adam() -> type:
    """The Keras optimizer class, made on first use so importing this module never loads Keras."""
    import keras

    @keras.saving.register_keras_serializable(package="kaggle_kit")
    class LayerwiseAdam(keras.optimizers.Adam):
        """Adam whose step for each variable runs at ``lr * multipliers[id(var)]``, with decoupled
        weight decay ``decay`` on variables of two or more dimensions."""

        def __init__(self, *, decay: float = 0.0, multipliers: Mapping[int, float] | None = None,
                     **kwargs: Any) -> None:
            kwargs.pop("weight_decay", None)    # decay is applied here, scaled with the variable's rate
            super().__init__(**kwargs)
            self.decay = float(decay)
            self.multipliers = dict(multipliers or {})
            self._scales: list[float] = []
            self._decayed: list[bool] = []

        def build(self, var_list: list) -> None:
            super().build(var_list)
            if self.use_ema:   # Keras starts the average at zeros; a resumed phase's steps would count on them
                for var, average in zip(var_list, self._model_variables_moving_average):
                    average.assign(var)
            self._scales = [float(self.multipliers.get(id(v), 1.0)) for v in var_list]
            self._decayed = [self.decay > 0 and len(v.shape) >= 2 for v in var_list]

        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            i = self._get_variable_index(variable)
            scale = self._scales[i] if i < len(self._scales) else 1.0
            lr = keras.ops.multiply(keras.ops.cast(learning_rate, variable.dtype), scale) if scale != 1.0 \
                else learning_rate
            if self._decayed and self._decayed[i]:
                variable.assign(variable - variable * keras.ops.cast(lr, variable.dtype) * self.decay)
            super().update_step(gradient, variable, lr)

        def get_config(self) -> dict:
            return {**super().get_config(), "decay": self.decay}   # multipliers name this process's variables

    return LayerwiseAdam
