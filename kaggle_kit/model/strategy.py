"""Hardware strategies by name: ``auto``, ``cpu``, ``gpu``, ``mirrored``, ``tpu`` (tf.distribute).

``auto`` takes every GPU it sees (MirroredStrategy for several), a TPU when one is attached, else
the CPU. Mixed precision is switched on for GPUs that benefit (compute capability 7.0 or newer).

Example:
    >>> s = get_strategy("cpu")
    >>> (s.name, s.replicas, s.mixed_precision)
    ('cpu', 1, False)
    >>> list_strategies()
    ['auto', 'cpu', 'gpu', 'mirrored', 'tpu']

Only the factories import TensorFlow, so listing the strategies stays fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from kaggle_kit.errors import KitError
from kaggle_kit.registry import Registry

__all__ = ["Strategy", "StrategyEntry", "STRATEGIES", "strategy", "get_strategy", "list_strategies"]


@dataclass(frozen=True)
class Strategy:
    name: str
    tf_strategy: Any
    replicas: int
    mixed_precision: bool

    def scope(self):
        return self.tf_strategy.scope()

    def global_batch(self, per_replica: int) -> int:
        return per_replica * self.replicas


@dataclass(frozen=True, kw_only=True)
class StrategyEntry:
    name: str
    factory: Callable[[], Strategy]
    description: str = ""


STRATEGIES: Registry[StrategyEntry] = Registry("strategy")


def strategy(name: str, description: str) -> Callable[[Callable[[], Strategy]], Callable[[], Strategy]]:
    """Register ``factory() -> Strategy`` as strategy ``name``."""

    def add(factory: Callable[[], Strategy]) -> Callable[[], Strategy]:
        STRATEGIES.add(name, StrategyEntry(name=name, factory=factory, description=description))
        return factory

    return add


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def _gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def _wants_mixed(gpus: list) -> bool:
    import tensorflow as tf

    for gpu in gpus:
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if cc and cc[0] >= 7:
            return True
    return False


@strategy("cpu", "the CPU")
def _cpu() -> Strategy:
    import tensorflow as tf

    return Strategy("cpu", tf.distribute.OneDeviceStrategy("/cpu:0"), 1, False)


@strategy("gpu", "the first GPU")
def _gpu() -> Strategy:
    import tensorflow as tf

    gpus = _gpus()
    if not gpus:
        raise KitError("--strategy gpu: TensorFlow sees no GPU on this machine")
    return Strategy("gpu", tf.distribute.OneDeviceStrategy("/gpu:0"), 1, _wants_mixed(gpus))


@strategy("mirrored", "every GPU (MirroredStrategy), else the CPU")
def _mirrored() -> Strategy:
    import tensorflow as tf

    gpus = _gpus()
    s = tf.distribute.MirroredStrategy() if gpus else tf.distribute.MirroredStrategy(["/cpu:0"])
    return Strategy("mirrored", s, s.num_replicas_in_sync, _wants_mixed(gpus))


@strategy("tpu", "an attached TPU (TPUStrategy)")
def _tpu() -> Strategy:
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, OSError) as e:  # OSError: a TPU name that does not resolve
        raise KitError(f"--strategy tpu: no TPU found ({e})") from None
    s = tf.distribute.TPUStrategy(resolver)
    return Strategy("tpu", s, s.num_replicas_in_sync, False)


@strategy("auto", "a TPU when attached, else every GPU, else the CPU")
def _auto() -> Strategy:
    import os

    if os.environ.get("TPU_NAME") or os.environ.get("COLAB_TPU_ADDR"):
        return _tpu()
    gpus = _gpus()
    if len(gpus) > 1:
        return _mirrored()
    return _gpu() if gpus else _cpu()


def get_strategy(name: str) -> Strategy:
    made = STRATEGIES.get(name).factory()
    if made.mixed_precision:
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    return made
