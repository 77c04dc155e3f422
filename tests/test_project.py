"""Where a project lives, and the Kaggle notebook layout simulated under ``tmp_path``: with
``KAGGLE_KERNEL_RUN_TYPE`` set the project home is ``<kaggle>/working``, the data is read in place from
``<kaggle>/input/<slug>`` and nothing under ``input/`` is written (``KAGGLE_KIT_KAGGLE_ROOT`` stands for
``/kaggle``)."""
from __future__ import annotations

import contextlib
import io
import shutil
import stat
from pathlib import Path

import pytest
from toy_project import make_project

from kaggle_kit.project import Project, in_kaggle_notebook, kaggle_root

pytestmark = pytest.mark.filterwarnings("ignore:.*shuffle=True.*:UserWarning")


@pytest.fixture
def notebook(tmp_path: Path, kit_env: pytest.MonkeyPatch) -> Path:
    """A simulated ``/kaggle``: ``input/`` and ``working/``, the notebook's environment variables set."""
    (tmp_path / "kaggle" / "input").mkdir(parents=True)
    (tmp_path / "kaggle" / "working").mkdir()
    kit_env.setenv("KAGGLE_KIT_KAGGLE_ROOT", str(tmp_path / "kaggle"))
    kit_env.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    return tmp_path / "kaggle"


def test_outside_a_notebook_the_project_is_found_upwards(tmp_path: Path, kit_env: pytest.MonkeyPatch) -> None:
    (tmp_path / "competitions").mkdir()
    (tmp_path / "sub").mkdir()
    assert not in_kaggle_notebook() and kaggle_root() == Path("/kaggle")
    assert Project.find(tmp_path / "sub").root == tmp_path.resolve()
    kit_env.setenv("KAGGLE_KIT_HOME", str(tmp_path / "sub"))
    assert Project.find(tmp_path).root == (tmp_path / "sub").resolve()


def test_in_a_notebook_home_is_working_unless_kaggle_kit_home_says_otherwise(notebook: Path, tmp_path: Path,
                                                                            kit_env: pytest.MonkeyPatch) -> None:
    (tmp_path / "competitions").mkdir()       # a project folder above the cwd is not the home in a notebook
    project = Project.find(tmp_path)
    assert in_kaggle_notebook() and project.root == notebook / "working"
    assert (project.checkpoints, project.submissions, project.exports, project.cache) == tuple(
        notebook / "working" / name for name in ("checkpoints", "submissions", "exports", ".cache"))
    kit_env.setenv("KAGGLE_KIT_HOME", str(tmp_path))
    assert Project.find().root == tmp_path.resolve()


@pytest.mark.parametrize("mounted", ["toy", "competitions/toy"])
def test_attached_data_is_read_where_kaggle_mounts_it(notebook: Path, mounted: str) -> None:
    project = Project.find()
    assert project.data_root("toy") == notebook / "working" / "data" / "toy"   # not attached
    (notebook / "input" / mounted).mkdir(parents=True)
    assert project.data_root("toy") == notebook / "input" / mounted


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _kit(*args: str) -> tuple[int, str, str]:
    from kaggle_kit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def test_the_kit_runs_unchanged_in_the_notebook_layout(notebook: Path, tmp_path: Path,
                                                       kit_env: pytest.MonkeyPatch) -> None:
    """train, predict and export as a notebook would: the competition's data and the plugin come from
    read-only input folders, everything written lands in working/."""
    source = make_project(tmp_path / "source", per_class=6, test=3)
    inputs = notebook / "input"
    shutil.copytree(source / "data" / "toy", inputs / "toy")
    shutil.copytree(source / "competitions", inputs / "my-kit-plugins")     # e.g. a Dataset holding the plugin
    for p in [inputs, *inputs.rglob("*")]:                                  # read-only, as Kaggle mounts it
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(inputs)
    kit_env.setenv("KAGGLE_KIT_COMPETITIONS", str(inputs / "my-kit-plugins"))
    kit_env.chdir(notebook / "working")

    rc, out, err = _kit("train", "toy", "--folds", "2", "--head-epochs", "1")
    assert rc == 0, err
    rc, out, err = _kit("predict", "toy")
    assert rc == 0, err
    working = notebook / "working"
    assert str(working / "submissions" / "toy") in out.replace("\n", "")
    rc, out, err = _kit("export", "toy", "--format", "keras")
    assert rc == 0, err

    assert _snapshot(inputs) == before
    made = {p.relative_to(working).parts[0] for p in working.iterdir()}
    assert {"checkpoints", "submissions", "exports", ".cache"} <= made and "data" not in made
    assert len(list((working / "checkpoints" / "toy").glob("*/fold_*/best.keras"))) == 2
    for p in [inputs, *inputs.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)                             # so tmp_path can be removed


def test_the_project_folder_named_again_in_the_variable_is_read_once(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "competitions").mkdir()
    (tmp_path / "competitions" / "pets.py").write_text(
        "from kaggle_kit.competition import Competition, Submission\n"
        "from kaggle_kit.layouts import ClassFolders, TestFolder\n"
        "COMPETITION = Competition(slug='pets', classes=('cat', 'dog'), metric='accuracy',\n"
        "    train=ClassFolders(folder='train'), test=TestFolder(folder='test'),\n"
        "    submission=Submission(id_column='id', label_column='label'))\n")
    monkeypatch.setenv("KAGGLE_KIT_COMPETITIONS", str(tmp_path / "competitions"))
    project = Project(tmp_path)
    assert not project.plugins.errors and project.competition("pets").slug == "pets"
