"""`kaggle-kit report`: a real run of the kit's trainer on tiny images, its page opened in headless Chromium."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from kaggle_kit.cli import main
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.errors import KitError
from kaggle_kit.data.images import read_rgb
from kaggle_kit.layouts import ClassFolders
from kaggle_kit.project import Project
from kaggle_kit.tools.report import calibration_bins, confident_mistakes, load_history, write_report
from kaggle_kit.training.cv import load_oof
from kaggle_kit.training.runs import RunRecord, load_run

CLASSES = ("red", "green", "blue")
PLUGIN = """from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders, TestFolder
COMPETITION = Competition(slug="{slug}", classes=("red", "green", "blue"), metric="{metric}",
    train=ClassFolders(), test=TestFolder(), submission=Submission(labels="{labels}"),
    defaults={{"backbone": "simple_cnn", "weights": "none", "image_size": 16, "head_epochs": 4, "batch_size": 16}})
"""
MISLABELLED = 2   # per class: images of the next class's colour, so the gallery always has mistakes
IMG_SRC = re.compile(r"<img[^>]*\ssrc='([^']+)'")


def write_images(folder: Path, seed: int) -> None:
    """12 noisy 20px squares per class, the class's channel raised; a few carry the wrong colour."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True)
        for i in range(12):
            colour = (c + 1) % 3 if i < MISLABELLED else c
            rgb = rng.integers(0, 110, (20, 20, 3), dtype=np.uint8)
            rgb[..., colour] += 120
            assert cv2.imwrite(str(folder / name / f"{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One project, two trained runs: ``toy`` (accuracy, 2 folds) and ``toyp`` (log loss, holdout)."""
    from kaggle_kit.training.trainer import train

    root = tmp_path_factory.mktemp("report")
    (root / "competitions").mkdir()
    for slug, metric, labels in (("toy", "accuracy", "name"), ("toyp", "log_loss", "proba")):
        (root / "competitions" / f"{slug}.py").write_text(PLUGIN.format(slug=slug, metric=metric, labels=labels))
        write_images(root / "data" / slug / "train", seed=len(slug))
    proj = Project(root)
    for slug, overrides in (("toy", {"folds": 2, "head_epochs": 3}), ("toyp", {"holdout": 0.34, "head_epochs": 3})):
        comp = proj.competition(slug)
        assert train(proj, comp, comp.config(overrides=overrides)).status == "complete"
    return proj


def the_run(project: Project, slug: str) -> RunRecord:
    (run_dir,) = (project.checkpoints / slug).iterdir()
    return load_run(project, slug, run_dir.name)


# -- a real browser ------------------------------------------------------------------------------------
def chromium(tmp_path: Path, *args: str) -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed: run `make browser` (apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    done = subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def browser_check(tmp_path: Path, index: Path) -> None:
    """The page loads in Chromium with every image decoded, and its screenshot is not blank."""
    shot = tmp_path / "shot.png"
    dom = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", f"--screenshot={shot}",
                   "--window-size=1200,2000", index.as_uri())
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    images = len(IMG_SRC.findall(index.read_text()))
    assert f'data-images="{images}"' in body.group(1)        # the page's own on-load check ran
    assert 'data-broken-images="0"' in body.group(1)
    pixels = cv2.imread(str(shot))
    assert pixels is not None and pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 20
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200   # plots and thumbnails, not a blank page


def linked_files(index: Path) -> list[Path]:
    return [index.parent / src for src in IMG_SRC.findall(index.read_text())]


# -- the pages -------------------------------------------------------------------------------------
def test_accuracy_run_report_opens_in_chromium_with_every_plot(project: Project, tmp_path: Path) -> None:
    run = the_run(project, "toy")
    index = write_report(project, project.competition("toy"), run)

    assert index == run.path / "report" / "index.html"
    page = index.read_text()
    assert {"summary", "curves", "confusion", "per-class", "mistakes"} <= set(re.findall(r"<section id='([^']+)'", page))
    assert "calibration" not in re.findall(r"<section id='([^']+)'", page)   # accuracy scores labels only
    files = linked_files(index)
    assert {"curves.png", "confusion.png"} <= {f.name for f in files}
    for f in files:
        assert f.is_file() and cv2.imread(str(f)) is not None, f
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)              # nothing from the network
    browser_check(tmp_path, index)


def test_per_class_table_matches_the_out_of_fold_predictions(project: Project) -> None:
    run = the_run(project, "toy")
    page = write_report(project, project.competition("toy"), run).read_text()
    oof = pd.read_csv(run.path / "oof.csv")
    pred = oof[list(CLASSES)].to_numpy().argmax(axis=1)
    truth = oof["label"].map(CLASSES.index).to_numpy()

    section = page.split("<section id='per-class'>")[1].split("</section>")[0]
    for c, name in enumerate(CLASSES):
        cells = re.search(rf"<tr><td>{name}</td>((?:<td>[^<]*</td>)+)</tr>", section).group(1)
        precision, recall, f1, support = [float(v) for v in re.findall(r"<td>([^<]*)</td>", cells)]
        assert support == (truth == c).sum()
        assert recall == pytest.approx(((pred == c) & (truth == c)).sum() / (truth == c).sum(), abs=5e-4)
        called = (pred == c).sum()
        assert precision == pytest.approx(((pred == c) & (truth == c)).sum() / called if called else 0, abs=5e-4)


def test_gallery_shows_the_most_confident_mistakes_with_their_own_images(project: Project) -> None:
    run = the_run(project, "toy")
    index = write_report(project, project.competition("toy"), run, mistakes=5)
    oof = pd.read_csv(run.path / "oof.csv", dtype={"id": str})
    proba = oof[list(CLASSES)].to_numpy()
    wrong = oof[proba.argmax(axis=1) != oof["label"].map(CLASSES.index).to_numpy()].copy()
    assert len(wrong) > 0, "the mislabelled images should be mistakes"
    wrong["p"] = wrong[list(CLASSES)].max(axis=1)
    expected = wrong.sort_values("p", ascending=False, kind="stable")["id"].head(5).tolist()

    gallery = index.read_text().split("<section id='mistakes'>")[1]
    shown = re.findall(r"<span class='id'>([^<]+) · fold \d+</span>", gallery)
    assert shown == expected
    thumbs = [f for f in linked_files(index) if f.parent.name == "thumbs"]
    assert len(thumbs) == len(expected)
    for thumb, image_id in zip(thumbs, shown):
        small, original = read_rgb(thumb), read_rgb(project.data_root("toy") / "train" / image_id)
        assert np.array_equal(small, original)   # the image the id names (20px images are not scaled down)

    fewer = write_report(project, project.competition("toy"), run, mistakes=1)
    assert sorted(p.name for p in (fewer.parent / "thumbs").iterdir()) == ["mistake_000.png"]   # no stale ones


def test_log_loss_run_gets_a_calibration_plot(project: Project, tmp_path: Path) -> None:
    index = write_report(project, project.competition("toyp"), the_run(project, "toyp"))

    assert "<section id='calibration'>" in index.read_text()
    assert (index.parent / "calibration.png") in linked_files(index)
    browser_check(tmp_path, index)


def test_missing_training_images_leave_a_note_not_a_broken_page(project: Project, tmp_path: Path) -> None:
    elsewhere = Project(tmp_path / "elsewhere")          # same plugins are not needed: the run has its path
    index = write_report(elsewhere, project.competition("toy"), the_run(project, "toy"), out_dir=tmp_path / "out")

    assert index == tmp_path / "out" / "index.html"
    assert "Training images unavailable" in index.read_text() and "data folder not found" in index.read_text()
    assert not (tmp_path / "out" / "thumbs").exists()
    assert all(f.is_file() for f in linked_files(index))


def test_page_holds_no_secrets(project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAGGLE_KEY", "env-secret-4711")
    run = the_run(project, "toy")
    run.config = {**run.config.to_dict(), "extra": {"api_token": "config-secret-0815", "note": "kept"}}
    page = write_report(project, project.competition("toy"), run, out_dir=tmp_path).read_text()

    assert "env-secret-4711" not in page and "config-secret-0815" not in page
    assert "kept" in page and "(hidden)" in page


# -- the command -----------------------------------------------------------------------------------
def test_cli_writes_the_best_or_a_named_run(project: Project, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(project.root)
    monkeypatch.delenv("KAGGLE_KIT_HOME", raising=False)
    monkeypatch.delenv("KAGGLE_KIT_COMPETITION", raising=False)
    run = the_run(project, "toy")

    assert main(["report", "toy", run.run_id, "--out", str(tmp_path / "named")]) == 0
    assert (tmp_path / "named" / "index.html").is_file()
    assert main(["report", "toyp", "--best", "--out", str(tmp_path / "best")]) == 0
    assert "calibration" in (tmp_path / "best" / "index.html").read_text()
    monkeypatch.setenv("KAGGLE_KIT_COMPETITION", "toy")
    assert main(["report", run.run_id, "--out", str(tmp_path / "lone")]) == 0   # a lone name is the run id
    assert run.run_id in (tmp_path / "lone" / "index.html").read_text()
    capsys.readouterr()

    assert main(["report", "toy", "no-such-run"]) == 1
    assert main(["report", "toy", run.run_id, "--best"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "no-such-run" in err and "not both" in err


# -- the pieces, without training ----------------------------------------------------------------------
def test_history_keeps_the_last_copy_of_a_resumed_epoch_and_numbers_steps_per_fold(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text("fold,phase,epoch,seconds,loss,val_score,val_logloss,lr\n"
                    "0,1,1,1,0.9,0.5,0.8,0.001\n0,1,2,1,0.8,0.6,0.7,0.001\n0,1,2,1,0.7,0.65,0.6,0.001\n"
                    "0,2,1,1,0.6,0.7,0.5,0.0001\n1,1,1,1,0.9,0.4,0.9,0.001\n")
    frame = load_history(path)

    assert frame[["fold", "phase", "epoch", "step"]].values.tolist() == [[0, 1, 1, 1], [0, 1, 2, 2], [0, 2, 1, 3],
                                                                         [1, 1, 1, 1]]
    assert frame.loc[1, "loss"] == 0.7
    assert load_history(tmp_path / "absent.csv") is None


def test_oof_with_a_missing_class_column_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "oof.csv"
    path.write_text("id,fold,label,red,green\na.png,0,red,0.6,0.4\n")
    with pytest.raises(KitError, match=r"oof\.csv: .*column\(s\) blue"):
        load_oof(path, CLASSES)
    path.write_text("id,fold,label,red,green,blue\na.png,0,purple,0.6,0.3,0.1\n")
    with pytest.raises(KitError, match="purple"):
        load_oof(path, CLASSES)


def test_confident_mistakes_and_calibration_bins(tmp_path: Path) -> None:
    path = tmp_path / "oof.csv"
    path.write_text("id,fold,label,red,green,blue\n"
                    "007,0,red,0.1,0.8,0.1\na,0,red,0.9,0.05,0.05\nb,1,blue,0.2,0.2,0.6\nc,1,green,0.55,0.4,0.05\n")
    oof = load_oof(path, CLASSES)
    mistakes = confident_mistakes(oof, CLASSES, 5)

    assert [(m.id, m.true, m.predicted) for m in mistakes] == [("007", "red", "green"), ("c", "green", "red")]
    assert mistakes[0].p_predicted == 0.8 and mistakes[1].p_true == 0.4
    conf, acc, count, ece = calibration_bins(oof.y_true, oof.proba, bins=5)
    assert count.tolist() == [0, 0, 1, 1, 2] and acc[4] == 0.5      # 0.8 wrong and 0.9 right share a bin
    assert ece == pytest.approx((abs(0.85 - 0.5) * 2 + abs(0.6 - 1) + abs(0.55 - 0)) / 4)


def test_a_run_with_nothing_recorded_is_an_error(tmp_path: Path) -> None:
    project = Project(tmp_path)
    (tmp_path / "competitions").mkdir()
    (tmp_path / "competitions" / "toy.py").write_text(PLUGIN.format(slug="toy", metric="accuracy", labels="name"))
    run = RunRecord.create(project, "toy", backbone="simple_cnn")
    with pytest.raises(KitError, match="no history.csv and no oof.csv"):
        write_report(project, project.competition("toy"), run)


def test_markup_in_class_names_ids_and_warnings_is_shown_as_text(tmp_path: Path) -> None:
    evil, amp = "<script>alert(1)</script>", "b&c"
    project = Project(tmp_path)
    comp = Competition(slug="toy", classes=(evil, amp), metric="accuracy", train=ClassFolders(),
                       submission=Submission())
    run = RunRecord.create(project, "toy", backbone="simple_cnn", classes=[evil, amp],
                           warnings=["<img src=x onerror=alert(2)>"])
    (run.path / "oof.csv").write_text(f"id,fold,label,{evil},{amp}\n<i>1.png</i>,0,{evil},0.2,0.8\n"
                                      f"2.png,0,{amp},0.1,0.9\n")
    page = write_report(project, comp, run, out_dir=tmp_path / "out").read_text()

    assert evil not in page and "<i>" not in page and "<img src=x" not in page
    assert page.count("<script>") == 1                                      # the page's own image check
    per_class = page.split("<section id='per-class'>")[1].split("</section>")[0]
    assert "<tr><td>&lt;script&gt;alert(1)&lt;/script&gt;</td><td>0.000</td>" in per_class
    assert "<tr><td>b&amp;c</td>" in per_class
    gallery = page.split("<section id='mistakes'>")[1]
    assert "<b>b&amp;c</b> 0.800" in gallery and "&lt;i&gt;1.png&lt;/i&gt; · fold 0" in gallery
    assert "<p class='warn'>&lt;img src=x onerror=alert(2)&gt;</p>" in page
