"""Ctrl-C held to a safe point (kaggle_kit/interrupt.py) and raised by the trainer's StopOnInterrupt
callback after a batch or an epoch, never inside a step or a checkpoint write. Ctrl-C is a real
SIGINT sent to this process."""
from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest

from kaggle_kit import interrupt


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_is_held_until_a_safe_point() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt.deferred():
            ctrl_c()
            done.append("after ctrl-c")
            assert interrupt.requested()
            interrupt.check()
            done.append("after the safe point")
    assert done == ["after ctrl-c"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not interrupt.requested()


def test_a_ctrl_c_still_pending_at_the_end_of_the_block_is_raised_there() -> None:
    with pytest.raises(KeyboardInterrupt):
        with interrupt.deferred():
            ctrl_c()
    with interrupt.deferred():          # the next block starts clean
        interrupt.check()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_the_second_ctrl_c_interrupts_at_once() -> None:
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt.deferred():
            ctrl_c()
            reached.append(1)
            ctrl_c()
            reached.append(2)
    assert reached == [1]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_another_exception_leaves_the_handler_restored_and_nothing_pending() -> None:
    with pytest.raises(ValueError):
        with interrupt.deferred():
            ctrl_c()
            raise ValueError("boom")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not interrupt.requested()


def test_an_ignored_sigint_stays_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupt.deferred():
            ctrl_c()
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert not interrupt.requested()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_it_changes_nothing() -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with interrupt.deferred():
                interrupt.check()
        except BaseException as e:      # signal.signal() would raise ValueError here
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert errors == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- the trainer's callback -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    import keras
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = keras.utils.to_categorical(np.arange(64) % 2, 2)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)          # 8 batches an epoch

    def model():
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        m.compile(optimizer="adam", loss="categorical_crossentropy")
        return m

    return model, ds


def recorder(press_at: tuple[str, int], events: list, during=None):
    """A callback that logs batch and epoch events and presses Ctrl-C at ``press_at`` (then runs ``during``)."""
    import keras

    class Recorder(keras.callbacks.Callback):
        def _event(self, kind: str, n: int) -> None:
            events.append((kind, n))
            if (kind, n) == press_at:
                ctrl_c()
                if during:
                    during()

        def on_train_batch_begin(self, batch, logs=None):
            self._event("batch_begin", batch)

        def on_train_batch_end(self, batch, logs=None):
            self._event("batch_end", batch)

        def on_epoch_end(self, epoch, logs=None):
            self._event("epoch_end", epoch)

    return Recorder()


def test_fit_stops_after_the_batch_in_progress(tiny) -> None:
    from kaggle_kit.training.callbacks import StopOnInterrupt

    model, ds = tiny
    events: list = []
    with pytest.raises(KeyboardInterrupt), interrupt.deferred():
        model().fit(ds, epochs=3, verbose=0, callbacks=[recorder(("batch_begin", 2), events), StopOnInterrupt()])
    assert events[-2:] == [("batch_begin", 2), ("batch_end", 2)], "the step ran to its end, and no other began"


def test_a_checkpoint_being_written_at_ctrl_c_is_finished_and_the_next_epoch_never_starts(tiny, tmp_path) -> None:
    from kaggle_kit.training.callbacks import StopOnInterrupt

    model, ds = tiny
    events: list = []
    path = tmp_path / "last.txt"

    def slow_save() -> None:          # the rest of a checkpoint, written after Ctrl-C arrived
        with path.open("w") as fh:
            for i in range(1000):
                fh.write(f"{i}\n")

    with pytest.raises(KeyboardInterrupt), interrupt.deferred():
        model().fit(ds, epochs=3, verbose=0,
                    callbacks=[StopOnInterrupt(), recorder(("epoch_end", 0), events, during=slow_save)])
    assert len(path.read_text().splitlines()) == 1000
    assert events[-1] == ("epoch_end", 0), "epoch 2 never began"


# -- the second Ctrl-C is immediate (issue #12, fault 5) ---------------------------------------------------
def test_counting_counts_every_press_and_deferred_still_holds_the_first() -> None:
    before = interrupt.presses()
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt.counting():
            with interrupt.deferred():
                ctrl_c()
                reached.append(1)              # held until a safe point
                ctrl_c()
                reached.append(2)              # never: the second is raised at once
    assert reached == [1] and interrupt.presses() == before + 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        with interrupt.counting():
            ctrl_c()                           # outside deferred(): Python's default, counted
    assert interrupt.presses() == before + 3


def test_a_second_ctrl_c_to_the_parallel_parent_kills_the_workers_at_once(tmp_path) -> None:
    """Two Ctrl-C sent to the parent alone, 0.2 s apart: Python's ``Popen.wait`` swallows the first
    (it waits a moment for the child), so only the count shows it was pressed twice. The parent must
    not give the workers their 30 s grace: it kills them and exits, the run saved as interrupted."""
    import re
    import subprocess
    import time

    import toy_project

    root = toy_project.make_project(tmp_path / "p")
    proc = subprocess.Popen([str(toy_project.KIT), "train", "toy", "--folds", "2", "--head-epochs", "30",
                             "--parallel-folds", "2"], cwd=root, env=toy_project.kit_env(root),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not any((d / "history.csv").is_file() for d in toy_project.run_dirs(root)):
            assert proc.poll() is None and time.monotonic() < deadline, "the workers should be training"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=25)        # the old parent waited 30 s for its workers
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    [run_dir] = toy_project.run_dirs(root)
    assert proc.returncode == 130 and "Traceback" not in err, out + err
    assert f"--resume {run_dir.name}`" in err
    assert toy_project.run_json(run_dir)["status"] == "interrupted"
    for k in (0, 1):   # killed, not asked: a worker given its grace would have logged "interrupted"
        assert (run_dir / f"worker_{k}.log").read_text().splitlines()[-1:] != ["interrupted"]
    pids = {int(p) for p in re.findall(r"fold\(s\) [\d, ]+: process (\d+)", out)}
    assert len(pids) == 2
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
