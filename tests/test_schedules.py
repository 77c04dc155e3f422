"""Learning-rate schedules, alone and inside a phase 2 that trains on cached activations."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from toy_project import make_project

from kaggle_kit.errors import KitError
from kaggle_kit.events import EpochEnd, Event
from kaggle_kit.training.schedules import adapts_on_plateau, make_schedule

pytestmark = pytest.mark.filterwarnings("ignore:.*shuffle=True.*:UserWarning")  # Keras, in-process runs


def test_cosine_warms_up_then_decays_to_zero() -> None:
    sched = make_schedule("cosine", 0.01, total_steps=200)
    rates = [float(sched(step)) for step in range(201)]
    peak = int(np.argmax(rates))
    assert peak == 20 and rates[peak] == pytest.approx(0.01), "warm-up is the first tenth of the steps"
    assert all(a < b for a, b in zip(rates[:peak], rates[1:peak + 1])), "rises during the warm-up"
    assert all(a > b for a, b in zip(rates[peak:-1], rates[peak + 1:])), "then only falls"
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)


def test_plateau_is_a_constant_that_reduce_lr_may_lower() -> None:
    assert make_schedule("plateau", 3e-4, total_steps=50) == 3e-4
    assert adapts_on_plateau("plateau") and not adapts_on_plateau("cosine")


def test_unknown_schedule_names_the_known_ones() -> None:
    with pytest.raises(KitError, match=r"unknown learning-rate schedule 'cosin'; did you mean cosine\?"):
        make_schedule("cosin", 1e-3, total_steps=10)


def test_a_misspelt_schedule_fails_before_a_run_starts(project) -> None:
    from kaggle_kit.training.trainer import train

    comp, config = cut_config(project)
    before = set((project.checkpoints / "toy").glob("*")) if (project.checkpoints / "toy").is_dir() else set()
    with pytest.raises(KitError, match="unknown learning-rate schedule 'cosin'"):
        train(project, comp, config.merged({"finetune_schedule": "cosin"}))
    after = set((project.checkpoints / "toy").glob("*")) if (project.checkpoints / "toy").is_dir() else set()
    assert after == before, "no run folder is created for it"


# -- in a training run ---------------------------------------------------------------------------------
class StopAfter:
    """A ``report`` that interrupts training (as Ctrl-C would) after the first epoch of phase 2."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, EpochEnd) and event.phase == 2 and event.epoch == 1:
            raise KeyboardInterrupt


def phase2_rates(run_path: Path) -> list[float]:
    with (run_path / "history.csv").open(newline="") as fh:
        return [float(r["lr"]) for r in csv.DictReader(fh) if r["phase"] == "2"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    from kaggle_kit.project import Project

    root = make_project(tmp_path_factory.mktemp("sched"), per_class=10, test=3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAGGLE_KIT_CACHE", str(root / "cache"))
        yield Project(root)


def cut_config(project):
    comp = project.competition("toy")
    return comp, comp.config(None, {"backbone": "efficientnet_lite0", "weights": "imagenet", "image_size": 32,
                                    "holdout": 0.3, "head_epochs": 2, "finetune_epochs": 3,
                                    "finetune_from": "block7_add", "finetune_schedule": "cosine",
                                    "finetune_lr": 1e-3, "augment": "flip", "batch_size": 8})


@pytest.fixture(scope="module")
def uninterrupted(project):
    from kaggle_kit.training.trainer import train

    return train(project, *cut_config(project))


def test_cut_run_derives_features_from_activations_and_follows_the_cosine(project, uninterrupted) -> None:
    run = uninterrupted
    assert run.status == "complete"
    metas = [json.loads(p.read_text()) for p in (project.cache / "features").glob("*.json")]
    assert [m.get("via") for m in metas] == ["block7_add"], "phase 1's features came from the cached activations"
    (acts,) = [json.loads(p.read_text()) for p in (project.cache / "activations").glob("*.json")]
    assert acts["n"] == 2 * 30, "each training image and its mirror image"
    rates = phase2_rates(run.path)
    assert len(rates) == 3 and rates[0] > rates[1] > rates[2]
    assert rates[2] == pytest.approx(0.0, abs=1e-9), "the cosine ends at zero on the phase's last step"


def test_resumed_cut_run_continues_the_schedule_where_it_stopped(project, uninterrupted) -> None:
    from kaggle_kit.training.runs import load_run
    from kaggle_kit.training.trainer import train

    comp, config = cut_config(project)
    with pytest.raises(KeyboardInterrupt):
        train(project, comp, config, report=StopAfter())
    (interrupted,) = [p for p in (project.checkpoints / "toy").iterdir()
                      if p.name != uninterrupted.run_id and load_run(project, "toy", p.name).status == "interrupted"]
    assert len(phase2_rates(interrupted)) == 1
    run = train(project, comp, config, resume=interrupted.name)
    assert run.status == "complete"
    assert phase2_rates(run.path) == pytest.approx(phase2_rates(uninterrupted.path), rel=1e-5), \
        "the resumed epochs ran at the rates the schedule gives those steps, not from its start"
