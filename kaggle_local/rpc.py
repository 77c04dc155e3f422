"""The Kaggle API methods the official client calls for fetch, submit, status and leaderboard.

(Datasets, notebooks and code submissions are in :mod:`kaggle_local.kernels_rpc`, registered here too.)

Each method is registered under ``<service>/<Method>`` (the path after ``/api/v1/``), takes the
decoded JSON body (camelCase keys; fields at their default are absent) and returns a JSON-able
dict, a :class:`Redirect` (downloads) or a :class:`Payload` (a file sent as is). Refusals raise
:class:`~kaggle_local.ledger.ApiError`. Field names and value formats follow
``../shared/notes/kaggle-api.md`` (beside the repository): camelCase keys, enum names as strings, ISO dates, scores as strings.

Example:
    >>> sorted(name.split("/")[1] for name in RPCS if name.startswith(COMPETITIONS))[:3]
    ['CreateCodeSubmission', 'CreateSubmission', 'DownloadDataFile']
"""
from __future__ import annotations

import csv
import io
import urllib.parse
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from kaggle_local.catalogue import ServedCompetition
from kaggle_local.errors import ApiError, ServerError
from kaggle_local.ledger import Ledger, format_score, iso

__all__ = ["COMPETITIONS", "OAUTH", "RPCS", "Call", "Payload", "Redirect", "Reply", "Rpc", "paged", "rpc"]

COMPETITIONS = "competitions.CompetitionApiService"
OAUTH = "security.OAuthService"
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class Payload:
    data: bytes
    content_type: str


@dataclass(frozen=True, kw_only=True)
class Call:
    ledger: Ledger
    user: str | None                          # None only for methods that need no credentials
    body: Mapping[str, Any]
    blob_url: Callable[[str], str]            # a path like /_blobs/<slug>/<file> -> signed absolute URL
    upload_url: Callable[[str], str]          # an upload token -> absolute URL to PUT the file to
    token_user: Callable[[str], str | None]   # a bearer token -> its user, or None
    kernels: Any = None                       # the KernelStore of datasets and notebooks (kaggle_local.kernels)

    def slug(self) -> str:
        slug = str(self.body.get("competitionName") or "")
        if not slug:
            raise ApiError(400, "competitionName is required.")
        return slug


Reply = Mapping[str, Any] | Redirect | Payload


@dataclass(frozen=True)
class Rpc:
    fn: Callable[[Call], Reply]
    needs_user: bool


RPCS: dict[str, Rpc] = {}        # the route table: "<service>/<Method>" -> its handler


def rpc(service: str, method: str, needs_user: bool = True) -> Callable[[Callable[[Call], Reply]], Callable]:
    """Register the decorated function as the handler of ``<service>/<method>``."""
    def add(fn: Callable[[Call], Reply]) -> Callable[[Call], Reply]:
        name = f"{service}/{method}"
        if name in RPCS:
            raise ServerError(f"Kaggle API method {name} is registered twice")
        RPCS[name] = Rpc(fn, needs_user)
        return fn

    return add


def paged(items: Sequence[Any], body: Mapping[str, Any], default_size: int = DEFAULT_PAGE_SIZE) -> tuple[list, str]:
    """One page of ``items`` by ``pageToken`` (an offset) or ``page`` (1-based); ``""`` = last page."""
    size = max(1, int(body.get("pageSize") or default_size))
    token = str(body.get("pageToken") or "")
    if token:
        if not token.isdigit():
            raise ApiError(400, f"Invalid page token {token!r}.")
        start = int(token)
    else:
        start = (max(1, int(body.get("page") or 1)) - 1) * size
    end = start + size
    return list(items[start:end]), (str(end) if end < len(items) else "")


def competition_json(call: Call, comp: ServedCompetition) -> dict[str, Any]:
    rank = call.ledger.rank(comp.slug, call.user) if call.user else None
    data = {
        "id": comp.id, "ref": comp.url, "title": comp.title, "url": comp.url,
        "category": comp.category, "reward": comp.reward, "deadline": iso(comp.deadline),
        "teamCount": call.ledger.team_count(comp.slug),
        "userHasEntered": bool(call.user and call.ledger.submissions(comp.slug, call.user)),
        "maxDailySubmissions": comp.daily_limit,
        "evaluationMetric": comp.metric,
    }
    if rank is not None:
        data["userRank"] = rank
    return data


@rpc(COMPETITIONS, "ListCompetitions")
def list_competitions(call: Call) -> Reply:
    search = str(call.body.get("search") or "").lower()
    entered_only = "ENTERED" in str(call.body.get("group") or "")
    found = [c for c in call.ledger.competitions.values()
             if search in c.slug.lower() or search in c.title.lower()]
    if entered_only:
        found = [c for c in found if call.ledger.submissions(c.slug, call.user)]
    page, token = paged(found, call.body)
    return {"competitions": [competition_json(call, c) for c in page], "nextPageToken": token}


@rpc(COMPETITIONS, "GetCompetition")
def get_competition(call: Call) -> Reply:
    return competition_json(call, call.ledger.competition(call.slug()))


@rpc(COMPETITIONS, "ListDataFiles")
def list_data_files(call: Call) -> Reply:
    comp = call.ledger.competition(call.slug())
    page, token = paged(comp.members(), call.body)
    return {"files": [{"ref": m.filename, "name": m.filename, "totalBytes": m.file_size,
                       "creationDate": iso(datetime(*m.date_time)), "url": ""} for m in page],
            "nextPageToken": token}


@rpc(COMPETITIONS, "DownloadDataFiles")
def download_data_files(call: Call) -> Reply:
    comp = call.ledger.entered(call.slug())
    return Redirect(call.blob_url(f"/_blobs/{comp.slug}/{comp.archive.name}"))


@rpc(COMPETITIONS, "DownloadDataFile")
def download_data_file(call: Call) -> Reply:
    comp = call.ledger.entered(call.slug())
    name = str(call.body.get("fileName") or "")
    if name not in {m.filename for m in comp.members()}:
        raise ApiError(404, f"File '{name}' not found in competition '{comp.slug}'.")
    return Redirect(call.blob_url(f"/_blobs/{comp.slug}/files/{urllib.parse.quote(name)}"))


@rpc(COMPETITIONS, "StartSubmissionUpload")
def start_submission_upload(call: Call) -> Reply:
    upload = call.ledger.start_upload(call.slug(), call.user, str(call.body.get("fileName") or ""),
                                      int(call.body.get("contentLength") or 0))
    return {"token": upload.token, "createUrl": call.upload_url(upload.token)}


@rpc(COMPETITIONS, "CreateSubmission")
def create_submission(call: Call) -> Reply:
    slug = call.slug()
    record = call.ledger.create_submission(slug, call.user, str(call.body.get("blobFileTokens") or ""),
                                           str(call.body.get("submissionDescription") or ""))
    return {"message": f"Successfully submitted to {call.ledger.competition(slug).title}", "ref": record.ref}


@rpc(COMPETITIONS, "GetSubmissionLimits")
def get_submission_limits(call: Call) -> Reply:
    return call.ledger.limits(call.slug(), call.user)


@rpc(COMPETITIONS, "ListSubmissions")
def list_submissions(call: Call) -> Reply:
    page, token = paged(call.ledger.submissions(call.slug(), call.user), call.body)
    return {"submissions": [s.to_api(call.ledger.clock()) for s in page], "nextPageToken": token}


@rpc(COMPETITIONS, "GetSubmission")
def get_submission(call: Call) -> Reply:
    return call.ledger.submission(int(call.body.get("ref") or 0), call.user).to_api(call.ledger.clock())


@rpc(COMPETITIONS, "GetLeaderboard")
def get_leaderboard(call: Call) -> Reply:
    page, token = paged(call.ledger.leaderboard(call.slug()), call.body)
    return {"submissions": [{"teamId": r.team_id, "teamName": r.team_name, "submissionDate": r.date,
                             "score": format_score(r.score)} for r in page],
            "nextPageToken": token}


@rpc(COMPETITIONS, "DownloadLeaderboard")
def download_leaderboard(call: Call) -> Reply:
    slug = call.slug()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["Rank", "TeamId", "TeamName", "LastSubmissionDate", "Score"])
    for r in call.ledger.leaderboard(slug):
        writer.writerow([r.rank, r.team_id, r.team_name, r.date, format_score(r.score)])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{slug}-publicleaderboard.csv", text.getvalue())
    return Payload(buf.getvalue(), "application/zip")


@rpc(OAUTH, "IntrospectToken", needs_user=False)
def introspect_token(call: Call) -> Reply:
    user = call.token_user(str(call.body.get("token") or ""))
    return {"active": True, "username": user} if user else {"active": False}
