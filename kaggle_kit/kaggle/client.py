"""The kit's only door to Kaggle: the official ``kaggle`` client's Python API (``KaggleApi``).

Every call goes through the unmodified client with its own settings (credentials from
``~/.kaggle/access_token``, ``KAGGLE_API_TOKEN``, ``~/.kaggle/kaggle.json`` or ``KAGGLE_USERNAME``/``KAGGLE_KEY``; the endpoint
from ``KAGGLE_API_ENVIRONMENT`` and the usual proxy variables), so the same code talks to
kaggle.com or to any compatible server such as :mod:`kaggle_local`. What this module adds:

* results as small frozen dataclasses instead of the client's generated objects;
* bounded exponential back-off on 429 and 5xx that honours ``Retry-After`` (the client retries
  none of the competition calls);
* connect and read timeouts on every request (:mod:`~kaggle_kit.kaggle.transport`), retried like
  a 5xx, then "the server did not answer";
* one-line :class:`~kaggle_kit.errors.KaggleError` messages: how to set credentials (never the
  key), the rules URL on 403, the closest competition names on 404, "cannot reach Kaggle" when
  offline; a failed upload is an error even though the client returns normally;
* silence: the client prints to stdout; that output is captured, never shown, and every error
  and captured line is scrubbed of the credentials (:mod:`~kaggle_kit.kaggle.secrets`).

It runs a little over 400 lines: one short method per Kaggle call, kept beside the retry and error
translation they all share.

Example (needs credentials and a reachable server)::

    client = KaggleClient(retry=RetryPolicy(attempts=3))
    [s.status for s in client.submissions("cifar-10-mini")]
    # -> ['complete']

"""
from __future__ import annotations

import contextlib
import difflib
import errno
import io
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, TypeVar

from kaggle_kit.errors import DiskFullError, KaggleError, KitError
from kaggle_kit.kaggle.answers import (is_transfer_error, offline_message, one_line, partial_marker, retry_after,
                                       score, server_message, short_reason, slug_of, status_of, utc)
from kaggle_kit.kaggle.secrets import scrub
from kaggle_kit.kaggle.transport import Timeouts, bounded, is_timeout

__all__ = ["KaggleClient", "RetryPolicy", "Timeouts", "SubmissionRef", "SubmissionInfo", "LeaderboardRow", "Limits",
           "CompetitionInfo", "RETRY_STATUSES", "slug_of", "partial_marker", "one_line"]

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
KAGGLE_WEB = "https://www.kaggle.com"
CREDENTIALS_HELP = ("create an API token at https://www.kaggle.com/settings/api and save it in ~/.kaggle/access_token "
                    "(chmod 600) or set KAGGLE_API_TOKEN; or put a legacy key in {config} or set KAGGLE_USERNAME "
                    "and KAGGLE_KEY; or run `kaggle auth login`")


# -- results ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubmissionRef:
    ref: int
    message: str


@dataclass(frozen=True, kw_only=True)
class SubmissionInfo:
    ref: int
    status: str                    # "pending", "complete" or "error"
    date: datetime | None
    description: str
    file_name: str
    public_score: float | None
    private_score: float | None
    error: str                     # why Kaggle could not score it (the official CLI hides this)


@dataclass(frozen=True, kw_only=True)
class LeaderboardRow:
    rank: int
    team_id: int
    team_name: str
    score: float | None
    date: datetime | None


@dataclass(frozen=True, kw_only=True)
class Limits:
    today: int                     # submissions made today (UTC)
    total: int
    allowed_now: int               # how many more are accepted today
    limited_by_total: bool


@dataclass(frozen=True, kw_only=True)
class CompetitionInfo:
    slug: str
    title: str
    deadline: datetime | None
    team_count: int
    user_rank: int | None          # my position on the public leaderboard
    user_has_entered: bool
    max_daily_submissions: int | None


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Back-off for 429 and 5xx answers and timeouts: ``base * 2**n`` seconds, or ``Retry-After`` when given,
    never more than ``cap``; ``attempts`` tries in all. ``sleep`` is injectable (tests)."""

    attempts: int = 5
    base: float = 1.0
    cap: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base < 0 or self.cap < 0:
            raise KitError(f"retry policy needs attempts >= 1 and non-negative delays, got {self}")

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        wanted = retry_after if retry_after is not None else self.base * 2 ** retry
        return min(max(wanted, 0.0), self.cap)


# -- the client -----------------------------------------------------------------------------------
class KaggleClient:
    """Kaggle competitions through the official client; errors are one-line :class:`KaggleError`."""

    def __init__(self, *, retry: RetryPolicy = RetryPolicy(), timeouts: Timeouts | None = None) -> None:
        self.retry = retry
        self.timeouts = timeouts if timeouts is not None else Timeouts.from_env()
        self._api: Any = None
        self._printed = ""         # what the official client printed during the last call

    # -- public API -------------------------------------------------------------------------------
    def competitions(self, search: str = "") -> list[str]:
        """Slugs of the competitions whose name or title matches ``search`` (first page)."""
        response = self._call(f"list competitions matching {search!r}", None,
                              lambda api: api.competitions_list(search=search, page_size=100))
        return [slug_of(c.ref) for c in response.competitions]

    def competition(self, slug: str) -> CompetitionInfo | None:
        """Title, deadline, team count and my rank; None when a search does not list ``slug``."""
        response = self._call(f"look up {slug}", slug, lambda api: api.competitions_list(search=slug, page_size=100))
        for c in response.competitions:
            if slug_of(c.ref) == slug:
                return CompetitionInfo(slug=slug, title=c.title, deadline=utc(c.deadline), team_count=c.team_count,
                                       user_rank=c.user_rank or None, user_has_entered=bool(c.user_has_entered),
                                       max_daily_submissions=c.max_daily_submissions or None)
        return None

    def check_exists(self, slug: str) -> None:
        """Raise a :class:`KaggleError` naming the closest known slugs unless ``slug`` exists."""
        self._call(f"check competition {slug}", slug, lambda api: api.competition_list_files(slug, page_size=1))

    def download(self, slug: str, dest: Path, force: bool = False) -> Path:
        """Download the competition's archive to ``dest/<slug>.zip`` and return that path.

        The client skips a complete copy already there (unless ``force``) and resumes a partial
        one it left (``<slug>.zip.kaggle-partial`` marks it); an interrupted download is kept
        for the next call to resume, and reported as an error.
        """
        dest = Path(dest)
        archive = dest / f"{slug}.zip"
        try:
            self._call(f"download {slug}", slug,
                       lambda api: api.competition_download_files(slug, path=str(dest), force=force, quiet=True),
                       interrupted=lambda e: archive.is_file())
        except _Interrupted as e:
            have = archive.stat().st_size if archive.is_file() else 0
            raise self._error(f"download of {slug} was interrupted ({e.reason}); {have} bytes are kept in "
                              f"{archive} and the next fetch resumes them") from None
        if not archive.is_file() or partial_marker(archive).exists():
            raise KaggleError(f"download of {slug} left no complete archive at {archive}")
        return archive

    def submit(self, slug: str, csv_path: Path, message: str) -> SubmissionRef:
        """Upload ``csv_path`` as a submission; a failed upload raises, whatever the client returns.

        The slug is checked first (a misspelt one is reported with the closest names, before any
        upload), and so is today's allowance. A 429/5xx answer is retried like any call, which
        starts the upload again, unless the submission is already there: Kaggle may have created it
        and lost its answer, so before a retry the newest submissions are compared with those listed
        before the upload, and a new one with this message is taken as the result.
        """
        csv_path = Path(csv_path)
        if not csv_path.is_file():
            raise KaggleError(f"{csv_path}: submission file not found")
        self.check_exists(slug)
        limits = self._limits_if_known(slug)
        if limits is not None and limits.allowed_now == 0 and limits.today > 0:
            raise KaggleError(f"{slug}: no submissions left today ({limits.today} made); "
                              "the allowance resets at 00:00 UTC")
        from kaggle.api.kaggle_api_extended import KaggleApi

        what = f"submit {csv_path.name} to {slug}"
        before = {sub.ref for sub in self.submissions(slug, pages=1)}

        def landed() -> SimpleNamespace | None:
            new = [sub for sub in self.submissions(slug, pages=1)
                   if sub.ref not in before and sub.description.strip() == message.strip()]
            return SimpleNamespace(ref=new[0].ref, message="submitted (found among your submissions after "
                                   "Kaggle's answer was lost)") if new else None

        result = self._call(what, slug, lambda api: api.competition_submit(str(csv_path), message, slug, quiet=True),
                            landed=landed)
        upload_failed = result.message == KaggleApi.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE
        if upload_failed or not result.ref:
            reason = "the upload was refused or broke off" if upload_failed else "no submission reference came back"
            said = one_line(self._printed) or reason
            raise self._error(f"upload of {csv_path} to {slug} failed ({said}); nothing was submitted")
        return SubmissionRef(ref=int(result.ref), message=result.message)

    def submission(self, ref: int) -> SubmissionInfo:
        """One of my submissions by its ref (the client's ``get_submission``): one record, not pages."""
        return submission_info(self._call(f"read submission {ref}", None, lambda api: api.get_submission(int(ref))))

    def files(self, slug: str) -> dict[str, int]:
        """The competition's data files, name -> bytes (every page of the listing)."""
        out: dict[str, int] = {}
        token: str | None = None
        while True:
            r = self._call(f"list the files of {slug}", slug,
                           lambda api: api.competition_list_files(slug, page_token=token, page_size=200))
            out.update({f.name: int(f.total_bytes or 0) for f in r.files})
            token = r.next_page_token or None
            if not token:
                return out

    def download_file(self, slug: str, name: str, dest: Path, force: bool = False) -> Path:
        """Download the data file ``name`` to ``dest/<name>`` (unwrapped if the server sends it zipped)."""
        path = Path(dest) / name
        self._call(f"download {name} of {slug}", slug, lambda api: api.competition_download_file(
            slug, name, path=str(dest), force=force, quiet=True, unzip=True))
        if not path.is_file():
            raise KaggleError(f"download of {name} from {slug} left no file at {path}")
        return path

    def submissions(self, slug: str, pages: int = 5, page_size: int = 100) -> list[SubmissionInfo]:
        """My submissions to ``slug``, newest first (up to ``pages * page_size``)."""
        out: list[SubmissionInfo] = []
        for page in range(1, pages + 1):
            batch = self._call(f"list submissions to {slug}", slug,
                               lambda api: api.competition_submissions(slug, page_number=page, page_size=page_size))
            out.extend(submission_info(s) for s in batch or [] if s is not None)
            if len(batch or []) < page_size:
                break
        return out

    def leaderboard(self, slug: str, top: int = 10) -> list[LeaderboardRow]:
        """The first ``top`` rows of the public leaderboard."""
        rows = self._call(f"read the leaderboard of {slug}", slug,
                          lambda api: api.competition_leaderboard_view(slug, page_size=top))
        return [LeaderboardRow(rank=i, team_id=int(r.team_id or 0), team_name=r.team_name, score=score(r.score),
                               date=utc(r.submission_date))
                for i, r in enumerate(rows or [], 1)][:top]

    def limits(self, slug: str) -> Limits:
        """Today's submission allowance."""
        r = self._call(f"read the submission limits of {slug}", slug,
                       lambda api: api.competition_get_submission_limits(slug))
        return Limits(today=r.num_today, total=r.num_total, allowed_now=r.num_allowed_now,
                      limited_by_total=bool(r.limited_by_total))

    # -- the official client ------------------------------------------------------------------------
    def api(self) -> Any:
        """The authenticated ``KaggleApi``, built on first use.

        The client reads ``KAGGLE_API_ENVIRONMENT`` and ``KAGGLE_CONFIG_DIR`` once, when ``kaggle``
        is first imported; they are applied again here with the client's own rules, so a
        long-lived process (a notebook, a test session) uses the settings current when this
        client is built.
        """
        if self._api is None:
            with self._quiet(), bounded(self.timeouts):
                try:
                    from kaggle.api.kaggle_api_extended import KaggleApi   # runs kaggle/__init__: authenticates
                except SystemExit:                                         # never let the client exit
                    raise KaggleError("the kaggle client failed to start") from None
                api = KaggleApi()
                api.args = [a for a in KaggleApi.args if a != "--local"]
                if os.environ.get("KAGGLE_API_ENVIRONMENT") == "LOCALHOST":
                    api.args.append("--local")
                config_dir = os.environ.get("KAGGLE_CONFIG_DIR")
                if config_dir:
                    api.config_dir = config_dir
                    api.config = os.path.join(config_dir, api.config_file)
                try:
                    api.authenticate()
                except SystemExit:
                    raise KaggleError("no Kaggle credentials found: " + CREDENTIALS_HELP.format(config=api.config)) from None
                except Exception as e:      # token auth calls the API while authenticating
                    raise self._translate(e, "authenticate", None, api) from None
            self._api = api
        return self._api

    def _call(self, what: str, slug: str | None, fn: Callable[[Any], T],
              interrupted: Callable[[Exception], bool] | None = None,
              landed: Callable[[], T | None] | None = None) -> T:
        """Run ``fn(api)`` with retries on 429/5xx and errors translated to one line.

        ``interrupted(error)`` tells a transfer that broke off midway (reported by the caller)
        from one that never started (no network). ``landed()``, for a call that changes something,
        is asked before retrying after a 5xx whether the call was carried out all the same; what
        it returns (when not None) is the call's result.
        """
        api = self.api()
        for attempt in range(self.retry.attempts):
            try:
                with self._quiet(), bounded(self.timeouts):
                    return fn(api)
            except Exception as e:
                status = status_of(e)
                if (status in RETRY_STATUSES or status is None and is_timeout(e)) and attempt + 1 < self.retry.attempts:
                    wait = retry_after(e)
                    if wait is None or wait <= self.retry.cap:
                        self.retry.sleep(self.retry.delay(attempt, wait))
                        done = landed() if landed is not None and status != 429 else None
                        if done is not None:
                            return done
                        continue
                if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                    raise DiskFullError(f"{what}: disk full; the partial download is kept") from None
                if interrupted and status is None and is_transfer_error(e) and interrupted(e):
                    raise _Interrupted(short_reason(e)) from None
                raise self._translate(e, what, slug, api, attempts=attempt + 1) from None
        raise AssertionError("unreachable")   # the loop always returns or raises

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                yield
        finally:
            self._printed = self._scrub(buf.getvalue(), self._api)

    def _limits_if_known(self, slug: str) -> Limits | None:
        try:
            return self.limits(slug)
        except KaggleError:
            return None       # the official CLI also treats the limits call as optional

    # -- errors -----------------------------------------------------------------------------------
    def _translate(self, error: Exception, what: str, slug: str | None, api: Any, attempts: int = 1) -> KaggleError:
        status = status_of(error)
        if status is None and is_timeout(error):
            t = self.timeouts
            return self._error(f"{what}: the server did not answer ({attempts} attempt(s), timeouts {t.connect:g} s "
                               f"to connect, {t.read:g} s to read); check the network connection and proxy", api)
        if status is None:
            return self._error(f"{what}: {offline_message(error)}", api)
        said = server_message(error)
        explain = _EXPLAIN.get(status)
        if explain is not None:
            text = explain(self, what, slug, said, api)
        elif status in RETRY_STATUSES:
            wait = retry_after(error)
            later = f"Kaggle asks to wait {wait:.0f} s" if wait and wait > self.retry.cap else "try again later"
            text = f"{what}: Kaggle answered {status} ({said}) {attempts} time(s); {later}"
        else:
            text = f"{what}: Kaggle answered {status}: {said}"
        return self._error(text, api)

    def _unauthorised(self, what: str, slug: str | None, said: str, api: Any) -> str:
        user = api.config_values.get("username") if api is not None else None
        who = f" for user {user!r}" if user else ""
        config = getattr(api, "config", "~/.kaggle/kaggle.json")
        return f"{what}: Kaggle rejected the credentials{who} (401); " + CREDENTIALS_HELP.format(config=config)

    def _forbidden(self, what: str, slug: str | None, said: str, api: Any) -> str:
        where = f"{KAGGLE_WEB}/competitions/{slug}/rules" if slug else f"{KAGGLE_WEB}/competitions"
        return f"{what}: Kaggle refused access (403: {said}); accept the competition's rules at {where}"

    def _not_found(self, what: str, slug: str | None, said: str, api: Any) -> str:
        if not slug:
            return f"{what}: not found on Kaggle (404: {said})"
        close = self._closest(slug)
        hint = f"; did you mean {', '.join(close)}?" if close else "; search with `kaggle competitions list -s <word>`"
        return f"{what}: no competition {slug!r} on Kaggle (404){hint}"

    def _closest(self, slug: str) -> list[str]:
        """Known slugs near ``slug``: from a plain listing and a search for each word of it."""
        words = [w for w in re.split(r"[-_ ]+", slug) if len(w) >= 3][:3]
        known: set[str] = set()
        for search in ["", *words]:
            try:
                with self._quiet(), bounded(self.timeouts):
                    response = self.api().competitions_list(search=search, page_size=100)
            except Exception:   # suggestions are a courtesy: never fail over them
                continue
            known.update(slug_of(c.ref) for c in response.competitions)
        return difflib.get_close_matches(slug, sorted(known), n=3, cutoff=0.6)

    def _error(self, text: str, api: Any = None) -> KaggleError:
        """The one way an error leaves this wrapper: one line, scrubbed of every form of a secret."""
        return KaggleError(one_line(self._scrub(text, api if api is not None else self._api)))

    @staticmethod
    def _scrub(text: str, api: Any) -> str:
        """``text`` with the credentials the client holds (or the environment gives) masked."""
        values = getattr(api, "config_values", None) or {}
        user = values.get("username") or os.environ.get("KAGGLE_USERNAME")
        secrets = [values.get(name) for name in ("key", "token", "api_token")]
        secrets += [os.environ.get(name) for name in ("KAGGLE_KEY", "KAGGLE_API_TOKEN")]
        return scrub(text, user=user, secrets=secrets)


_EXPLAIN: dict[int, Callable[[KaggleClient, str, str | None, str, Any], str]] = {
    401: KaggleClient._unauthorised,
    403: KaggleClient._forbidden,
    404: KaggleClient._not_found,
}


class _Interrupted(Exception):
    """A download that broke off mid-transfer after the client's own retries."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def submission_info(s: Any) -> SubmissionInfo:
    status = getattr(s.status, "name", str(s.status)).rsplit("_", 1)[-1].lower()
    return SubmissionInfo(ref=int(s.ref or 0), status=status, date=utc(s.date), description=s.description or "",
                          file_name=s.file_name or "", public_score=score(s.public_score),
                          private_score=score(s.private_score), error=s.error_description or "")
