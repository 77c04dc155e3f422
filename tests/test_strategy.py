"""Hardware strategies by name on a CPU-only machine: what each gives, what each refuses, and how the
global batch and mixed precision follow the devices (GPUs are simulated where named)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import pytest
import tensorflow as tf

from kaggle_kit.model import strategy as strategy_module
from kaggle_kit.errors import KitError
from kaggle_kit.model.strategy import STRATEGIES, Strategy, get_strategy


@pytest.fixture(autouse=True)
def float32_policy():
    """Every test starts and ends with Keras' default float32 policy."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_every_cli_choice_is_a_registered_strategy() -> None:
    assert STRATEGIES.names() == ["auto", "cpu", "gpu", "mirrored", "tpu"]


def test_cpu() -> None:
    s = get_strategy("cpu")
    assert (s.name, s.replicas, s.mixed_precision) == ("cpu", 1, False)
    assert isinstance(s.tf_strategy, tf.distribute.OneDeviceStrategy)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_auto_without_accelerators_is_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.delenv("COLAB_TPU_ADDR", raising=False)
    assert tf.config.list_physical_devices("GPU") == []
    assert get_strategy("auto").name == "cpu"


def test_mirrored_on_the_cpu_device() -> None:
    s = get_strategy("mirrored")
    assert (s.name, s.replicas, s.mixed_precision) == ("mirrored", 1, False)
    assert isinstance(s.tf_strategy, tf.distribute.MirroredStrategy)
    assert [d.upper() for d in s.tf_strategy.extended.worker_devices][0].endswith("CPU:0")
    with s.scope():  # a model built in the scope trains
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
    model.fit(tf.zeros((8, 3)), tf.zeros((8, 2)), batch_size=s.global_batch(4), epochs=1, verbose=0)


@pytest.mark.parametrize("name, needle", [("gpu", "no GPU"), ("tpu", "no TPU")])
def test_missing_accelerators_are_one_line_errors(name: str, needle: str) -> None:
    with pytest.raises(KitError) as e:
        get_strategy(name)
    message = str(e.value)
    assert message.startswith(f"--strategy {name}:") and needle in message and "\n" not in message


def test_unknown_strategy_names_the_known_ones() -> None:
    with pytest.raises(KitError, match="Known: auto, cpu, gpu, mirrored, tpu"):
        get_strategy("gpus")


def test_global_batch_is_per_replica_batch_times_replicas() -> None:
    assert [Strategy("x", None, n, False).global_batch(32) for n in (1, 2, 8)] == [32, 64, 256]


def test_mirrored_over_two_devices_scales_the_global_batch() -> None:
    """Two logical CPUs (set before TensorFlow starts, hence a fresh process) as two replicas."""
    code = textwrap.dedent("""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from kaggle_kit.model.strategy import Strategy
        mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        s = Strategy("mirrored", mirrored, mirrored.num_replicas_in_sync, False)
        with s.scope():
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
            model.compile(optimizer="sgd", loss="mse")
        seen = []
        batch = s.global_batch(4)
        ds = tf.data.Dataset.from_tensor_slices((tf.zeros((16, 3)), tf.zeros((16, 2)))).batch(batch)
        dist = mirrored.experimental_distribute_dataset(ds)
        per_replica = [int(t.shape[0]) for t in mirrored.experimental_local_results(next(iter(dist))[0])]
        model.fit(ds, epochs=1, verbose=0)
        print(s.replicas, batch, per_replica)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "2 8 [4, 4]"


class FakeGPU:
    """What ``tf.config.list_physical_devices('GPU')`` returns, for a machine this test does not have."""

    def __init__(self, cc: tuple[int, int]) -> None:
        self.cc = cc


def fake_gpus(monkeypatch: pytest.MonkeyPatch, *ccs: tuple[int, int]) -> None:
    monkeypatch.setattr(strategy_module, "_gpus", lambda: [FakeGPU(cc) for cc in ccs])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda gpu: {"compute_capability": gpu.cc})


@pytest.mark.parametrize("cc, mixed", [((8, 0), True), ((7, 0), True), ((6, 1), False)])
def test_mixed_precision_on_gpus_that_benefit(monkeypatch: pytest.MonkeyPatch, cc, mixed: bool) -> None:
    fake_gpus(monkeypatch, cc)
    s = get_strategy("gpu")
    assert (s.name, s.replicas, s.mixed_precision) == ("gpu", 1, mixed)
    assert keras.mixed_precision.global_policy().name == ("mixed_float16" if mixed else "float32")


def test_auto_takes_one_gpu_or_mirrors_several(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.delenv("COLAB_TPU_ADDR", raising=False)
    fake_gpus(monkeypatch, (8, 0))
    assert get_strategy("auto").name == "gpu"
    fake_gpus(monkeypatch, (8, 0), (8, 0))
    assert get_strategy("auto").name == "mirrored"


def test_auto_with_a_tpu_address_but_no_tpu_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TPU_NAME", "local")
    with pytest.raises(KitError, match="^--strategy tpu: no TPU found"):
        get_strategy("auto")
