"""The Kaggle API methods for code competitions: blob uploads, datasets, notebooks and code submissions.

What the official client calls for ``datasets create``/``version``/``status``, ``kernels
push``/``status``/``output`` and ``competitions submit -k <owner>/<notebook> -v <n>``, with the
request and answer fields of ``kagglesdk`` (camelCase keys, enum names as strings). The state lives
in :class:`kaggle_local.kernels.KernelStore`; a code submission is scored like an uploaded CSV,
from the file the notebook version wrote.

Example:
    >>> sorted(name for name in RPCS if name.startswith(KERNELS))
    ['kernels.KernelsApiService/GetKernelSessionStatus', 'kernels.KernelsApiService/ListKernelSessionOutput', 'kernels.KernelsApiService/SaveKernel']
"""
from __future__ import annotations

import json
import urllib.parse
from typing import Any, Mapping

from kaggle_local.errors import ApiError
from kaggle_local.kernels import KernelStore
from kaggle_local.rpc import COMPETITIONS, RPCS, Call, Reply, paged, rpc   # noqa: F401 (RPCS: the doctest)

__all__ = ["BLOBS", "DATASETS", "KERNELS", "KERNEL_BLOBS", "kernel_blob_path"]

BLOBS = "blobs.BlobApiService"
DATASETS = "datasets.DatasetApiService"
KERNELS = "kernels.KernelsApiService"
KERNEL_BLOBS = "_kernels"        # /_blobs/_kernels/<owner>/<slug>/<version>/<file>: a notebook's output


def _store(call: Call) -> KernelStore:
    if call.kernels is None:
        raise ApiError(501, "This server keeps no datasets or notebooks.")
    return call.kernels


def _own(call: Call, owner: str) -> str:
    if not owner or owner != call.user:
        raise ApiError(403, f"User {call.user!r} may not write to {owner or '(no owner)'!r}.")
    return owner


def _tokens(files: Any) -> list[str]:
    return [str(f.get("token") or "") for f in files or [] if isinstance(f, Mapping)]


def _dataset_answer(owner: str, slug: str, version: int) -> dict[str, Any]:
    return {"ref": f"{owner}/{slug}", "url": f"https://www.kaggle.com/datasets/{owner}/{slug}",
            "status": "ok", "versionNumber": version}


def kernel_blob_path(owner: str, slug: str, number: int, name: str) -> str:
    return f"/_blobs/{KERNEL_BLOBS}/{owner}/{slug}/{number}/{urllib.parse.quote(name)}"


def _version_number(label: Any) -> int | None:
    text = str(label or "").lstrip("v")
    if not text:
        return None
    if not text.isdigit():
        raise ApiError(400, f"Invalid version label {label!r}.")
    return int(text)


@rpc(BLOBS, "StartBlobUpload")
def start_blob_upload(call: Call) -> Reply:
    token = _store(call).start_blob(str(call.body.get("name") or ""), int(call.body.get("contentLength") or 0))
    return {"token": token, "createUrl": call.upload_url(token)}


@rpc(DATASETS, "GetDatasetStatus")
def get_dataset_status(call: Call) -> Reply:
    owner, slug = str(call.body.get("ownerSlug") or ""), str(call.body.get("datasetSlug") or "")
    if _store(call).dataset_version(owner, slug) is None:
        raise ApiError(404, f"Dataset {owner}/{slug} not found.")
    return {"status": "READY"}


@rpc(DATASETS, "GetDataset")
def get_dataset(call: Call) -> Reply:
    owner, slug = str(call.body.get("ownerSlug") or ""), str(call.body.get("datasetSlug") or "")
    version = _store(call).dataset_version(owner, slug)
    if version is None:
        raise ApiError(404, f"Dataset {owner}/{slug} not found.")
    return {"ref": f"{owner}/{slug}", "ownerRef": owner, "currentVersionNumber": version}


@rpc(DATASETS, "CreateDataset")
def create_dataset(call: Call) -> Reply:
    owner, slug = _own(call, str(call.body.get("ownerSlug") or "")), str(call.body.get("slug") or "")
    version = _store(call).create_dataset(owner, slug, _tokens(call.body.get("files")),
                                          title=str(call.body.get("title") or ""))
    return _dataset_answer(owner, slug, version)


@rpc(DATASETS, "CreateDatasetVersion")
def create_dataset_version(call: Call) -> Reply:
    owner, slug = _own(call, str(call.body.get("ownerSlug") or "")), str(call.body.get("datasetSlug") or "")
    body = call.body.get("body") or {}
    version = _store(call).create_version(owner, slug, _tokens(body.get("files")))
    return _dataset_answer(owner, slug, version)


@rpc(KERNELS, "SaveKernel")
def save_kernel(call: Call) -> Reply:
    owner, _, slug = str(call.body.get("slug") or "").partition("/")
    _own(call, owner)
    if call.body.get("kernelType") != "notebook" or call.body.get("language") != "python":
        raise ApiError(400, "This server runs Python notebooks only (kernel_type 'notebook', language 'python').")
    text = str(call.body.get("text") or "")
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise ApiError(400, f"The notebook is not valid JSON ({e.msg}).") from None
    competitions = [str(c) for c in call.body.get("competitionDataSources") or []]
    for comp in competitions:
        call.ledger.entered(comp)
    timeout = call.body.get("sessionTimeoutSeconds")
    version = _store(call).push(owner, slug, text=text, datasets=[str(d) for d in call.body.get("datasetDataSources") or []],
                                competitions=competitions, timeout=float(timeout) if timeout else None,
                                run=call.body.get("kernelExecutionType") != "QUICK_SAVE")
    return {"ref": f"/code/{owner}/{slug}", "url": f"https://www.kaggle.com/code/{owner}/{slug}",
            "versionNumber": version.number, "kernelId": abs(hash((owner, slug))) % 10**8}


@rpc(KERNELS, "GetKernelSessionStatus")
def get_kernel_session_status(call: Call) -> Reply:
    version = _store(call).version(str(call.body.get("userName") or ""), str(call.body.get("kernelSlug") or ""),
                                   _version_number(call.body.get("versionLabel")))
    answer = {"status": version.status}
    if version.failure:
        answer["failureMessage"] = version.failure
    return answer


@rpc(KERNELS, "ListKernelSessionOutput")
def list_kernel_session_output(call: Call) -> Reply:
    owner, slug = str(call.body.get("userName") or ""), str(call.body.get("kernelSlug") or "")
    version = _store(call).version(owner, slug, _version_number(call.body.get("versionLabel")))
    page, token = paged(version.outputs(), call.body)
    return {"files": [{"fileName": name, "url": call.blob_url(kernel_blob_path(owner, slug, version.number, name))}
                      for name in page],
            "log": json.dumps(version.log), "nextPageToken": token}


@rpc(COMPETITIONS, "CreateCodeSubmission")
def create_code_submission(call: Call) -> Reply:
    slug = call.slug()
    owner, kernel = str(call.body.get("kernelOwner") or ""), str(call.body.get("kernelSlug") or "")
    version = _store(call).version(owner, kernel, _version_number(call.body.get("kernelVersion")))
    if version.status != "COMPLETE":
        why = f": {version.failure}" if version.failure else ""
        raise ApiError(400, f"Notebook {owner}/{kernel} version {version.number} has not completed "
                            f"({version.status.lower()}{why}); only a completed version can be submitted.")
    name = str(call.body.get("fileName") or "submission.csv")
    output = version.working / name
    if name not in version.outputs():
        raise ApiError(400, f"Notebook {owner}/{kernel} version {version.number} wrote no {name}; "
                            f"its output files: {', '.join(version.outputs()) or 'none'}.")
    record = call.ledger.submit_file(slug, call.user, name, output.read_bytes(),
                                     str(call.body.get("submissionDescription") or ""))
    title = call.ledger.competition(slug).title
    return {"message": f"Successfully submitted {owner}/{kernel} version {version.number} to {title}",
            "ref": record.ref}

