"""Code competitions end to end on the local server: package a run, push the notebook, run it offline, submit.

One tiny run (simple_cnn at 16 px on the tiny-pets images) serves every test of the module; the
plugin is marked as a code competition. The local server runs each pushed notebook for real
(nbclient, no network), from the kit's own wheel.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kaggle_helpers import FACTS, PLUGIN, SLUG, TRUTH, USER, add_competition, csv_text, serving, tiny_members
from toy_project import kit_here
from kaggle_kit.errors import KitError, NotebookFailed, SubmissionError
from kaggle_kit.kaggle.client import KaggleClient
from kaggle_kit.kaggle.code_submit import submit_notebook
from kaggle_kit.kaggle.kernels import KaggleCode
from kaggle_kit.kaggle.package import build_package, dataset_slug
from kaggle_kit.project import Project
from kaggle_kit.training.runs import load_run

CODE_PLUGIN = PLUGIN + '''
from dataclasses import replace
COMPETITION = replace(COMPETITION, code_competition=True, notebook_hours=0.5)
'''

# Kaggle notebooks have KAGGLE_KERNEL_RUN_TYPE set: this plugin reaches for the network there only
ONLINE_PLUGIN = CODE_PLUGIN + '''
import os
if os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
    import urllib.request
    print("downloading extra weights ...")
    urllib.request.build_opener(urllib.request.ProxyHandler({{}})).open("{url}", timeout=5)
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A kit project with the code-competition plugin, its data and one finished 2-fold run."""
    from kaggle_kit.api import train

    root = tmp_path_factory.mktemp("code") / "project"
    (root / "competitions").mkdir(parents=True)
    (root / "competitions" / "tiny_pets.py").write_text(CODE_PLUGIN)
    data = root / "data" / SLUG
    for name, blob in tiny_members().items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(blob)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAGGLE_KIT_HOME", str(root))
        train(SLUG, project=Project(root), progress=False, backbone="simple_cnn", weights="none", image_size=16,
              folds=2, holdout=None, head_epochs=1, finetune_epochs=0, batch_size=4, tta=True)
    return root


@pytest.fixture
def project(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A fresh copy of the trained project for each test (submissions recorded in one stay there)."""
    root = tmp_path / "project"
    shutil.copytree(trained, root, ignore=shutil.ignore_patterns("kaggle-package"))
    monkeypatch.setenv("KAGGLE_KIT_HOME", str(root))
    monkeypatch.delenv("KAGGLE_KIT_COMPETITION", raising=False)
    return Project(root)


@pytest.fixture
def server(tmp_path: Path, project: Project, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "served"
    add_competition(root, SLUG, tiny_members(), solution=csv_text(TRUTH), settings=FACTS)
    with serving(root, project, tmp_path / "home", monkeypatch) as srv:
        yield srv


def only_run(project: Project):
    [run_dir] = (project.checkpoints / SLUG).iterdir()
    return load_run(project, SLUG, run_dir.name)


def test_submit_notebook_packages_pushes_runs_offline_and_scores(server, project, tmp_path):
    got = kit_here(project.root, "submit", SLUG, "--best", "--notebook", "-m", "notebook try")
    assert got.returncode == 0, got.stdout + got.stderr
    out = got.stdout
    assert f"{SLUG} is a code competition: submitting run" in out
    assert "estimated run time:" in out and "the limit is 0.5 h" in out
    assert f"uploaded dataset {USER}/{dataset_slug(SLUG)}" in out
    assert "version 1: complete" in out and "ref 50000001" in out
    run = only_run(project)
    assert [s["message"] for s in run.submissions] == ["notebook try"]
    version = server.kernels.version(USER, "kk-tiny-pets-inference", 1)
    log = "".join(e["data"] for e in version.log)
    assert "installed offline from kk-tiny-pets" in log and "kaggle-kit-lib-" in log   # the kit came from the wheel
    assert "wrote " in log and "6 rows in" in log
    [record] = server.ledger.submissions(SLUG, USER)
    assert record.error == "" and record.public is not None and record.file_name == "submission.csv"
    status = kit_here(project.root, "status", SLUG)
    assert status.returncode == 0 and "complete" in status.stdout and run.run_id in status.stdout


def test_a_failing_notebook_shows_its_error_and_log_and_records_nothing(server, project):
    url = f"{server.url}/_admin/requests"         # reachable from here, not from the notebook's namespace
    (project.root / "competitions" / "tiny_pets.py").write_text(ONLINE_PLUGIN.format(url=url))
    got = kit_here(project.root, "submit", SLUG, "--best", "--notebook")
    assert got.returncode == 1, got.stdout + got.stderr
    error = got.stderr.strip().splitlines()[-1]
    assert error.startswith("error: notebook testuser/kk-tiny-pets-inference version 1 failed on Kaggle: ")
    assert "URLError" in error and "Connection refused" in error and error.endswith("nothing was submitted")
    tail = got.stderr.split("lines of the notebook's log:", 1)[1]
    assert "URLError" in tail and "Connection refused" in tail                         # the log's tail
    assert only_run(project).submissions == []
    assert server.ledger.submissions(SLUG, USER) == []


def test_the_wrong_path_for_the_competition_is_one_line(server, project):
    csv = kit_here(project.root, "submit", SLUG, "--best")
    assert csv.returncode == 1
    assert csv.stderr.strip() == (f"error: {SLUG} is a code competition: Kaggle runs a notebook, a CSV cannot be "
                                  f"uploaded; submit with `kaggle-kit submit {SLUG} --best --notebook`")
    (project.root / "competitions" / "tiny_pets.py").write_text(PLUGIN)
    nb = kit_here(project.root, "submit", SLUG, "--best", "--notebook")
    assert nb.returncode == 1 and nb.stderr.strip().startswith(f"error: {SLUG} takes a CSV upload, not a notebook")
    assert server.kernels.dataset_version(USER, dataset_slug(SLUG)) is None      # nothing was uploaded


def test_a_package_over_the_size_limit_stops_before_uploading(server, project):
    competition = project.competition(SLUG)
    with pytest.raises(SubmissionError, match=r"packages to [\d.]+ MB, over the dataset limit of 1.0 KB; "
                                              "nothing was uploaded"):
        build_package(project, competition, only_run(project), owner=USER, limit=1000)
    with pytest.raises(SubmissionError, match="over the dataset limit"):
        submit_notebook(project, competition, only_run(project), client=KaggleClient(), limit=1000)
    assert server.kernels.dataset_version(USER, dataset_slug(SLUG)) is None
    assert not (project.cache / "kaggle-package").exists()


def test_the_package_holds_the_run_and_the_plugin_and_each_push_is_a_new_version(server, project):
    package = build_package(project, project.competition(SLUG), only_run(project), owner=USER)
    assert set(package.files) == {"run.json", "plugin.py", "package.json", "dataset-metadata.json",
                                  "fold_0.keras", "fold_0.json", "fold_1.keras", "fold_1.json",
                                  "kaggle_kit-0.1.0-py3-none-any.whl"}
    facts = json.loads((package.folder / "package.json").read_text())
    assert facts["run_id"] == package.run_id and facts["tta"] is True and facts["folds"] == [0, 1]
    meta = json.loads((package.folder / "dataset-metadata.json").read_text())
    assert meta["id"] == f"{USER}/kk-{SLUG}" and 6 <= len(meta["title"]) <= 50
    again = build_package(project, project.competition(SLUG), only_run(project), owner=USER)
    assert again.files == package.files and again.size == package.size   # rebuilt in place, same wheel
    code = KaggleCode(KaggleClient())
    assert [code.push_dataset(package.folder, ref=package.dataset, notes=n) and
            server.kernels.dataset_version(USER, dataset_slug(SLUG)) for n in ("one", "two")] == [1, 2]
    with pytest.raises(KitError, match="not complete"):
        run = only_run(project)
        run.status = "running"
        build_package(project, project.competition(SLUG), run, owner=USER)


def test_a_project_plugin_replaces_the_bundled_one_of_its_slug(tmp_path, monkeypatch):
    root = tmp_path / "p"
    (root / "competitions").mkdir(parents=True)
    (root / "competitions" / "mini.py").write_text(
        "from dataclasses import replace\nfrom kaggle_kit.bundled.cifar_10_mini import COMPETITION as B\n"
        "COMPETITION = replace(B, code_competition=True)\n")
    assert Project(root).competition("cifar-10-mini").code_competition is True
    (root / "competitions" / "tiny.py").write_text(PLUGIN)
    (root / "competitions" / "tiny_again.py").write_text(PLUGIN)
    with pytest.raises(KitError, match="is already defined in"):
        Project(root).competition(SLUG)


def test_the_notebook_finds_kaggle_input_where_the_server_puts_it(tmp_path, monkeypatch):
    (tmp_path / "input" / SLUG).mkdir(parents=True)
    project = Project(tmp_path / "p")
    assert project.data_root(SLUG) == tmp_path / "p" / "data" / SLUG
    monkeypatch.setenv("KAGGLE_KIT_INPUT_ROOT", str(tmp_path / "input"))
    assert project.data_root(SLUG) == tmp_path / "input" / SLUG


def test_an_interrupted_dataset_upload_leaves_no_dataset_and_runs_again(server, project):
    package = build_package(project, project.competition(SLUG), only_run(project), owner=USER)
    code = KaggleCode(KaggleClient())
    server.inject("upload", status=403, times=20)
    with pytest.raises(KitError, match="create dataset"):
        code.push_dataset(package.folder, ref=package.dataset, notes="cut")
    assert server.kernels.dataset_version(USER, dataset_slug(SLUG)) is None
    assert only_run(project).submissions == []
    server.clear_faults()
    code.push_dataset(package.folder, ref=package.dataset, notes="again")
    assert server.kernels.dataset_version(USER, dataset_slug(SLUG)) == 1
