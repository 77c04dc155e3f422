"""The time planner: budget strings, the plan chosen from a probe table, the deadline, and one real
``train --budget`` on tiny images (the plan in run.json, the wall time within the budget)."""
from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from kaggle_kit.config import TrainConfig, format_seconds, parse_budget
from kaggle_kit.errors import ConfigError, KitError
from kaggle_kit.training.planner import (CANDIDATES, DEPTHS, FILL, SHARE_MARGIN, DataFacts, TimeBox, candidate_sizes,
                                         choose, cut_layers, estimate, strength, validations)
from kaggle_kit.training.probe import ProbeCache, Speeds

from toy_project import kit, make_project


# -- budgets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, seconds", [("90s", 90), ("20m", 1200), ("2h", 7200), ("1h30m", 5400),
                                           ("1.5h", 5400), (" 2M ", 120)])
def test_budget_strings(text: str, seconds: float) -> None:
    assert parse_budget(text) == seconds
    assert parse_budget(format_seconds(seconds)) == seconds


@pytest.mark.parametrize("text", ["", "20", "20 minutes", "m", "-5m", "5d", "1m-2s", "0s"])
def test_bad_budget_strings_are_one_line_errors(text: str) -> None:
    with pytest.raises(KitError) as e:
        parse_budget(text)
    assert "\n" not in str(e.value) and "budget" in str(e.value)


def test_a_bad_budget_in_a_config_names_the_option() -> None:
    with pytest.raises(ConfigError) as e:
        TrainConfig(budget="soon").validate()
    assert e.value.field == "budget"
    assert TrainConfig(budget="90s").validate().budget == "90s"


# -- the plan, from a probe table ------------------------------------------------------------------
def table(backbone: str, size: int) -> Speeds:
    """A probe table as a machine might measure it: Lite1 and Lite2 slower than Lite0, every side
    costing its area; the layers above the deeper cut train ~8x slower than above the last stage."""
    slower = {"efficientnet_lite0": 1.0, "efficientnet_lite1": 1.35, "efficientnet_lite2": 1.7}[backbone]
    cuts = cut_layers(backbone)
    return Speeds(backbone=backbone, size=128, build_s=1.0, save_s=0.4,
                  bottom_ips={cuts["top"]: 250 / slower, cuts["upper"]: 450 / slower},
                  top_train_ips={cuts["top"]: 900 / slower, cuts["upper"]: 110 / slower},
                  top_forward_ips={cuts["top"]: 2500 / slower, cuts["upper"]: 600 / slower}).scaled(size)


PHOTOS = DataFacts(images=1500, classes=2, median_side=480, decode_s=0.01, converted=frozenset(CANDIDATES))
THUMBS = DataFacts(images=50_000, classes=10, median_side=32, decode_s=0.0003, converted=frozenset(CANDIDATES))


def test_cut_layers_are_stage_ends_of_each_backbone() -> None:
    import keras  # noqa: F401  (the architecture builds Keras layers)

    from kaggle_kit.model.lite.architecture import build_efficientnet_lite

    assert cut_layers("efficientnet_lite0") == {"top": "block14_add", "upper": "block7_add"}
    assert cut_layers("efficientnet_lite1") == {"top": "block19_add", "upper": "block10_add"}
    model = build_efficientnet_lite("efficientnet_lite2", (32, 32, 3))
    names = {layer.name for layer in model.layers}
    assert set(cut_layers("efficientnet_lite2").values()) <= names


def test_sizes_and_validation_follow_the_data() -> None:
    assert candidate_sizes(32, "efficientnet_lite0") == [96, 128]            # small images: up to 4x
    assert candidate_sizes(500, "efficientnet_lite2")[-1] == 260              # large: the size it was trained at
    assert validations(1500) == [(5, None), (1, 0.2)]
    assert validations(50_000) == [(1, 0.1)]


def test_estimates_are_computed_from_the_table() -> None:
    base = choose(PHOTOS, 600, table)
    bigger = DataFacts(**{**PHOTOS.__dict__, "images": PHOTOS.images * 2})
    again = estimate(base, bigger, table(base.backbone, base.image_size))
    for stage in ("images", "activations", "features"):
        assert again[stage] == pytest.approx(2 * base.stages[stage])        # data-dependent stages double
    speeds = table(base.backbone, base.image_size)
    checkpoints = base.folds * base.finetune_epochs * 2 * speeds.save_s       # two saves per epoch: fixed
    start = base.folds * (speeds.trace_s.get(base.cut, 0.0) + 2 * speeds.save_s)   # phase 2's start: fixed
    fixed = checkpoints + start
    assert again["finetune"] - fixed == pytest.approx(2 * (base.stages["finetune"] - fixed))
    assert again["folds"] == base.stages["folds"]                             # fixed costs do not
    cached = DataFacts(**{**PHOTOS.__dict__, "cached_sizes": frozenset({base.image_size})})
    assert estimate(base, cached, table(base.backbone, base.image_size))["images"] == 0


@pytest.mark.parametrize("facts", [PHOTOS, THUMBS], ids=["photos", "thumbnails"])
def test_more_budget_never_plans_weaker_and_every_plan_fits(facts: DataFacts) -> None:
    previous = None
    for minutes in (1, 2, 5, 10, 20, 60, 120):
        try:
            choice = choose(facts, minutes * 60, table)
        except ConfigError:
            assert previous is None            # only the smallest budgets may be too small
            continue
        assert choice.seconds <= minutes * 60 * FILL
        if previous is not None:
            assert strength(choice, facts) >= strength(previous, facts)
        previous = choice
    assert previous is not None and previous.depth == "upper" and previous.finetune_epochs >= 2


def test_a_tiny_budget_trains_a_head_and_a_larger_one_fine_tunes() -> None:
    tiny = choose(PHOTOS, 25, table)
    assert tiny.depth == "frozen" and tiny.finetune_epochs == 0
    roomy = choose(PHOTOS, 1800, table)
    assert roomy.depth in DEPTHS[1:] and roomy.finetune_epochs >= 2 and roomy.folds == 5
    big = choose(THUMBS, 3600, table)
    assert big.holdout == 0.1 and big.folds == 1 and big.image_size <= 128


def test_pinned_options_are_kept() -> None:
    c = choose(PHOTOS, 900, table, pins={"backbone": "efficientnet_lite1", "image_size": 160, "folds": 3})
    assert (c.backbone, c.image_size, c.folds, c.holdout) == ("efficientnet_lite1", 160, 3, None)
    assert choose(PHOTOS, 900, table, pins={"finetune_epochs": 0}).depth == "frozen"


def test_a_budget_too_small_names_the_smallest_that_works() -> None:
    with pytest.raises(ConfigError) as e:
        choose(PHOTOS, 3, table, budget="3s")
    message = str(e.value)
    assert "\n" not in message and message.startswith("budget 3s is too small")
    smallest = re.search(r"--budget (\S+) or more", message).group(1)
    assert choose(PHOTOS, parse_budget(smallest), table).depth == "frozen"     # and that one works


def test_large_data_fills_the_time_between_whole_epochs_with_a_share_of_the_images() -> None:
    stretched = [(m, c) for m in range(10, 121, 5) if (c := choose(THUMBS, m * 60, table)).finetune_share < 1]
    assert stretched, "no budget between whole epochs on 50,000 images"
    for minutes, c in stretched:
        whole = dataclasses.replace(c, finetune_share=1.0)
        assert c.seconds <= minutes * 60 * FILL < sum(estimate(whole, THUMBS, table(c.backbone, c.image_size)).values())
        assert c.finetune_epochs - 1 < c.finetune_epochs * c.finetune_share   # more steps than the whole epochs
        assert f"fine-tuned {c.finetune_epochs} epoch(s) of {c.finetune_share:.0%} of the images" in c.describe()
    minutes, c = stretched[0]
    pinned = choose(THUMBS, minutes * 60, table, pins={"finetune_epochs": c.finetune_epochs - 1})
    assert pinned.finetune_share == 1.0                                       # pinned epochs are kept as given


def test_time_box_fits_phase_2_share_to_the_time_left() -> None:
    box = TimeBox(deadline=0.0, epoch_s={2: 110.0}, share_s=100.0, adapt_share=True)   # 10 s fixed an epoch
    assert box.share_for(2, 1.0, left_s=220.0 / SHARE_MARGIN) == 1.0          # the plan, as estimated
    assert box.share_for(2, 1.0, left_s=120.0 / SHARE_MARGIN) == 0.5          # half the time for training
    assert box.share_for(2, 0.5, left_s=10_000.0) == 1.0                      # never more than every image
    assert box.share_for(2, 1.0, left_s=1.0) == 0.25                          # the deadline stops the rest
    assert dataclasses.replace(box, adapt_share=False).share_for(2, 0.8, left_s=1.0) == 0.8


def test_phase_2_epochs_see_the_share_of_the_images(tmp_path: Path) -> None:
    from kaggle_kit import events
    from kaggle_kit.project import Project
    from kaggle_kit.training.trainer import train

    project = Project(make_project(tmp_path, per_class=20, test=1))
    comp = project.competition("toy")
    steps = {}
    for share in (1.0, 0.5):
        seen: list[events.EpochBegin] = []
        train(project, comp, comp.config(overrides={"holdout": 0.5, "head_epochs": 2, "finetune_share": share}),
              report=lambda e: seen.append(e) if isinstance(e, events.EpochBegin) and e.phase == 2 else None)
        steps[share] = {e.steps for e in seen}
    assert steps == {1.0: {2}, 0.5: {1}}          # 30 training images in batches of 16: 2 steps, half: 1


# -- the deadline and the probe cache ---------------------------------------------------------------
def test_time_box_shares_the_time_left_between_the_folds_left() -> None:
    box = TimeBox(deadline=1000.0, epoch_s={2: 5.0}, reserve_s=2.0)
    assert box.fold_deadline(4, now=600.0) == pytest.approx(600 + 398 / 4)
    assert box.fold_deadline(1, now=1200.0) == 1200.0                        # past the deadline: no time


@pytest.mark.parametrize("deadline_in, epochs_run", [(-1.0, 1), (3600.0, 4)])
def test_deadline_stops_a_phase_after_the_epoch_that_left_no_time(deadline_in: float, epochs_run: int) -> None:
    import keras

    from kaggle_kit.training.callbacks import Deadline

    seen = []
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    x, y = np.zeros((8, 3), np.float32), np.eye(2, dtype=np.float32)[[0, 1] * 4]
    history = model.fit(x, y, epochs=4, verbose=0,
                        callbacks=[Deadline(time.time() + deadline_in, seen.append, fold=0, phase=2)])
    assert len(history.epoch) == epochs_run
    assert [(e.epoch, e.epochs) for e in seen] == ([(1, 4)] if epochs_run == 1 else [])


def test_probe_cache_round_trip(tmp_path: Path) -> None:
    cache = ProbeCache.open(tmp_path, machine="box")
    speeds = table("efficientnet_lite0", 128)
    cache.put(speeds)
    again = ProbeCache.open(tmp_path, machine="box")
    assert again.get("efficientnet_lite0", 128) == speeds and again.get("efficientnet_lite0", 160) is None
    again.path.write_text("{not json")
    assert ProbeCache.open(tmp_path, machine="box").entries == {}


# -- one real budgeted run -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("budget"), per_class=12, test=3)


def test_train_with_a_budget_records_its_plan_and_ends_in_time(toy: Path) -> None:
    budget = 180.0      # generous for this pinned plan (about a minute), so a loaded machine does not fail it
    t0 = time.perf_counter()
    done = kit(toy, "train", "toy", "--budget", "3m", "--backbone", "efficientnet_lite0", "--size", "32",
               "--folds", "2", "--head-epochs", "3", "--epochs", "1", timeout=600)
    wall = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    assert re.search(r"^plan for 3m \(\d+ candidates, probed efficientnet_lite0@32\): efficientnet_lite0 at 32px",
                     done.stdout, re.M), done.stdout
    run_json = next((toy / "checkpoints" / "toy").glob("*/run.json"))
    run = json.loads(run_json.read_text())
    plan = run["plan"]
    assert plan["budget_s"] == budget and plan["image_size"] == 32 and plan["folds"] == 2
    assert plan["depth"] in DEPTHS and plan["estimate_s"] <= budget
    assert run["config"]["budget"] == "3m" and run["config"]["weights"] == "imagenet"
    assert run["status"] == "complete" and wall <= budget * 1.1


def test_a_budget_too_small_is_one_line_naming_the_smallest(toy: Path) -> None:
    done = kit(toy, "train", "toy", "--budget", "1s", "--size", "32")     # the probe is cached by now
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert re.search(r"budget 1s is too small: the cheapest plan \(.*\) needs about \S+; use --budget \S+ or more",
                     lines[0])
