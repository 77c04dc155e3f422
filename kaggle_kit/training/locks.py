"""Lock files in a run folder, so several processes (or machines sharing the folder) train one run.

``fold_<k>.lock`` says who trains fold ``k``: it is created with ``O_CREAT | O_EXCL`` (atomic on a
local disk and on NFS v3+) and holds the holder's host, pid, start time and ``owner``. A second start
of the same fold is **refused** with :class:`FoldBusy`, one line naming the holder. A lock is taken
over only when its holder is known to be gone: it ran on this host and its pid is dead, or the
claimant says it is the same ``owner`` (a Ray task retried after its worker died: Ray starts the
retry only once the first attempt is dead, maybe on another node). ``run.lock`` is held for the
milliseconds it takes to re-read, merge and write ``run.json``; a claimant waits for it.

Example:
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> with fold_lock(run, 0) as taken:
    ...     taken is None                       # nobody held it before
    ...     try:
    ...         with fold_lock(run, 0):
    ...             pass
    ...     except FoldBusy as e:
    ...         "fold 1 is being trained by pid" in str(e)
    True
    True
    >>> (run / "fold_0.lock").exists()
    False
"""
from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from kaggle_kit.errors import KitError

__all__ = ["FoldBusy", "Holder", "fold_lock", "run_lock", "read_holder"]


class FoldBusy(KitError):
    """Another live process holds the fold (or run) lock."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: host, pid, when (UTC, ISO) and an optional ``owner`` token."""

    host: str
    pid: int
    since: str
    owner: str = ""

    @classmethod
    def me(cls, owner: str = "") -> "Holder":
        return cls(host=socket.gethostname(), pid=os.getpid(),
                   since=datetime.now(timezone.utc).isoformat(timespec="seconds"), owner=owner)

    def alive(self) -> bool | None:
        """True/False on this host; None elsewhere (a pid on another machine cannot be checked)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:        # someone else's live process
            return True
        return True

    def text(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since}"


def read_holder(path: Path) -> Holder | None:
    """The holder written in lock file ``path``; None if there is none (or it is half written)."""
    try:
        data = json.loads(Path(path).read_text())
        return Holder(**{k: data[k] for k in ("host", "pid", "since")}, owner=data.get("owner", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _create(path: Path, holder: Holder) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(holder), f)
        f.flush()
        os.fsync(f.fileno())
    return True


def _release(path: Path, holder: Holder) -> None:
    if read_holder(path) == holder:  # never remove a lock somebody took over from us
        path.unlink(missing_ok=True)


@contextmanager
def fold_lock(run_dir: Path, k: int, *, owner: str = "") -> Iterator[Holder | None]:
    """Hold ``run_dir/fold_<k>.lock`` while training fold ``k``; yields the gone holder it took over
    (None if the fold was free). Raises :class:`FoldBusy` while another live process holds it."""
    path = Path(run_dir) / f"fold_{k}.lock"
    me = Holder.me(owner)
    taken: Holder | None = None
    while not _create(path, me):
        old = read_holder(path)
        if old is None and path.exists() and time.time() - _mtime(path) < 5:
            time.sleep(0.2)            # being written this instant
            continue
        gone = old is None or old.alive() is False or (bool(owner) and old.owner == owner and old.pid != me.pid)
        if not gone:
            raise FoldBusy(f"{path}: fold {k + 1} is being trained by {old.text()}; the same fold is never "
                           f"trained twice at once (delete the lock only if that process is gone)")
        path.unlink(missing_ok=True)   # its holder is gone: take it over
        taken = old
    try:
        yield taken
    finally:
        _release(path, me)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@contextmanager
def run_lock(run_dir: Path, *, timeout: float = 60.0) -> Iterator[None]:
    """Hold ``run_dir/run.lock`` for a short read-merge-write of ``run.json``; waits for another
    holder up to ``timeout`` s. A lock older than ``timeout`` whose holder is gone is broken."""
    path = Path(run_dir) / "run.lock"
    me = Holder.me()
    deadline = time.monotonic() + timeout
    while not _create(path, me):
        old = read_holder(path)
        stale = old is not None and old.alive() is False
        if stale or time.time() - _mtime(path) > timeout:
            path.unlink(missing_ok=True)
            continue
        if time.monotonic() > deadline:
            raise FoldBusy(f"{path}: run.json has been locked by {old.text() if old else 'someone'} "
                           f"for over {timeout:.0f}s; delete the lock if that process is gone")
        time.sleep(0.05)
    try:
        yield
    finally:
        _release(path, me)
