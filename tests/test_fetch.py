"""fetch: the unmodified official client downloads from the local server; the kit checks and extracts
all or nothing. Every failure leaves no data folder that looks complete and nothing outside it."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from kaggle_helpers import (KEY, SLUG, add_competition, client, names, project, run_cli,  # noqa: F401
                            server, server_root, serving, sleeps, tiny_members)
from kaggle_kit.errors import DataError, KaggleError, KitError
from kaggle_kit.kaggle.fetch import FILES_MARKER, MARKER, fetch, fetch_files
from kaggle_kit.kaggle.client import KaggleClient


def data(project, slug: str = SLUG) -> Path:
    return project.root / "data" / slug


def leftovers(project) -> list[str]:
    """Temporary things fetch may leave under data/ (a download in progress is allowed separately)."""
    folder = project.root / "data"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and not p.name.endswith(".download")) \
        if folder.is_dir() else []


def assert_complete(project, archive: Path, slug: str = SLUG) -> None:
    target = data(project, slug)
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            assert (target / name).read_bytes() == zf.read(name), name
    marker = json.loads((target / MARKER).read_text())
    assert marker["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert marker["bytes"] == archive.stat().st_size and marker["files"] == len(zipfile.ZipFile(archive).namelist())
    assert leftovers(project) == [] and not (target.parent / f".{slug}.download").exists()


def test_fetch_extracts_marks_and_sets_the_default(project, client, server, server_root):
    result = fetch(project, SLUG, client=client)
    assert (result.action, result.path, result.files) == ("downloaded", data(project), len(tiny_members()))
    assert_complete(project, server_root / SLUG / f"{SLUG}.zip")
    assert project.default_slug() == SLUG
    assert names(server) == ["DownloadDataFiles", "download"]


def test_fetch_again_does_nothing_and_force_downloads_again(project, client, server, server_root):
    fetch(project, SLUG, client=client)
    stamp = (data(project) / "trainLabels.csv").stat().st_mtime_ns
    before = len(server.requests())
    again = fetch(project, SLUG, client=client)
    assert again.action == "present" and len(server.requests()) == before
    assert (data(project) / "trainLabels.csv").stat().st_mtime_ns == stamp

    (data(project) / "trainLabels.csv").write_text("tampered")
    forced = fetch(project, SLUG, client=client, force=True)
    assert forced.action == "downloaded" and names(server)[before:] == ["DownloadDataFiles", "download"]
    assert_complete(project, server_root / SLUG / f"{SLUG}.zip")


@pytest.mark.parametrize("member", ["../../evil.txt", "ABSOLUTE", "a/../../evil.txt", "..\\..\\evil.txt"])
def test_zip_slip_is_refused_and_nothing_is_written(project, tmp_path, monkeypatch, member):
    outside = tmp_path / "outside" / "evil.txt"
    member = str(outside) if member == "ABSOLUTE" else member
    root = tmp_path / "served"
    add_competition(root, "evil", tiny_members({member: b"pwned"}))
    with serving(root, project, tmp_path / "home", monkeypatch):
        with pytest.raises(KitError) as err:
            fetch(project, "evil", client=KaggleClient())
    assert f"member {member!r} would be written outside the target folder; refusing to extract" in str(err.value)
    assert not data(project, "evil").exists() and leftovers(project) == []
    assert not outside.exists() and not [p for p in tmp_path.rglob("evil.txt")]
    assert project.default_slug() is None
    assert not (project.root / "data" / ".evil.download").exists()     # the hostile archive is not kept


def test_damaged_archive_is_deleted_never_used(project, tmp_path, monkeypatch):
    root = tmp_path / "served"
    archive = add_competition(root, "damaged", tiny_members())
    raw = bytearray(archive.read_bytes())
    at = raw.index(b"id,label\n1,cat")             # inside trainLabels.csv's stored bytes
    raw[at + 3] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with serving(root, project, tmp_path / "home", monkeypatch):
        with pytest.raises(DataError, match=r"member 'trainLabels.csv' is damaged \(CRC mismatch\); deleted it"):
            fetch(project, "damaged", client=KaggleClient())
    assert not data(project, "damaged").exists() and leftovers(project) == []
    assert not (project.root / "data" / ".damaged.download").exists()  # no empty folder either


def test_dropped_download_is_resumed_by_the_client(project, client, server, server_root):
    server.inject("download", drop=True)
    fetch(project, SLUG, client=client)
    assert [r["status"] for r in server.requests() if r["name"] == "download"] == [200, "dropped", 206]
    assert_complete(project, server_root / SLUG / f"{SLUG}.zip")


def big_competition(tmp_path: Path) -> tuple[Path, Path]:
    """A 2.5 MB archive: the client writes 1 MiB chunks, so a cut after 1.6 MB leaves a partial file."""
    root = tmp_path / "served"
    return root, add_competition(root, "big", tiny_members({"blob.bin": os.urandom(2_500_000)}))


def test_download_that_keeps_breaking_is_an_error_and_the_partial_is_resumed_later(project, tmp_path, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)   # skip the client's own 2-60 s pauses between retries
    root, archive = big_competition(tmp_path)
    partial = project.root / "data" / ".big.download" / "big.zip"
    with serving(root, project, tmp_path / "home", monkeypatch) as srv:
        srv.inject("download", drop=True, drop_after=1_600_000)
        srv.inject("download", drop=True, drop_after=0, times=5)          # every retry the client makes
        with pytest.raises(KaggleError) as err:
            fetch(project, "big", client=KaggleClient())
        assert str(err.value) == (f"download of big was interrupted (the connection broke off); {1 << 20} bytes "
                                  f"are kept in {partial} and the next fetch resumes them")
        assert not data(project, "big").exists() and leftovers(project) == [] and project.default_slug() is None
        fetch(project, "big", client=KaggleClient())
        assert srv.requests()[-1]["range"] == f"bytes={1 << 20}-"
    assert_complete(project, archive, "big")


def test_killed_fetch_leaves_no_data_folder_and_the_next_one_resumes(project, tmp_path, monkeypatch):
    root, archive = big_competition(tmp_path)
    partial = project.root / "data" / ".big.download" / "big.zip"
    with serving(root, project, tmp_path / "home", monkeypatch) as srv:
        srv.inject("download", drop=True, drop_after=1_600_000, stall=30)
        proc = subprocess.Popen([sys.executable, "-c", "import sys; from kaggle_kit.cli import main; sys.exit(main())",
                                 "fetch", "big"], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not (partial.is_file() and partial.stat().st_size >= 1 << 20) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        have = partial.stat().st_size
        assert have >= 1 << 20 and partial.with_name("big.zip.kaggle-partial").is_file()
        assert not data(project, "big").exists() and project.default_slug() is None

        result = fetch(project, "big", client=KaggleClient())
        assert result.action == "downloaded"
        assert srv.requests()[-1] == {"method": "GET", "name": "download", "status": 206, "range": f"bytes={have}-"}
    assert_complete(project, archive, "big")


def test_partial_of_another_version_is_discarded(project, client, server, server_root):
    stale = project.root / "data" / f".{SLUG}.download" / f"{SLUG}.zip"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"PK old bytes of another version")
    stale.with_name(f"{SLUG}.zip.kaggle-partial").write_text(json.dumps({"validator": '"old"', "size": 99999}))
    fetch(project, SLUG, client=client)
    assert [r["range"] for r in server.requests() if r["name"] == "download"] == [None]
    assert_complete(project, server_root / SLUG / f"{SLUG}.zip")


def test_stale_extraction_folder_is_cleaned_up(project, client, server, server_root):
    stale = project.root / "data" / f".{SLUG}.x1y2.extracting"
    (stale / "train").mkdir(parents=True)
    fetch(project, SLUG, client=client)
    assert not stale.exists()
    assert_complete(project, server_root / SLUG / f"{SLUG}.zip")


def test_inside_a_kaggle_notebook_the_data_is_used_in_place(project, client, server, tmp_path, monkeypatch):
    mounted = tmp_path / "kaggle" / "input"
    (mounted / SLUG).mkdir(parents=True)
    monkeypatch.setenv("KAGGLE_KIT_KAGGLE_ROOT", str(tmp_path / "kaggle"))
    result = fetch(project, SLUG, client=client)
    assert (result.action, result.path) == ("in_place", mounted / SLUG)
    assert server.requests() == [] and not (project.root / "data").exists()
    assert project.default_slug() == SLUG


def test_a_folder_not_fetched_by_the_kit_is_kept_unless_forced(project, client, server, server_root):
    mine = data(project) / "notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    with pytest.raises(KitError, match=rf"{data(project)}: exists but was not fetched by kaggle-kit"):
        fetch(project, SLUG, client=client)
    assert mine.read_text() == "mine" and server.requests() == []
    fetch(project, SLUG, client=client, force=True)
    assert not mine.exists()
    assert_complete(project, server_root / SLUG / f"{SLUG}.zip")


@pytest.mark.parametrize("slug, setup, expected", [
    (SLUG, {"env": ("KAGGLE_KEY", "bad-key-1234")}, "Kaggle rejected the credentials for user 'testuser' (401)"),
    (SLUG, {"rules": False}, f"accept the competition's rules at https://www.kaggle.com/competitions/{SLUG}/rules"),
    ("tiny-petz", {}, "no competition 'tiny-petz' on Kaggle (404); did you mean tiny-pets?"),
    (SLUG, {"fault": ("DownloadDataFiles", 500)}, "Kaggle answered 500 (Injected fault: HTTP 500.) 4 time(s)"),
    (SLUG, {"fault": ("download", 503)}, "Kaggle answered 503 (Injected fault: HTTP 503.) 4 time(s)"),
])
def test_fetch_errors_are_one_line_and_leave_nothing(project, client, server, monkeypatch, slug, setup, expected):
    if "env" in setup:
        monkeypatch.setenv(*setup["env"])
    if "rules" in setup:
        server.configure(SLUG, rules_accepted=setup["rules"])
    if "fault" in setup:
        server.inject(setup["fault"][0], status=setup["fault"][1], times=10)
    with pytest.raises(KaggleError) as err:
        fetch(project, slug, client=client)
    message = str(err.value)
    assert message.startswith(f"download {slug}: ") and expected in message and "\n" not in message
    assert "bad-key-1234" not in message and KEY not in message
    assert not (project.root / "data").exists() and project.default_slug() is None


def test_429_on_download_is_retried_after_retry_after(project, client, server, server_root, sleeps):
    server.inject("DownloadDataFiles", status=429, retry_after=12)
    fetch(project, SLUG, client=client)
    assert sleeps == [12.0]
    assert_complete(project, server_root / SLUG / f"{SLUG}.zip")


def test_fetch_command(project, server, tmp_path):
    first = run_cli(["fetch", SLUG], tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"{len(tiny_members())} files" in first.stdout and "default competition: tiny-pets" in first.stdout
    again = run_cli(["fetch"], tmp_path)             # the default competition now
    assert again.returncode == 0 and "already complete" in again.stdout
    missing = run_cli(["fetch", "tiny-petz"], tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == ("error: download tiny-petz: no competition 'tiny-petz' on Kaggle (404); "
                                      "did you mean tiny-pets?")


def test_data_is_complete_means_no_partial_download_is_left(project, tmp_path, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    root, archive = big_competition(tmp_path)
    downloads = project.root / "data" / ".big.download"
    with serving(root, project, tmp_path / "home", monkeypatch) as srv:
        fetch(project, "big", client=KaggleClient())
        srv.inject("download", drop=True, drop_after=1_600_000)
        srv.inject("download", drop=True, drop_after=0, times=5)
        with pytest.raises(KaggleError, match="was interrupted"):
            fetch(project, "big", client=KaggleClient(), force=True)       # an interrupted re-download
        assert (downloads / "big.zip").is_file()
        again = fetch(project, "big", client=KaggleClient())
    assert again.action == "present"
    assert not downloads.exists()
    assert_complete(project, archive, "big")


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_extracted_folders_follow_the_umask(project, client, server, umask):
    old = os.umask(umask)
    try:
        fetch(project, SLUG, client=client)
    finally:
        os.umask(old)
    folders = [data(project), *[p for p in data(project).rglob("*") if p.is_dir()]]
    assert len(folders) > 1
    assert {oct(p.stat().st_mode & 0o777) for p in folders} == {oct(0o777 & ~umask)}


# -- fetch --file: single files, for archives too large to fetch whole ----------------------------------
def test_fetch_files_downloads_only_the_named_files(project, client, server, server_root):
    members = tiny_members()
    wanted = ["sampleSubmission.csv", "train/1.png"]
    result = fetch_files(project, SLUG, wanted, client=client)
    assert (result.action, result.path, result.names) == ("files", data(project), tuple(wanted))
    assert sorted(p.relative_to(data(project)).as_posix() for p in data(project).rglob("*") if p.is_file()) == \
        sorted([*wanted, FILES_MARKER])
    for name in wanted:
        assert (data(project) / name).read_bytes() == members[name]
    assert sorted(json.loads((data(project) / FILES_MARKER).read_text())) == sorted(wanted)
    assert names(server) == ["ListDataFiles", "DownloadDataFile", "download", "DownloadDataFile", "download"]
    assert leftovers(project) == [] and project.default_slug() == SLUG

    before = len(server.requests())
    again = fetch_files(project, SLUG, wanted, client=client)          # present: kept, nothing asked
    assert (again.names, again.files) == ((), 2) and len(server.requests()) == before
    whole = fetch(project, SLUG, client=client)                        # the whole archive replaces the folder
    assert whole.action == "downloaded" and not (data(project) / FILES_MARKER).exists()
    assert_complete(project, server_root / SLUG / f"{SLUG}.zip")


def test_fetch_files_refuses_an_unknown_name_with_the_closest(project, client, server):
    with pytest.raises(KitError, match=r"unknown file of tiny-pets 'trainLabel\.csv'; did you mean trainLabels\.csv\?"):
        fetch_files(project, SLUG, ["trainLabel.csv"], client=client)
    assert names(server) == ["ListDataFiles"] and not data(project).exists()


def test_fetch_file_command(project, server, tmp_path):
    done = run_cli(["fetch", SLUG, "--file", "trainLabels.csv"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{SLUG}: 1 file(s) downloaded into {data(project)}: trainLabels.csv" in done.stdout.replace("\n", "")
    assert (data(project) / "trainLabels.csv").read_bytes() == tiny_members()["trainLabels.csv"]
