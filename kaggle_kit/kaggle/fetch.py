"""Fetch a competition's data into ``data/<slug>/``, all or nothing.

The archive is downloaded into ``data/.<slug>.download/`` (the official client resumes a partial
file it left there, marked ``.kaggle-partial``), checked (``zipfile.testzip``), checked again for
members that would land outside the target (zip-slip: ``../x``, absolute paths), extracted into a
temporary folder beside ``data/<slug>`` and renamed into place with a completion marker
``.kaggle-kit-fetched.json``. An interrupted fetch therefore never leaves a folder that looks
complete; running it again when the marker is there does nothing (``force`` re-downloads) but
clear what an interrupted ``--force`` left. A refused archive (damaged, or with members outside the
target) is deleted with its download folder, and the extracted folder gets the permissions the
umask gives a new folder (``mkdtemp``'s 0700 is not kept).
Inside a Kaggle notebook (``/kaggle/input/<slug>`` exists) the data is used in place.

:func:`fetch_files` downloads single files instead (``fetch --file NAME``), for an archive too large
to fetch whole: each lands in ``data/<slug>/<NAME>`` by a rename, listed in ``.kaggle-kit-files.json``
(a later whole fetch replaces such a folder; it does not count as complete).

Example:
    >>> import tempfile, zipfile
    >>> from pathlib import Path
    >>> archive = Path(tempfile.mkdtemp()) / "x.zip"
    >>> with zipfile.ZipFile(archive, "w") as z:
    ...     z.writestr("../evil.txt", "boo")
    >>> try:
    ...     check_members(archive, Path(tempfile.mkdtemp()))
    ... except KitError as e:
    ...     print(str(e).split(": ", 1)[1])
    member '../evil.txt' would be written outside the target folder; refusing to extract
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal, Protocol

from kaggle_kit import __version__
from kaggle_kit.atomic import atomic_write_json
from kaggle_kit.errors import DataError, DiskFullError, KitError
from kaggle_kit.project import Project

__all__ = ["MARKER", "FILES_MARKER", "Downloader", "FileDownloader", "FetchResult", "marker_path", "fetch",
           "fetch_files", "check_archive", "check_members", "extract_into_place", "sha256_of"]

MARKER = ".kaggle-kit-fetched.json"
FILES_MARKER = ".kaggle-kit-files.json"     # the single files `fetch --file` downloaded (not complete data)


class Downloader(Protocol):
    def download(self, slug: str, dest: Path, force: bool = False) -> Path: ...


class FileDownloader(Protocol):
    def files(self, slug: str) -> dict[str, int]: ...
    def download_file(self, slug: str, name: str, dest: Path, force: bool = False) -> Path: ...


@dataclass(frozen=True, kw_only=True)
class FetchResult:
    slug: str
    path: Path
    action: Literal["downloaded", "present", "in_place", "files"]
    files: int = 0
    names: tuple[str, ...] = ()           # fetch_files: the files downloaded now (the others were there)
    archive_bytes: int | None = None
    sha256: str | None = None


def marker_path(folder: Path) -> Path:
    return folder / MARKER


def fetch(project: Project, competition_slug: str, *, client: Downloader, force: bool = False) -> FetchResult:
    """Make ``data/<slug>`` complete (see the module docstring) and set it as the project default."""
    slug = competition_slug
    target, mounted = _target(project, slug)
    if mounted is not None:
        return mounted
    done = marker_path(target)
    if target.is_dir() and not done.is_file() and not (target / FILES_MARKER).is_file() and not force:
        raise KitError(f"{target}: exists but was not fetched by kaggle-kit (no {MARKER}); "
                       "move it away, or pass --force to replace it")
    downloads = target.parent / f".{slug}.download"
    if done.is_file() and not force:
        shutil.rmtree(downloads, ignore_errors=True)   # what an interrupted --force left: the data is complete
        project.set_default(slug)
        return _result_from_marker(slug, target, "present")

    archive = client.download(slug, downloads, force=force)
    try:
        check_archive(archive)
        check_members(archive, target)
    except KitError:
        shutil.rmtree(downloads, ignore_errors=True)   # a refused archive is never kept, nor its folder
        raise
    size, sha = archive.stat().st_size, sha256_of(archive)
    files = extract_into_place(archive, target, marker={
        "slug": slug, "archive": archive.name, "bytes": size, "sha256": sha,
        "fetched": datetime.now(timezone.utc).isoformat(timespec="seconds"), "kaggle_kit": __version__})
    shutil.rmtree(downloads, ignore_errors=True)
    project.set_default(slug)
    return FetchResult(slug=slug, path=target, action="downloaded", files=files, archive_bytes=size, sha256=sha)


def _target(project: Project, slug: str) -> tuple[Path, FetchResult | None]:
    """``data/<slug>``, and the result to return at once when a Kaggle notebook mounts the data."""
    if not slug or slug != Path(slug).name or slug.startswith("."):
        raise KitError(f"{slug!r} is not a competition slug")
    data_root = project.data_root(slug)
    target = project.root / "data" / slug
    if data_root != target:                       # a Kaggle notebook: the data is mounted read-only
        project.set_default(slug)
        return target, FetchResult(slug=slug, path=data_root, action="in_place")
    return target, None


def fetch_files(project: Project, competition_slug: str, names: list[str], *, client: FileDownloader,
                force: bool = False) -> FetchResult:
    """Download the data files ``names`` into ``data/<slug>/`` (present ones are kept unless ``force``)."""
    from kaggle_kit.registry import unknown_message

    slug = competition_slug
    target, mounted = _target(project, slug)
    if mounted is not None:
        return mounted
    wanted = [n for n in dict.fromkeys(names) if force or not (target / n).is_file()]
    if wanted:
        known = client.files(slug)
        for name in wanted:
            if name not in known:
                close = unknown_message(f"file of {slug}", name, sorted(known)).split(" Known:")[0]
                raise KitError(f"{close} (see `kaggle competitions files {slug}`)")
            if not _inside(name, Path(os.path.abspath(target))):
                raise KitError(f"{slug}: file name {name!r} would be written outside {target}; refusing it")
    downloads = target.parent / f".{slug}.files-download"     # not the archive's folder: its partial is kept
    listed = target / FILES_MARKER
    try:
        record = json.loads(listed.read_text()) if listed.is_file() else {}
    except (OSError, json.JSONDecodeError):
        record = {}
    for name in wanted:
        got = client.download_file(slug, name, downloads, force=force)
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(got, target / name)
        record[name] = {"bytes": (target / name).stat().st_size,
                        "fetched": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if not marker_path(target).is_file():
            atomic_write_json(listed, record)
    shutil.rmtree(downloads, ignore_errors=True)
    project.set_default(slug)
    return FetchResult(slug=slug, path=target, action="files", files=len(dict.fromkeys(names)), names=tuple(wanted))


def check_archive(archive: Path) -> None:
    """Raise :class:`DataError` (and delete the archive, so it is never used) unless it reads cleanly."""
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        archive.unlink(missing_ok=True)
        raise DataError(f"{archive}: not a readable zip archive ({e}); deleted it, run fetch again") from None
    if bad is not None:
        archive.unlink(missing_ok=True)
        raise DataError(f"{archive}: member {bad!r} is damaged (CRC mismatch); deleted it, run fetch again")


def check_members(archive: Path, target: Path) -> None:
    """Refuse the whole archive if any member would be written outside ``target`` (zip-slip)."""
    base = Path(os.path.abspath(target))
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            if not _inside(name, base):
                raise KitError(f"{archive}: member {name!r} would be written outside the target folder; "
                               "refusing to extract")


def _inside(name: str, base: Path) -> bool:
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or name.startswith(("/", "\\")):
        return False
    if ".." in posix.parts or ".." in windows.parts:
        return False
    resolved = Path(os.path.abspath(base / name))
    return resolved == base or base in resolved.parents


def extract_into_place(archive: Path, target: Path, marker: dict) -> int:
    """Extract into a temporary folder beside ``target``, write the marker, then rename it into place."""
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    for stale in [*parent.glob(f".{target.name}.*.extracting"), *parent.glob(f".{target.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)        # left by an interrupted fetch
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extracting", dir=parent))
    try:
        staging.chmod(0o777 & ~current_umask())   # as a new folder would be, not mkdtemp's private 0700
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            zf.extractall(staging)
        atomic_write_json(marker_path(staging), {**marker, "files": len(members)})
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        if e.errno == errno.ENOSPC:
            raise DiskFullError(f"{target}: disk full while extracting {archive.name}; nothing was changed") from None
        raise KitError(f"{target}: could not extract {archive.name}: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = parent / f".{target.name}.old-{os.getpid()}" if target.exists() else None
    if old is not None:
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return len(members)


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _result_from_marker(slug: str, target: Path, action: Literal["present"]) -> FetchResult:
    try:
        info = json.loads(marker_path(target).read_text())
    except (OSError, json.JSONDecodeError):
        info = {}
    return FetchResult(slug=slug, path=target, action=action, files=int(info.get("files", 0)),
                       archive_bytes=info.get("bytes"), sha256=info.get("sha256"))
