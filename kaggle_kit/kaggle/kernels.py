"""Datasets, notebooks and code submissions through the official client (the calls of a code competition).

A thin layer over :class:`~kaggle_kit.kaggle.client.KaggleClient`: every call goes through its
retries, timeouts, silence and one-line errors. ``dataset_create_new``/``dataset_create_version``
upload a package folder, ``kernels_push`` pushes a notebook folder, ``kernels_status`` and
``kernels_output`` follow its run, ``competition_submit_code`` submits a version.

Example (needs credentials and a reachable server)::

    code = KaggleCode(KaggleClient())
    code.push_dataset(package_folder, notes="run r1")       # -> 1, then 2, ... on each push
    version = code.push_notebook(notebook_folder)
    code.status("me/kk-cifar-10-mini-inference", version)  # -> NotebookState(status='running', ...)

"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaggle_kit.errors import KaggleError
from kaggle_kit.kaggle.answers import one_line, status_of
from kaggle_kit.kaggle.client import KaggleClient, SubmissionRef

__all__ = ["KaggleCode", "NotebookState", "NotebookOutput", "log_lines"]


@dataclass(frozen=True, kw_only=True)
class NotebookState:
    status: str                    # queued, running, complete, error, cancel_requested ...
    failure: str                   # Kaggle's one-line reason when it failed

    @property
    def finished(self) -> bool:
        return self.status in ("complete", "error", "cancel_acknowledged")


@dataclass(frozen=True, kw_only=True)
class NotebookOutput:
    files: list[Path]
    log: list[str]                 # the run's log as text lines (stdout and stderr in order)


def log_lines(text: str) -> list[str]:
    """Kaggle keeps a notebook's log as JSON (``[{"stream_name", "time", "data"}, ...]``); plain text passes."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError:
        return text.splitlines()
    if not isinstance(entries, list):
        return text.splitlines()
    return "".join(str(e.get("data", "")) for e in entries if isinstance(e, dict)).splitlines()


class KaggleCode:
    def __init__(self, client: KaggleClient) -> None:
        self.client = client

    def user(self) -> str:
        """The Kaggle username the client authenticates as (the owner of datasets and notebooks)."""
        user = (self.client.api().config_values or {}).get("username")
        if not user:
            raise KaggleError("the kaggle client knows no username: set KAGGLE_USERNAME or kaggle.json's username")
        return str(user)

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return self.client._call(what, None, fn)
        except ValueError as e:        # the client's own checks (metadata, a failed blob upload)
            raise KaggleError(f"{what}: {one_line(str(e))}") from None

    # -- datasets ---------------------------------------------------------------------------------
    def dataset_exists(self, ref: str) -> bool:
        def status(api: Any) -> bool:
            try:
                api.dataset_status(ref)
                return True
            except Exception as e:
                if status_of(e) == 404:
                    return False
                raise

        return self._call(f"look up dataset {ref}", status)

    def push_dataset(self, folder: Path, *, ref: str, notes: str) -> str:
        """Create the dataset ``ref`` from ``folder``, or a new version of it when it exists. Returns
        what Kaggle said; a refusal raises."""
        if self.dataset_exists(ref):
            result = self._call(f"upload a new version of dataset {ref}",
                                lambda api: api.dataset_create_version(str(folder), notes, quiet=True))
        else:
            result = self._call(f"create dataset {ref}", lambda api: api.dataset_create_new(str(folder), quiet=True))
        error = getattr(result, "error", None)
        if error:
            raise KaggleError(f"dataset {ref}: Kaggle refused it: {one_line(str(error))}")
        return str(getattr(result, "url", "") or ref)

    def dataset_ready(self, ref: str) -> bool:
        status = self._call(f"read the status of dataset {ref}", lambda api: api.dataset_status(ref))
        return str(status).lower() == "ready"

    # -- notebooks --------------------------------------------------------------------------------
    def push_notebook(self, folder: Path, *, timeout_s: int | None = None) -> int:
        """Push (and run) the notebook in ``folder``; its new version number."""
        result = self._call(f"push the notebook in {folder}",
                            lambda api: api.kernels_push(str(folder), timeout=str(timeout_s) if timeout_s else None))
        error = getattr(result, "error", None)
        invalid = [s for name in ("invalid_dataset_sources", "invalid_competition_sources")
                   for s in getattr(result, name, None) or []]
        if error or invalid:
            said = one_line(str(error)) if error else f"unknown sources {', '.join(invalid)}"
            raise KaggleError(f"push of the notebook in {folder} was refused: {said}")
        if not result.version_number:
            raise KaggleError(f"push of the notebook in {folder}: Kaggle returned no version number")
        return int(result.version_number)

    def status(self, kernel: str, version: int) -> NotebookState:
        r = self._call(f"read the status of notebook {kernel} version {version}",
                       lambda api: api.kernels_status(f"{kernel}/{version}"))
        status = getattr(r.status, "name", str(r.status)).lower()
        return NotebookState(status=status, failure=one_line(r.failure_message or ""))

    def output(self, kernel: str, version: int, dest: Path) -> NotebookOutput:
        """Download the version's output files and log into ``dest``."""
        dest.mkdir(parents=True, exist_ok=True)
        files, _ = self._call(f"download the output of notebook {kernel} version {version}",
                              lambda api: api.kernels_output(f"{kernel}/{version}", str(dest), force=True, quiet=True))
        paths = [Path(f) for f in files]
        logs = [p for p in paths if p.suffix == ".log"]
        return NotebookOutput(files=[p for p in paths if p.suffix != ".log"],
                              log=log_lines(logs[0].read_text()) if logs else [])

    def submit(self, slug: str, *, kernel: str, version: int, file_name: str, message: str) -> SubmissionRef:
        r = self._call(f"submit notebook {kernel} version {version} to {slug}",
                       lambda api: api.competition_submit_code(file_name, message, slug, kernel=kernel,
                                                               kernel_version=version, quiet=True))
        if not r.ref:
            raise KaggleError(f"submission of {kernel} version {version} to {slug} failed: "
                              f"{one_line(r.message or 'no submission reference came back')}")
        return SubmissionRef(ref=int(r.ref), message=r.message)
