"""The serve batcher on its own: batches form, a failing image fails alone, close() drains.

The model is a plain function over the batch that records each call; a gate (a threading.Event) holds
its first call so that the next images are queued behind it, whatever the machine's speed.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from kaggle_kit.errors import KitError
from kaggle_kit.tools.batching import Batcher, Batching, ShuttingDown

POISON = 255.0   # an image whose first pixel is this makes the model raise


class Model:
    """A 2-class 'model': probabilities (mean/255, 1 - mean/255); records the size of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def __call__(self, images: np.ndarray, tta: bool) -> np.ndarray:
        self.entered.set()
        self.gate.wait(timeout=60)
        self.calls.append((len(images), tta))
        if (images.reshape(len(images), -1)[:, 0] == POISON).any():
            raise ValueError("the model cannot take this image")
        m = images.reshape(len(images), -1).mean(axis=1) / 255
        return np.stack([m, 1 - m], axis=1)


def image(value: float) -> np.ndarray:
    return np.full((4, 4, 3), value, np.float32)


def expected(value: float) -> np.ndarray:
    return np.array([value / 255, 1 - value / 255])


def held(model: Model, batcher: Batcher, pool: ThreadPoolExecutor, values: list[float], tta: bool = False):
    """Submit one image and hold the model inside its call; queue ``values`` behind it; return the
    first future and the others' futures once all are queued."""
    model.gate.clear()
    first = pool.submit(batcher.submit, image(1.0), tta=False)
    assert model.entered.wait(timeout=60)
    rest = [pool.submit(batcher.submit, image(v), tta=tta) for v in values]
    while batcher.pending() < len(values):
        threading.Event().wait(0.005)
    return first, rest


def test_images_queued_behind_a_running_call_form_one_batch() -> None:
    model = Model()
    batcher = Batcher(model, Batching(window_ms=1, max_batch=32))
    values = [float(v) for v in range(10, 80, 10)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        first, rest = held(model, batcher, pool, values)
        model.gate.set()
        answers = [f.result(timeout=60) for f in rest]

    assert np.allclose(first.result(), expected(1.0))
    assert all(np.allclose(a, expected(v)) for a, v in zip(answers, values))  # each its own row, in order
    assert model.calls == [(1, False), (7, False)]
    assert batcher.stats.snapshot() == {"requests": 8, "model_calls": 2, "largest_batch": 7}
    batcher.close()


def test_max_batch_caps_a_call() -> None:
    model = Model()
    batcher = Batcher(model, Batching(window_ms=1, max_batch=3))
    with ThreadPoolExecutor(max_workers=8) as pool:
        _, rest = held(model, batcher, pool, [10.0] * 7)
        model.gate.set()
        [f.result(timeout=60) for f in rest]

    assert [n for n, _ in model.calls] == [1, 3, 3, 1]
    batcher.close()


def test_a_failing_image_fails_alone_and_the_others_are_answered() -> None:
    model = Model()
    batcher = Batcher(model, Batching(window_ms=1, max_batch=32))
    values = [10.0, POISON, 30.0, 40.0]
    with ThreadPoolExecutor(max_workers=8) as pool:
        _, rest = held(model, batcher, pool, values)
        model.gate.set()
        good = [rest[i].result(timeout=60) for i in (0, 2, 3)]
        with pytest.raises(ValueError, match="cannot take this image"):
            rest[1].result(timeout=60)

    assert all(np.allclose(a, expected(v)) for a, v in zip(good, (10.0, 30.0, 40.0)))
    assert model.calls[1] == (4, False)        # tried together first, then one by one
    assert sorted(n for n, _ in model.calls[2:]) == [1, 1, 1, 1]
    batcher.close()


def test_requests_with_and_without_tta_run_as_separate_calls() -> None:
    model = Model()
    batcher = Batcher(model, Batching(window_ms=1, max_batch=32))
    with ThreadPoolExecutor(max_workers=8) as pool:
        _, plain = held(model, batcher, pool, [10.0, 20.0])
        flipped = [pool.submit(batcher.submit, image(v), tta=True) for v in (30.0, 40.0, 50.0)]
        while batcher.pending() < 5:
            threading.Event().wait(0.005)
        model.gate.set()
        [f.result(timeout=60) for f in plain + flipped]

    assert model.calls[1:] == [(2, False), (3, True)]
    batcher.close()


def test_close_answers_everything_queued_then_refuses_new_images() -> None:
    model = Model()
    batcher = Batcher(model, Batching(window_ms=1, max_batch=2))
    with ThreadPoolExecutor(max_workers=8) as pool:
        first, rest = held(model, batcher, pool, [10.0, 20.0, 30.0, 40.0, 50.0])
        closing = pool.submit(batcher.close)
        while not batcher._closed:  # close() has begun: it now waits for the worker
            threading.Event().wait(0.005)
        with pytest.raises(ShuttingDown, match="shutting down"):
            batcher.submit(image(60.0), tta=False)
        model.gate.set()
        closing.result(timeout=60)
        answers = [f.result(timeout=60) for f in [first] + rest]

    assert all(np.allclose(a, expected(v)) for a, v in zip(answers, [1.0, 10.0, 20.0, 30.0, 40.0, 50.0]))
    assert batcher.stats.snapshot()["requests"] == 6


@pytest.mark.parametrize("window_ms, max_batch, message", [
    (-1, 8, "batch window must be 0 \\(off\\) or more milliseconds, not -1"),
    (float("nan"), 8, "batch window must be"),
    (5, 0, "max batch must be at least 1, not 0"),
])
def test_bad_settings_are_kit_errors(window_ms: float, max_batch: int, message: str) -> None:
    with pytest.raises(KitError, match=message):
        Batching(window_ms=window_ms, max_batch=max_batch)


def test_window_zero_or_max_batch_one_is_off() -> None:
    assert not Batching(window_ms=0).enabled and not Batching(max_batch=1).enabled and Batching().enabled
    with pytest.raises(KitError, match="needs a batch window above 0"):
        Batcher(Model(), Batching.off())
