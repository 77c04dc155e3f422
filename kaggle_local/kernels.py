"""Datasets and notebooks pushed to a local Kaggle server, kept on disk, and the runs of those notebooks.

Layout under the server's work folder:

    blobs/<token>                           an uploaded file, until a dataset version takes it
    datasets/<owner>/<slug>/<n>/<files>     dataset version n (1, 2, ...)
    competitions/<slug>/                    a competition's archive, extracted once (a notebook's input)
    kernels/<owner>/<slug>/<n>/             notebook version n: notebook.ipynb, metadata.json,
                                            input/ (links to its sources), working/ (its output),
                                            executed.ipynb and result.json once it ran

Each pushed version runs at once in a background thread (:func:`kaggle_local.runner.run_notebook`):
``input/<dataset-slug>`` links to the newest version of each dataset source, ``input/<slug>`` to each
competition source's data, and ``working/`` is where it writes ``submission.csv``.

Example:
    >>> import tempfile
    >>> store = KernelStore(Path(tempfile.mkdtemp()), competition_data=lambda slug: None)
    >>> blob = store.start_blob("a.txt", 2)
    >>> store.receive_blob(blob, b"hi")
    True
    >>> store.create_dataset("me", "my-dataset", [blob], title="My dataset")
    1
    >>> store.dataset_files("me", "my-dataset")
    ['a.txt']
"""
from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kaggle_local.errors import ApiError

__all__ = ["KernelStore", "KernelVersion"]

DEFAULT_TIMEOUT = 9 * 3600.0      # Kaggle's limit for a notebook session


@dataclass(kw_only=True)
class KernelVersion:
    owner: str
    slug: str
    number: int
    folder: Path
    status: str = "QUEUED"             # QUEUED, RUNNING, COMPLETE, ERROR
    failure: str = ""
    log: list = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def working(self) -> Path:
        return self.folder / "working"

    def outputs(self) -> list[str]:
        """Files the notebook left in its working folder (relative names; hidden folders skipped)."""
        if not self.working.is_dir():
            return []
        return sorted(p.relative_to(self.working).as_posix() for p in self.working.rglob("*")
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.working).parts))


class KernelStore:
    """Thread-safe; ``competition_data(slug)`` gives a served competition's archive (None if unknown)."""

    def __init__(self, root: Path, *, competition_data: Callable[[str], Path | None]) -> None:
        self.root = Path(root)
        self.competition_data = competition_data
        self._lock = threading.RLock()
        self._blobs: dict[str, tuple[str, int]] = {}           # token -> (file name, announced length)
        self._datasets: dict[tuple[str, str], int] = {}         # (owner, slug) -> newest version
        self._kernels: dict[tuple[str, str], list[KernelVersion]] = {}

    # -- blobs ------------------------------------------------------------------------------------
    def start_blob(self, name: str, length: int) -> str:
        token = "blob-" + secrets.token_urlsafe(12)
        with self._lock:
            self._blobs[token] = (Path(name or "file").name, int(length))
        return token

    def receive_blob(self, token: str, data: bytes) -> bool:
        """Keep an uploaded file; False when ``token`` is not a blob upload of this store."""
        with self._lock:
            if token not in self._blobs:
                return False
            name, length = self._blobs[token]
        if length and len(data) != length:
            raise ApiError(400, f"Upload is {len(data)} bytes; {length} were announced.")
        path = self.root / "blobs" / token
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return True

    def blob_state(self, token: str) -> str | None:
        """``complete`` (its bytes are here), ``empty`` (announced, nothing kept yet) or None (unknown)."""
        with self._lock:
            if token not in self._blobs:
                return None
        return "complete" if (self.root / "blobs" / token).is_file() else "empty"

    # -- datasets ---------------------------------------------------------------------------------
    def dataset_version(self, owner: str, slug: str) -> int | None:
        with self._lock:
            return self._datasets.get((owner, slug))

    def create_dataset(self, owner: str, slug: str, tokens: list[str], *, title: str = "") -> int:
        with self._lock:
            if (owner, slug) in self._datasets:
                raise ApiError(409, f"The dataset {owner}/{slug} already exists.")
            return self._add_version(owner, slug, tokens)

    def create_version(self, owner: str, slug: str, tokens: list[str]) -> int:
        with self._lock:
            if (owner, slug) not in self._datasets:
                raise ApiError(404, f"Dataset {owner}/{slug} not found.")
            return self._add_version(owner, slug, tokens)

    def _add_version(self, owner: str, slug: str, tokens: list[str]) -> int:
        files = []
        for token in tokens:
            if token not in self._blobs or not (self.root / "blobs" / token).is_file():
                raise ApiError(400, f"Unknown or incomplete upload token {token!r}.")
            files.append((token, self._blobs[token][0]))
        number = self._datasets.get((owner, slug), 0) + 1
        folder = self.root / "datasets" / owner / slug / str(number)
        staging = folder.with_name(f".{number}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for token, name in files:
            shutil.move(self.root / "blobs" / token, staging / name)
            del self._blobs[token]
        staging.rename(folder)           # a version is there whole or not at all
        self._datasets[(owner, slug)] = number
        return number

    def dataset_folder(self, owner: str, slug: str) -> Path:
        number = self.dataset_version(owner, slug)
        if number is None:
            raise ApiError(404, f"Dataset {owner}/{slug} not found.")
        return self.root / "datasets" / owner / slug / str(number)

    def dataset_files(self, owner: str, slug: str) -> list[str]:
        return sorted(p.name for p in self.dataset_folder(owner, slug).iterdir())

    # -- kernels ----------------------------------------------------------------------------------
    def push(self, owner: str, slug: str, *, text: str, datasets: list[str], competitions: list[str],
             timeout: float | None = None, run: bool = True) -> KernelVersion:
        """Save a new version and (unless ``run`` is false) start running it."""
        sources = []
        for ref in datasets:
            d_owner, _, d_slug = ref.partition("/")
            sources.append((d_slug, self.dataset_folder(d_owner, d_slug)))
        for comp in competitions:
            sources.append((comp, self._competition_folder(comp)))
        with self._lock:
            versions = self._kernels.setdefault((owner, slug), [])
            number = len(versions) + 1
            version = KernelVersion(owner=owner, slug=slug, number=number,
                                    folder=self.root / "kernels" / owner / slug / str(number))
            versions.append(version)
        inputs = version.folder / "input"
        inputs.mkdir(parents=True)
        for name, target in sources:
            (inputs / name).symlink_to(target, target_is_directory=True)
        (version.folder / "notebook.ipynb").write_text(text)
        (version.folder / "metadata.json").write_text(json.dumps({"datasets": datasets, "competitions": competitions}))
        if run:
            threading.Thread(target=self._run, args=(version, timeout or DEFAULT_TIMEOUT),
                             name=f"kernel-{slug}-{number}", daemon=True).start()
        else:
            version.status = "COMPLETE"
            version.done.set()
        return version

    def _run(self, version: KernelVersion, timeout: float) -> None:
        from kaggle_local.runner import run_notebook

        version.status = "RUNNING"
        try:
            result = run_notebook(version.folder / "notebook.ipynb", input_root=version.folder / "input",
                                  working=version.working, timeout=timeout)
            version.log, version.failure = result.log, result.failure
            version.status = "COMPLETE" if result.status == "complete" else "ERROR"
        except Exception as e:          # the server must answer "error", not hang in RUNNING
            version.status, version.failure = "ERROR", f"the local server could not run the notebook: {e}"
        finally:
            version.done.set()

    def version(self, owner: str, slug: str, number: int | None = None) -> KernelVersion:
        with self._lock:
            versions = self._kernels.get((owner, slug))
        if not versions:
            raise ApiError(404, f"Notebook {owner}/{slug} not found.")
        if number is None:
            return versions[-1]
        if not 1 <= number <= len(versions):
            raise ApiError(404, f"Notebook {owner}/{slug} has no version {number}.")
        return versions[number - 1]

    def wait(self, timeout: float = 600.0) -> None:
        """Block until every run started so far has finished (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            versions = [v for vs in self._kernels.values() for v in vs]
        for v in versions:
            v.done.wait(max(0.0, deadline - time.monotonic()))

    def _competition_folder(self, slug: str) -> Path:
        archive = self.competition_data(slug)
        if archive is None:
            raise ApiError(404, f"Competition '{slug}' not found.")
        folder = self.root / "competitions" / slug
        with self._lock:
            if not folder.is_dir():
                staging = folder.with_name(f".{slug}.partial")
                shutil.rmtree(staging, ignore_errors=True)
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(staging)
                staging.rename(folder)
        return folder
