"""Typed progress events and their renderer: the JSON round trip of every event, and what
``kaggle_kit.progress.ProgressView`` prints for each, in a plain file and in Jupyter."""
from __future__ import annotations

import io
import itertools

import pytest
from rich.console import Console

from kaggle_kit import events
from kaggle_kit.progress import SLOW_EPOCH_S, ProgressView

# one of each event class; the test below fails when a class is added without one here
SAMPLES: list[events.Event] = [
    events.RunStarted(run_id="20260101-000000-cnn-abcd", path="/runs/x", resumed=True),
    events.Stage(message="checking images"),
    events.Progress(task="cache", done=3, total=10),
    events.DataReady(splits=5, train_size=60, fingerprint="f", excluded=[{"path": "a.png", "reason": "empty"}],
                     warnings=["w"]),
    events.EpochBegin(fold=0, phase=1, epoch=1, epochs=3, steps=4),
    events.Batch(fold=0, phase=1, step=2, steps=4),
    events.EpochEnd(fold=0, phase=1, epoch=1, epochs=3, logs={"val_score": 0.5, "val_logloss": 0.7},
                    higher_is_better=False),
    events.PhaseEnd(fold=0, phase=1),
    events.FoldResumed(fold=1, phase=2, epoch=3),
    events.FoldSkipped(fold=0),
    events.FoldDone(fold=4, folds=5, score=0.25),
    events.Warned(message="a [bracketed] path"),
    events.ServerReady(url="http://127.0.0.1:8000", run_id="r1", folds=2, tta="flip", top_k=3, max_bytes=100,
                       batch_window_ms=5.0, max_batch=32),
    events.Calibrated(temperature=1.5, floor=0.001, used=True, raw_log_loss=0.9, nested_log_loss=0.6, raw_ece=0.2,
                      nested_ece=0.03),
    events.NotebookStatus(notebook="me/kk-toy-inference", version=2, status="running", seconds=12.0),
    events.PlanReady(budget="2m", budget_s=120.0, plan="efficientnet_lite0 at 160px, 5 folds", estimate_s=100.0,
                     spent_s=20.0, stages={"head": 8.0, "finetune": 60.0}, probed=["efficientnet_lite0@128"],
                     candidates=40),
    events.BudgetStop(fold=1, phase=2, epoch=3, epochs=8, left_s=4.0),
]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def plain() -> tuple[ProgressView, io.StringIO, Clock]:
    out, clock = io.StringIO(), Clock()
    return ProgressView(Console(file=out, width=200), clock=clock), out, clock


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_every_event_class_has_a_sample_and_survives_json() -> None:
    assert sorted(type(e).__name__ for e in SAMPLES) == events.event_types()
    for e in SAMPLES:
        assert events.from_json(events.to_json(e)) == e


def test_from_json_refuses_what_is_not_an_event() -> None:
    with pytest.raises(ValueError, match="not a kaggle-kit event"):
        events.from_json('{"event": "Nope"}')


@pytest.mark.parametrize("jupyter", [False, True], ids=["file", "jupyter"])
def test_every_event_renders_without_a_terminal(jupyter: bool) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, force_jupyter=jupyter, record=True)
    with ProgressView(console, clock=Clock()) as view:
        for e in SAMPLES:
            view(e)
    text = console.export_text()
    assert not view.bars                          # no terminal (and no ipywidgets): lines only
    for expected in ("resuming 20260101-000000-cnn-abcd -> /runs/x", "checking images",
                     "60 training images, 1 unreadable left out, 5 split(s)",
                     "fold 1 phase 1 (head on frozen backbone): 1 epochs in 0s, best val_score 0.5000 (epoch 1)",
                     "fold 2: resuming phase 2 at epoch 4", "fold 1: already finished, kept",
                     "fold 5/5 done: score 0.2500", "warning: a [bracketed] path",
                     "serving r1 (2 fold model(s), tta flip, batching up to 32 requests within 5 ms) on http://127.0.0.1:8000",
                     "notebook me/kk-toy-inference version 2: running (12s)"):
        assert expected in text
    if not jupyter:
        assert out.getvalue() == text             # a file gets exactly the lines


def test_a_notebook_status_is_a_line_when_it_changes_and_once_a_minute_while_it_stays() -> None:
    out = io.StringIO()
    with ProgressView(Console(file=out, width=200), clock=Clock()) as view:
        for status, seconds in [("queued", 0), ("running", 5), ("running", 10), ("running", 70), ("complete", 75)]:
            view(events.NotebookStatus(notebook="me/nb", version=1, status=status, seconds=seconds))
    assert [line.split(": ")[1] for line in out.getvalue().splitlines()] == [
        "queued (0s)", "running (5s)", "running (70s)", "complete (75s)"]


def test_an_object_that_is_not_an_event_is_refused() -> None:
    view, _, _ = plain()
    with pytest.raises(TypeError, match="cannot draw dict"):
        view({"kind": "stage"})


def epochs(view: ProgressView, scores: list[float], *, higher_is_better: bool, fold: int = 0, phase: int = 1) -> None:
    for i, s in enumerate(scores, 1):
        view(events.EpochEnd(fold=fold, phase=phase, epoch=i, epochs=len(scores),
                             logs={"val_score": s, "val_logloss": 1.0}, higher_is_better=higher_is_better))
    view(events.PhaseEnd(fold=fold, phase=phase))


@pytest.mark.parametrize("higher_is_better, best", [(True, "best val_score 0.9000 (epoch 2)"),
                                                    (False, "best val_score 0.2000 (epoch 3)")])
def test_the_phase_line_names_the_best_epoch_in_the_metric_direction(higher_is_better: bool, best: str) -> None:
    view, out, _ = plain()
    epochs(view, [0.5, 0.9, 0.2, 0.6], higher_is_better=higher_is_better)
    assert lines(out) == [f"  fold 1 phase 1 (head on frozen backbone): 4 epochs in 0s, {best}"]


def test_a_tie_goes_to_the_lower_log_loss() -> None:
    view, out, _ = plain()
    for i, loss in enumerate([0.8, 0.3, 0.5], 1):
        view(events.EpochEnd(fold=2, phase=2, epoch=i, epochs=3, logs={"val_score": 0.7, "val_logloss": loss}))
    view(events.PhaseEnd(fold=2, phase=2))
    assert lines(out) == ["  fold 3 phase 2 (fine-tuning): 3 epochs in 0s, best val_score 0.7000 (epoch 2)"]


def test_fold_numbers_are_counted_from_one_in_every_line() -> None:
    view, out, clock = plain()
    view(events.EpochEnd(fold=0, phase=2, epoch=1, epochs=2, logs={"val_score": 0.5}))
    clock.now += SLOW_EPOCH_S + 1                 # a slow epoch gets a line of its own
    view(events.EpochEnd(fold=0, phase=2, epoch=2, epochs=2, logs={"val_score": 0.6, "loss": 0.1}))
    view(events.PhaseEnd(fold=0, phase=2))
    view(events.FoldDone(fold=0, folds=2, score=0.6))
    text = lines(out)
    assert text[0].startswith("  fold 1 phase 2 epoch  2/2  loss 0.1000  val_score 0.6000")
    assert text[1].startswith("  fold 1 phase 2 (fine-tuning): 2 epochs in 11s")
    assert text[2] == "fold 1/2 done: score 0.6000  (11s so far)"
    assert all("fold 0" not in line for line in text)


def test_the_phase_time_counts_its_first_epoch() -> None:
    view, out, clock = plain()
    for epoch in (1, 2):                         # two fine-tuning epochs of 300 s each
        view(events.EpochBegin(fold=0, phase=2, epoch=epoch, epochs=2, steps=10))
        clock.now += 300
        view(events.EpochEnd(fold=0, phase=2, epoch=epoch, epochs=2, logs={"val_score": 0.5 + epoch / 10}))
    view(events.PhaseEnd(fold=0, phase=2))
    assert lines(out)[-1] == "  fold 1 phase 2 (fine-tuning): 2 epochs in 600s, best val_score 0.7000 (epoch 2)"


def test_a_stage_read_from_the_cache_says_so() -> None:
    view, out, _ = plain()
    view(events.Stage(message="caching 60 images at 16px"))
    view(events.Stage(message="60 images at 16px", cached=True))
    assert lines(out) == ["caching 60 images at 16px", "60 images at 16px (from cache)"]


def test_a_phase_end_without_epochs_prints_nothing() -> None:
    view, out, _ = plain()
    view(events.PhaseEnd(fold=0, phase=1))
    assert out.getvalue() == ""


def test_ticker_reports_progress_events() -> None:
    seen: list[events.Event] = []
    tick = events.ticker(seen.append, "check")
    for done in itertools.islice(itertools.count(256, 256), 2):
        tick(done, 600)
    assert seen == [events.Progress(task="check", done=256, total=600),
                    events.Progress(task="check", done=512, total=600)]


def test_a_plan_and_a_budget_stop_are_drawn() -> None:
    view, out, _ = plain()
    with view:
        view(SAMPLES[-2])
        view(SAMPLES[-1])
    text = out.getvalue()
    assert "plan for 2m (40 candidates, probed efficientnet_lite0@128): efficientnet_lite0 at 160px, 5 folds" in text
    assert "estimate 100s of 120s: 20s spent planning, head 8s, finetune 60s" in text
    assert "fold 2 phase 2 stopped after epoch 3/8 to end within the budget (4s left" in text
