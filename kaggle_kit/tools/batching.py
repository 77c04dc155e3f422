"""Batching for ``serve``: concurrent single-image requests become one model call.

A request thread hands its (decoded, resized) image to :class:`Batcher` and waits. One worker thread
takes the oldest waiting image and collects, for at most ``window_ms`` from that moment, the images
already waiting and those that arrive, up to ``max_batch``; then it runs them as one batch. So a request
waits at most one window for its batch to fill, besides the time the worker spends on earlier batches.
The window opens when the worker is free, not when the oldest image arrived: under load, the requests
answered by the last batch send their next images within the window and join the next batch, instead
of the clients settling into two half-size groups that take turns. Requests that ask for different ``tta`` policies run as separate calls. When a
batched call raises, each of its images is run again alone, so one image the model cannot handle fails
only its own request. :meth:`Batcher.close` refuses new work, runs everything already queued, and joins
the worker.

Example::

    >>> import numpy as np
    >>> batcher = Batcher(lambda x, tta: x.reshape(len(x), -1).mean(axis=1, keepdims=True),
    ...                   Batching(window_ms=2, max_batch=8))
    >>> float(batcher.submit(np.ones((2, 2, 3)), tta=False)[0])
    1.0
    >>> batcher.close(); batcher.stats.snapshot()["model_calls"]
    1
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from kaggle_kit.errors import KitError

__all__ = ["Batching", "BatchStats", "Batcher", "ShuttingDown", "DEFAULT_WINDOW_MS", "DEFAULT_MAX_BATCH"]

DEFAULT_WINDOW_MS = 5.0
DEFAULT_MAX_BATCH = 32

RunBatch = Callable[[np.ndarray, str | None], np.ndarray]   # (images N x H x W x 3, TTA policy) -> N x classes


class ShuttingDown(KitError):
    """A request that arrived after the service began to stop."""


@dataclass(frozen=True)
class Batching:
    """How ``serve`` collects requests: ``window_ms`` 0 (or ``max_batch`` 1) runs each request alone."""

    window_ms: float = DEFAULT_WINDOW_MS
    max_batch: int = DEFAULT_MAX_BATCH

    def __post_init__(self) -> None:
        if not self.window_ms >= 0:   # also refuses NaN
            raise KitError(f"batch window must be 0 (off) or more milliseconds, not {self.window_ms}")
        if self.max_batch < 1:
            raise KitError(f"max batch must be at least 1, not {self.max_batch}")

    @property
    def enabled(self) -> bool:
        return self.window_ms > 0 and self.max_batch > 1

    @classmethod
    def off(cls) -> "Batching":
        return cls(window_ms=0.0, max_batch=1)


@dataclass
class BatchStats:
    """Counters for ``GET /stats``: images predicted, model calls made, the largest batch."""

    requests: int = 0
    model_calls: int = 0
    largest_batch: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, batch_size: int) -> None:
        with self._lock:
            self.requests += batch_size
            self.model_calls += 1
            self.largest_batch = max(self.largest_batch, batch_size)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self.requests, "model_calls": self.model_calls, "largest_batch": self.largest_batch}


@dataclass
class _Item:
    image: np.ndarray
    tta: str | bool | None           # the TTA policy the request asked for (None: a blend's members' own); images
    #                                  share a call only with their own
    future: Future = field(default_factory=Future)


_STOP = object()


class Batcher:
    """A queue and one worker thread in front of ``run_batch``; :meth:`submit` is safe from many threads."""

    def __init__(self, run_batch: RunBatch, batching: Batching = Batching(), stats: BatchStats | None = None) -> None:
        if not batching.enabled:
            raise KitError("a Batcher needs a batch window above 0 and a max batch above 1")
        self.batching = batching
        self.stats = stats if stats is not None else BatchStats()
        self._run_batch = run_batch
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="kaggle-kit-batcher", daemon=True)
        self._worker.start()

    def submit(self, image: np.ndarray, *, tta: str | bool | None) -> np.ndarray:
        """The probabilities for one image, once its batch has run; raises what its own call raised."""
        item = _Item(image, tta)
        with self._lock:
            if self._closed:
                raise ShuttingDown("the service is shutting down: send the request again once it is back")
            self._queue.put(item)
        return item.future.result()

    def pending(self) -> int:
        """Images waiting for the worker (not counting the batch it is running)."""
        return self._queue.qsize()

    def close(self) -> None:
        """Refuse new images, run every image already queued, and stop the worker."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._queue.put(_STOP)
        self._worker.join()

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stop = self._collect(first)
            for tta in dict.fromkeys(item.tta for item in batch):   # one call per policy, oldest first
                self._run([item for item in batch if item.tta == tta])
            if stop:
                return

    def _collect(self, first: _Item) -> tuple[list[_Item], bool]:
        """``first`` and what joins it within the window (from now: the worker has just taken ``first``);
        ``True`` when the stop mark was reached."""
        batch = [first]
        deadline = time.monotonic() + self.batching.window_ms / 1000
        while len(batch) < self.batching.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self, group: list[_Item]) -> None:
        try:
            proba = self._call([item.image for item in group], group[0].tta)
        except Exception as e:
            if len(group) == 1:
                group[0].future.set_exception(e)
                return
            for item in group:    # one image the model cannot take must not fail the others
                self._run([item])
            return
        for item, p in zip(group, proba):
            item.future.set_result(p)

    def _call(self, images: list[np.ndarray], tta: bool) -> np.ndarray:
        proba = np.asarray(self._run_batch(np.stack(images), tta))
        if len(proba) != len(images):
            raise KitError(f"the model answered {len(proba)} rows for a batch of {len(images)} images")
        self.stats.record(len(images))
        return proba
