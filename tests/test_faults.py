"""The fault matrix (README: "What you can rely on when things go wrong"): each test is one row, the fault made real and the outcome
asserted. Trainings run ``kaggle-kit`` in subprocesses on a tiny three-colour competition (see
toy_project.py) whose train folders also hold broken and unusual images; the disk-full cases use a
real, small tmpfs.

Shared, in order: two trainings started at once (they are also the uninterrupted reference and the
bad-image run), then one run interrupted with Ctrl-C, resumed, killed with SIGKILL mid-epoch and
resumed to the end.
"""
from __future__ import annotations

import contextlib

import csv
import errno
import hashlib
import os
import re
import signal
import subprocess
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from toy_project import COLOURS, PLUGIN, kit, kit_here, make_project, noisy, run_dirs, run_json, start_kit

from kaggle_kit.errors import DiskFullError, KitError

pytestmark = pytest.mark.filterwarnings("ignore:.*shuffle=True.*:UserWarning")

PER_CLASS = 10
SECRET = "kk-secret-5f0c9a7e31d24b86"        # a distinctive KAGGLE_KEY that must never be written anywhere
KEY_ENV = {"KAGGLE_USERNAME": "kk-user", "KAGGLE_KEY": SECRET}
BAD = {"red/truncated.jpg": "truncated JPEG", "green/empty.jpg": "empty file", "blue/notes.jpg": "not a decodable image"}
ODD = ("red/cmyk.jpg", "green/deep16.png", "blue/rgba.png", "red/palette.png")
EPOCHS = 4                                    # the plugin's head_epochs: simple_cnn trains them all in phase 2


def add_odd_images(train: Path) -> None:
    """Broken files (BAD) and usable images in unusual modes (ODD) among the good ones."""
    from PIL import Image

    rng = np.random.default_rng(1)
    ok, jpeg = cv2.imencode(".jpg", noisy(COLOURS["red"], rng))
    (train / "red" / "truncated.jpg").write_bytes(jpeg.tobytes()[: len(jpeg) // 2])
    (train / "green" / "empty.jpg").write_bytes(b"")
    (train / "blue" / "notes.jpg").write_text("these are my notes, not a picture\n")
    Image.new("CMYK", (20, 24), (0, 210, 210, 20)).save(train / "red" / "cmyk.jpg")       # red, in CMYK
    deep = noisy(COLOURS["green"], rng).astype(np.uint16) * 257
    cv2.imwrite(str(train / "green" / "deep16.png"), deep)                                 # 16 bits per channel
    rgba = np.dstack([noisy(COLOURS["blue"], rng), np.full((20, 24), 255, np.uint8)])
    cv2.imwrite(str(train / "blue" / "rgba.png"), rgba)                                    # with an alpha channel
    Image.fromarray(noisy(COLOURS["red"], rng)[:, :, ::-1]).convert(
        "P", palette=Image.Palette.ADAPTIVE).save(train / "red" / "palette.png")          # a palette image


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("faults"), per_class=PER_CLASS)
    add_odd_images(root / "data" / "toy" / "train")
    return root


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"kaggle-kit exited (rc {proc.returncode}) before {what}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def history(run: Path) -> list[dict[str, str]]:
    path = run / "history.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [r for r in csv.DictReader(fh) if r.get("epoch")]


def epochs_of(run: Path, fold: int) -> list[int]:
    return [int(r["epoch"]) for r in history(run) if r["fold"] == str(fold)]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.iterdir()) if p.is_file()}


# -- two trainings at once; also the reference run and the bad-image run -----------------------------
@pytest.fixture(scope="module")
def pair(root: Path) -> list[dict]:
    procs = [start_kit(root, "train", "toy", "--folds", "2", **KEY_ENV) for _ in range(2)]
    out = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=600)
            assert proc.returncode == 0, f"training failed (rc {proc.returncode}):\n{stdout}\n{stderr}"
            run_id = re.search(r"^run (\S+) ->", stdout, re.M).group(1)
            out.append({"stdout": stdout, "stderr": stderr, "dir": root / "checkpoints" / "toy" / run_id})
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out


def test_two_trains_at_once_get_distinct_runs_and_clobber_nothing(pair: list[dict]) -> None:
    from kaggle_kit.model.classifier import load_model

    a, b = (p["dir"] for p in pair)
    assert a != b and a.is_dir() and b.is_dir()
    for run in (a, b):
        rec = run_json(run)
        assert rec["status"] == "complete" and [f["fold"] for f in rec["folds"]] == [0, 1]
        assert sorted((r["fold"], r["epoch"]) for r in history(run)) == \
            sorted((str(k), str(e)) for k in (0, 1) for e in range(1, EPOCHS + 1)), "one history, one run"
        with (run / "oof.csv").open(newline="") as fh:
            assert len(list(csv.DictReader(fh))) == rec["train_size"]
        for k in (0, 1):
            model = load_model(run / f"fold_{k}" / "best.keras")
            assert model.output_shape == (None, 3)


def test_bad_images_are_listed_and_left_out_and_unusual_modes_are_used(root: Path, pair: list[dict]) -> None:
    train = root / "data" / "toy" / "train"
    for p in pair:
        rec = run_json(p["dir"])
        excluded = {Path(e["path"]).relative_to(train).as_posix(): e["reason"] for e in rec["excluded"]}
        assert set(excluded) == set(BAD)
        for name, reason in BAD.items():
            assert reason in excluded[name]
            assert str(train / name) in p["stdout"], f"the CLI output names {name}"
        assert rec["train_size"] == 3 * PER_CLASS + len(ODD)
        with (p["dir"] / "oof.csv").open(newline="") as fh:
            used = {r["id"] for r in csv.DictReader(fh)}
        assert set(ODD) <= used and not set(BAD) & used


# -- Ctrl-C, then SIGKILL in the middle of an epoch, then resume --------------------------------------
@pytest.fixture(scope="module")
def interrupted(root: Path, pair: list[dict]) -> dict:
    """One run: Ctrl-C during fold 0; ``--resume``, SIGKILL during fold 1; ``--resume`` to the end."""
    before = set(run_dirs(root))
    proc = start_kit(root, "train", "toy", "--folds", "2")

    def new_run() -> Path | None:
        new = set(run_dirs(root)) - before
        return new.pop() if new else None

    wait_for(lambda: new_run() is not None and epochs_of(new_run(), 0), proc, "fold 0's first epoch")
    run = new_run()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    out = {"run": run, "sigint": SimpleNamespace(rc=proc.returncode, stdout=stdout, stderr=stderr,
                                                 status=run_json(run)["status"])}

    proc = start_kit(root, "train", "--resume", run.name)     # no slug: the project default (set by train)
    wait_for(lambda: (run / "fold_0" / "result.json").is_file() and epochs_of(run, 1), proc, "fold 1's first epoch")
    out["fold0"] = snapshot(run / "fold_0")
    proc.send_signal(signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=60)
    out["sigkill"] = SimpleNamespace(rc=proc.returncode, stdout=stdout, stderr=stderr,
                                     status=run_json(run)["status"], fold1_epochs=epochs_of(run, 1))

    out["final"] = kit_here(root, "train", "--resume", run.name)     # the same entry point, in this process
    return out


def test_ctrl_c_saves_the_run_as_interrupted_and_exits_130(interrupted: dict) -> None:
    sigint = interrupted["sigint"]
    assert sigint.rc == 130, sigint.stdout + sigint.stderr
    assert sigint.status == "interrupted"
    assert "Traceback" not in sigint.stderr
    assert f"(resume with `kaggle-kit train toy --resume {interrupted['run'].name}`)" in sigint.stderr
    assert "<run-id>" not in sigint.stderr


def test_resume_after_ctrl_c_continues_the_fold(interrupted: dict) -> None:
    assert re.search(r"fold 1: resuming phase 2 at epoch [2-4]", interrupted["sigkill"].stdout)
    epochs = epochs_of(interrupted["run"], 0)
    assert epochs == sorted(set(epochs)) and epochs[-1] == EPOCHS, f"fold 0 restarted: {epochs}"


def test_sigkill_mid_epoch_then_resume_keeps_the_finished_fold(interrupted: dict) -> None:
    run, killed, final = interrupted["run"], interrupted["sigkill"], interrupted["final"]
    assert killed.rc == -signal.SIGKILL and killed.status == "running"
    assert killed.fold1_epochs and killed.fold1_epochs[-1] < EPOCHS, "killed before fold 1 ended"
    assert final.returncode == 0, final.stdout + final.stderr
    assert "fold 1: already finished, kept" in final.stdout
    assert re.search(r"fold 2: resuming phase 2 at epoch \d", final.stdout)
    after = snapshot(run / "fold_0")
    for name in ("best.keras", "result.json", "oof.npy"):
        assert after[name] == interrupted["fold0"][name], f"fold_0/{name} was rewritten"
    epochs = epochs_of(run, 1)
    assert epochs == sorted(set(epochs)) and epochs[-1] == EPOCHS, f"fold 1 restarted instead of resuming: {epochs}"
    rec = run_json(run)
    assert rec["status"] == "complete" and [f["fold"] for f in rec["folds"]] == [0, 1]


def test_resumed_run_scores_like_an_uninterrupted_one(interrupted: dict, pair: list[dict]) -> None:
    """Same data, config and seed as the two uninterrupted runs. Measured: the same CV and per-fold
    scores. Not guaranteed bit-exact (threaded CPU kernels, and a resumed fold restarts its shuffling
    and augmentation streams), so up to 2 of the 34 out-of-fold images may differ."""
    resumed = run_json(interrupted["run"])["cv"]
    references = [run_json(p["dir"])["cv"] for p in pair]
    assert resumed is not None
    assert min(abs(resumed - r) for r in references) <= 2 / (3 * PER_CLASS + len(ODD)) + 1e-6, (resumed, references)


# -- a full disk ----------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 4 MB filesystem (tmpfs) mounted for the test, unmounted after it."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a 4 MB tmpfs at {mnt}: {done.stderr.strip()} -- the disk-full tests need "
                    "root (or run pytest under `unshare --user --map-root-user --mount`)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def fill(folder: Path) -> None:
    """Write zeros until the filesystem says ENOSPC."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    chunk = b"\0" * (1 << 16)
    try:
        while True:
            os.write(fd, chunk)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)


def assert_disk_full(error: pytest.ExceptionInfo, path: Path) -> None:
    message = str(error.value)
    assert "disk full" in message and str(path) in message and "\n" not in message, message


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_disk_full_while_saving_run_json(small_disk: Path) -> None:
    from kaggle_kit.project import Project
    from kaggle_kit.training.runs import RunRecord, load_run

    rec = RunRecord.create(Project(small_disk), "toy", backbone="simple_cnn")
    before = rec.json_path.read_bytes()
    fill(small_disk)
    rec.cv, rec.status = 0.9, "complete"
    with pytest.raises(DiskFullError) as e:
        rec.save()
    assert_disk_full(e, rec.json_path)
    assert rec.json_path.read_bytes() == before
    assert load_run(Project(small_disk), "toy", rec.run_id).status == "running"
    assert leftovers(rec.path) == []


def test_disk_full_while_writing_a_submission(small_disk: Path) -> None:
    import pandas as pd

    from kaggle_kit.project import load_plugin
    from kaggle_kit.prediction.submission import write_submission

    plugin = small_disk / "toy.py"
    plugin.write_text(PLUGIN)
    comp = load_plugin(plugin)
    ids = [f"t{i}.jpg" for i in range(5)]
    frame = pd.DataFrame({"id": ids, "label": ["red"] * 5})
    first = write_submission(comp, frame, ids, small_disk / "run.csv")
    before = first.read_bytes()
    fill(small_disk)
    with pytest.raises(DiskFullError) as e:
        write_submission(comp, frame.assign(label="blue"), ids, first)
    assert_disk_full(e, small_disk / "run-2.csv")
    assert first.read_bytes() == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "run.csv", "toy.py"]


def test_disk_full_while_appending_to_history_csv(small_disk: Path) -> None:
    from kaggle_kit.training.callbacks import append_row

    path = small_disk / "history.csv"
    append_row(path, {"fold": 0, "phase": 2, "epoch": 1, "loss": 0.5})
    fill(small_disk)
    row = {"fold": 0, "phase": 2, "epoch": 2, "seconds": 1.25, "loss": 0.123456, "val_score": 0.5, "lr": 0.001}
    with pytest.raises(DiskFullError) as e:
        for _ in range(10_000):        # the rows fill the file's last block, then one does not fit
            before = path.read_bytes()
            append_row(path, row)
    assert_disk_full(e, path)
    assert path.read_bytes() == before, "the earlier rows are intact and no partial row is left"


@pytest.fixture(scope="module")
def small_model():
    from kaggle_kit.model.backbones import get_backbone
    from kaggle_kit.model.classifier import build_model

    return build_model(get_backbone("simple_cnn"), n_classes=3, image_size=16, weights="none", dropout=0.1,
                       cache_dir=Path("/nonexistent"))


def test_disk_full_while_saving_a_checkpoint(small_disk: Path, small_model) -> None:
    from kaggle_kit.model.classifier import load_model, save_model

    path = small_disk / "best.keras"
    save_model(small_model, path)
    before = path.read_bytes()
    fill(small_disk)
    with pytest.raises(DiskFullError) as e:
        save_model(small_model, path)
    assert_disk_full(e, path)
    assert path.read_bytes() == before and load_model(path).output_shape == (None, 3)
    assert leftovers(small_disk) == []


def test_disk_full_in_save_best_keeps_the_previous_best(small_disk: Path, small_model) -> None:
    from kaggle_kit.training.callbacks import SaveBest

    path = small_disk / "best.keras"
    evaluator = SimpleNamespace(last_proba=np.full((4, 3), 1 / 3), chosen_weights=contextlib.nullcontext,
                                last_ema=False)
    saver = SaveBest(path=path, save=small_model.save, evaluator=evaluator, mode="max")
    saver.on_epoch_end(0, {"val_score": 0.5})
    before = {p: p.read_bytes() for p in (path, small_disk / "oof.npy")}
    fill(small_disk)
    evaluator.last_proba = np.eye(3)[[0, 1, 2, 0]]
    with pytest.raises(DiskFullError) as e:
        saver.on_epoch_end(1, {"val_score": 0.9})
    assert_disk_full(e, path)
    assert {p: p.read_bytes() for p in before} == before
    assert leftovers(small_disk) == []


# -- a hostile archive ------------------------------------------------------------------------------
@pytest.mark.parametrize("member", ["../../x", "/ABS/x", "..\\..\\x"])
def test_archive_members_outside_the_data_folder_are_refused(tmp_path: Path, member: str) -> None:
    from kaggle_kit.kaggle.fetch import fetch
    from kaggle_kit.project import Project

    project = Project(tmp_path / "project")
    (project.root / "competitions").mkdir(parents=True)
    outside = tmp_path / "ABS"
    name = member.replace("/ABS", str(outside))
    archive = tmp_path / "download" / "toy.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train/red/0.png", b"not used")
        zf.writestr(name, b"escaped")

    class Client:
        def download(self, slug: str, dest: Path, force: bool = False) -> Path:
            dest.mkdir(parents=True, exist_ok=True)
            os.replace(archive, dest / archive.name)
            return dest / archive.name

    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    with pytest.raises(KitError) as e:
        fetch(project, "toy", client=Client())
    assert "outside the target folder" in str(e.value) and repr(name) in str(e.value)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [p for p in after if p.name != "toy.zip"] == [p for p in before if p.name != "toy.zip"], \
        "nothing was extracted anywhere"
    assert not (project.root / "data" / "toy").exists()
    assert not (tmp_path / "x").exists() and not outside.exists()


# -- the Kaggle key stays secret ------------------------------------------------------------------------
def test_the_kaggle_key_is_never_written_or_shown(root: Path, pair: list[dict], tmp_path: Path) -> None:
    """KAGGLE_KEY was in the environment of both trainings; here also of a report and of two kaggle
    commands that fail: one against an unreachable server, one whose key the server refuses (401)."""
    from kaggle_local import LocalKaggleServer, client_env

    home = tmp_path / "home"
    outputs = [p["stdout"] + p["stderr"] for p in pair]
    report = kit(root, "report", "toy", pair[0]["dir"].name, **KEY_ENV)
    assert report.returncode == 0, report.stdout + report.stderr
    outputs.append(report.stdout + report.stderr)

    unreachable = kit(root, "status", "toy", **client_env(9, home, "kk-user", SECRET))   # port 9: discard, closed
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr, unreachable.stderr
    outputs.append(unreachable.stdout + unreachable.stderr)
    with LocalKaggleServer(users={"kk-user": "the-right-key"}) as server:
        refused = kit(root, "status", "toy", **client_env(server.port, home, "kk-user", SECRET))
    assert refused.returncode == 1 and "(401)" in refused.stderr, refused.stdout + refused.stderr
    outputs.append(refused.stdout + refused.stderr)

    for text in outputs:
        assert SECRET not in text
    written = [p for folder in (root, home) for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in written) and any(p.suffix == ".html" for p in written)
    assert [p for p in written if SECRET.encode() in p.read_bytes()] == []


# -- the disk fills during a training: what the user sees ----------------------------------------------
def test_train_on_a_full_disk_is_one_error_line(tmp_path: Path, small_disk: Path) -> None:
    project = small_disk / "project"
    (project / "competitions").mkdir(parents=True)
    (project / "competitions" / "toy.py").write_text(PLUGIN)
    make_project(tmp_path / "src", per_class=4, test=1)
    os.symlink(tmp_path / "src" / "data", project / "data")
    (small_disk / "filler").write_bytes(b"\0" * (4096 - 200) * 1024)   # ~200 KB left: run.json fits, a model does not
    done = kit_here(project, "train", "toy", "--folds", "2", KAGGLE_KIT_CACHE=str(tmp_path / "cache"))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "disk full" in lines[0], done.stderr
    (run,) = run_dirs(project)
    assert run_json(run)["status"] == "failed"                       # a whole, readable record


# -- messages that mislead (issue #12, fault 7) ---------------------------------------------------------
NOISE = ("absl::InitializeLog", "cpu_feature_guard", "oneDNN custom operations", "rebuild TensorFlow")


def test_tensorflow_start_up_lines_stay_off_stderr(pair: list[dict]) -> None:
    for run in pair:
        shown = [line for line in run["stderr"].splitlines() if any(n in line for n in NOISE)]
        assert shown == [], shown


def test_native_stderr_filter_drops_start_up_lines_and_keeps_errors(tmp_path: Path) -> None:
    import sys

    script = (
        "import os, sys\n"
        "from kaggle_kit.cli.stderr import filter_native_stderr\n"
        "filter_native_stderr()\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1796183288.344391   11918 port.cc:153] oneDNN custom operations are on.\\n'\n"
        "            b'E0000 00:00:1796183288.344391   11918 cuda_dnn.cc:8] could not create cudnn handle\\n')\n"
        "os.write(2, b'W0000 00:00:1796183288.344391   11918 gpu_device.cc:2] Cannot dlopen\\n')\n"
        "print('error: a real one-line error', file=sys.stderr)\n"
        "os.write(2, b'native trailing line without newline')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert sorted(done.stderr.splitlines()) == [   # Python's own writes do not queue behind the filter
        "E0000 00:00:1796183288.344391   11918 cuda_dnn.cc:8] could not create cudnn handle",
        "error: a real one-line error",
        "native trailing line without newline",
    ]


def test_a_truncated_checkpoint_is_called_truncated_not_missing(tmp_path: Path, small_model) -> None:
    from kaggle_kit.model.classifier import load_model, save_model

    path = tmp_path / "best.keras"
    save_model(small_model, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(KitError) as e:
        load_model(path)
    message = str(e.value)
    assert message.startswith(f"{path}: checkpoint is truncated or corrupt (not a complete .keras archive")
    assert "not found" not in message.lower()


def test_a_broken_plugin_does_not_hide_the_others(root: Path, tmp_path: Path) -> None:
    import shutil

    project = tmp_path / "plugins"
    shutil.copytree(root / "competitions", project / "competitions")
    (project / "competitions" / "broken.py").write_text("import not_a_module_anywhere\n")
    listed = kit(project, "competitions")
    assert listed.returncode == 1
    assert re.search(r"^\s*toy\s", listed.stdout, re.M) and "cifar-10-mini" in listed.stdout
    errors = listed.stderr.strip().splitlines()
    assert errors == [f"error: {project / 'competitions' / 'broken.py'}: plugin failed to load: "
                      "ModuleNotFoundError: No module named 'not_a_module_anywhere'"]
    runs = kit(project, "runs", "toy")               # the others still work
    assert runs.returncode == 0, runs.stderr
    missing = kit(project, "runs", "broken")         # the broken plugin's own slug: its own error
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == errors
    other = kit(project, "runs", "nope")             # another unknown slug: the known ones, and the broken one
    assert other.returncode == 1 and "1 plugin(s) failed to load: " in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1
