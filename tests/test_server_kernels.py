"""The local server's datasets, notebooks and code submissions, driven by the unmodified `kaggle` CLI.

The notebooks here use only the standard library, so each run takes a few seconds: a kernel start.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import nbformat

from kaggle_helpers import SLUG, TRUTH, USER, project, run_cli, server, server_root  # noqa: F401
from kaggle_local.runner import network_isolation

WRITE_CSV = f'''
import os, pathlib
root = pathlib.Path(os.environ["KAGGLE_KIT_INPUT_ROOT"])
print("inputs:", sorted(p.name for p in root.iterdir()))
print("package says:", (root / "my-package" / "note.txt").read_text())
ids = sorted(p.stem for p in (root / "{SLUG}" / "test").iterdir())
pathlib.Path("submission.csv").write_text("id,label\\n" + "".join(f"{{i}},cat\\n" for i in ids))
'''


def dataset_folder(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "dataset"
    folder.mkdir(exist_ok=True)
    (folder / "note.txt").write_text(text)
    (folder / "dataset-metadata.json").write_text(json.dumps(
        {"id": f"{USER}/my-package", "title": "My package", "licenses": [{"name": "CC0-1.0"}]}))
    return folder


def notebook_folder(tmp_path: Path, source: str, name: str = "kk-test") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, folder / "nb.ipynb")
    (folder / "kernel-metadata.json").write_text(json.dumps(
        {"id": f"{USER}/{name}", "title": name.replace("-", " "), "code_file": "nb.ipynb", "language": "python",
         "kernel_type": "notebook", "enable_internet": False, "dataset_sources": [f"{USER}/my-package"],
         "competition_sources": [SLUG]}))
    return folder


def wait_for(server, name: str, version: int = 1) -> str:
    server.kernels.version(USER, name, version).done.wait(120)
    return server.kernels.version(USER, name, version).status


def test_dataset_create_status_and_versions(server, tmp_path):
    folder = dataset_folder(tmp_path, "one")
    assert run_cli(["kaggle", "datasets", "status", f"{USER}/my-package"], tmp_path).returncode == 1
    got = run_cli(["kaggle", "datasets", "create", "-p", str(folder)], tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert run_cli(["kaggle", "datasets", "status", f"{USER}/my-package"], tmp_path).stdout.strip() == "ready"
    (folder / "note.txt").write_text("two")
    got = run_cli(["kaggle", "datasets", "version", "-p", str(folder), "-m", "second"], tmp_path)
    assert got.returncode == 0, got.stdout + got.stderr
    assert server.kernels.dataset_version(USER, "my-package") == 2
    assert (server.kernels.dataset_folder(USER, "my-package") / "note.txt").read_text() == "two"
    again = run_cli(["kaggle", "datasets", "create", "-p", str(folder)], tmp_path)
    assert "already in use" in again.stdout + again.stderr      # the client checks the slug first


def test_pushed_notebook_runs_offline_and_its_csv_is_scored(server, tmp_path):
    run_cli(["kaggle", "datasets", "create", "-p", str(dataset_folder(tmp_path, "hello"))], tmp_path)
    pushed = run_cli(["kaggle", "kernels", "push", "-p", str(notebook_folder(tmp_path, WRITE_CSV))], tmp_path)
    assert pushed.returncode == 0 and "version 1" in pushed.stdout, pushed.stdout + pushed.stderr
    assert wait_for(server, "kk-test") == "COMPLETE"
    status = run_cli(["kaggle", "kernels", "status", f"{USER}/kk-test"], tmp_path)
    assert "COMPLETE" in status.stdout
    out = tmp_path / "out"
    got = run_cli(["kaggle", "kernels", "output", f"{USER}/kk-test", "-p", str(out)], tmp_path)
    assert got.returncode == 0, got.stderr
    log = "".join(e["data"] for e in json.loads((out / "kk-test.log").read_text()))
    assert f"inputs: ['my-package', '{SLUG}']" in log and "package says: hello" in log
    assert (out / "submission.csv").read_text().count(",cat") == len(TRUTH)
    sub = run_cli(["kaggle", "competitions", "submit", SLUG, "-k", f"{USER}/kk-test", "-v", "1",
                   "-f", "submission.csv", "-m", "code"], tmp_path)
    assert sub.returncode == 0 and "Successfully submitted" in sub.stdout, sub.stdout + sub.stderr
    [record] = server.ledger.submissions(SLUG, USER)
    assert record.description == "code" and record.error == ""
    assert record.public is not None       # scored against solution.csv like an uploaded CSV


def test_a_notebook_that_needs_the_internet_fails_and_cannot_be_submitted(server, tmp_path):
    # the server's own port: reachable from here, but not from the notebook's network namespace
    url = f"{server.url}/_admin/requests"
    assert urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=5).status == 200
    run_cli(["kaggle", "datasets", "create", "-p", str(dataset_folder(tmp_path, "x"))], tmp_path)
    source = ("import urllib.request\nprint('fetching')\n"
              f"urllib.request.build_opener(urllib.request.ProxyHandler({{}})).open({url!r}, timeout=5)\n")
    run_cli(["kaggle", "kernels", "push", "-p", str(notebook_folder(tmp_path, source, "kk-online"))], tmp_path)
    assert wait_for(server, "kk-online") == "ERROR"
    version = server.kernels.version(USER, "kk-online")
    assert version.failure.startswith("URLError:") and "refused" in version.failure.lower()
    assert any("fetching" in e["data"] for e in version.log)
    sub = run_cli(["kaggle", "competitions", "submit", SLUG, "-k", f"{USER}/kk-online", "-v", "1",
                   "-f", "submission.csv", "-m", "x"], tmp_path)
    assert "has not completed" in sub.stdout + sub.stderr
    assert server.ledger.submissions(SLUG, USER) == []


def test_the_runner_isolates_the_network_here():
    """CI runs as root, where `unshare -n` works; the proxy fallback is only for machines without it."""
    assert network_isolation() is not None


def test_unknown_dataset_source_is_refused_before_anything_runs(server, tmp_path):
    got = run_cli(["kaggle", "kernels", "push", "-p", str(notebook_folder(tmp_path, "print(1)"))], tmp_path)
    assert got.returncode == 1 and "my-package not found" in got.stdout + got.stderr
    status = run_cli(["kaggle", "kernels", "status", f"{USER}/kk-test"], tmp_path)
    assert "not found" in status.stdout + status.stderr
