"""What a local Kaggle server remembers: pending uploads, submissions with their scores, leaderboards
and daily submission counts. Kept in memory, and in ``<state_dir>/state.json`` when one is given.

Example:
    >>> import tempfile, zipfile
    >>> from kaggle_local.catalogue import load_catalogue
    >>> root = Path(tempfile.mkdtemp()); (root / "tiny").mkdir()
    >>> with zipfile.ZipFile(root / "tiny" / "tiny.zip", "w") as z:
    ...     z.writestr("test.csv", "id\\n1\\n2\\n")
    >>> _ = (root / "tiny" / "solution.csv").write_text("id,label\\n1,cat\\n2,dog\\n")
    >>> ledger = Ledger(load_catalogue(root))
    >>> up = ledger.start_upload("tiny", "me", "sub.csv", 21)
    >>> ledger.receive_upload(up.token, b"id,label\\n1,cat\\n2,dog\\n")
    >>> sub = ledger.create_submission("tiny", "me", up.token, "first")
    >>> sub.status(), sub.public, ledger.limits("tiny", "me")["numAllowedNow"]
    ('COMPLETE', 1.0, 4)
"""
from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
import zlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from kaggle_local.atomic import atomic_write_json
from kaggle_local.catalogue import ServedCompetition
from kaggle_local.errors import ApiError, ServerError, SubmissionRejected

__all__ = ["BENCHMARK_TEAM", "FIRST_REF", "ApiError", "Ledger", "Standing", "SubmissionRecord", "Upload",
           "format_score", "iso", "team_id"]

FIRST_REF = 50_000_001
BENCHMARK_TEAM = "Sample Submission Benchmark"


def iso(dt: datetime) -> str:
    """Kaggle's wire format for dates: ``2026-11-23T06:52:44.514Z`` (UTC)."""
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def format_score(score: float | None) -> str:
    return "" if score is None else f"{score:.5f}"


def team_id(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


@dataclass(kw_only=True)
class Upload:
    token: str
    slug: str
    user: str
    file_name: str
    content_length: int
    data: bytes | None = None


@dataclass(kw_only=True)
class SubmissionRecord:
    ref: int
    slug: str
    user: str
    date: str                       # ISO, UTC
    description: str
    file_name: str
    total_bytes: int
    ready_at: float                 # epoch seconds: PENDING until then
    error: str = ""
    public: float | None = None
    private: float | None = None

    def status(self, now: float | None = None) -> str:
        if (time.time() if now is None else now) < self.ready_at:
            return "PENDING"
        return "ERROR" if self.error else "COMPLETE"

    def to_api(self, now: float | None = None) -> dict[str, Any]:
        status = self.status(now)
        done = status == "COMPLETE"
        return {
            "ref": self.ref, "totalBytes": self.total_bytes, "date": self.date,
            "description": self.description, "fileName": self.file_name, "status": status,
            "errorDescription": self.error if status == "ERROR" else "",
            "publicScore": format_score(self.public) if done else "",
            "privateScore": format_score(self.private) if done else "",
            "submittedBy": self.user, "teamName": self.user,
            "url": f"/competitions/{self.slug}/submissions#{self.ref}",
        }


@dataclass(frozen=True)
class Standing:
    rank: int
    team_id: int
    team_name: str
    date: str
    score: float


@dataclass
class _Store:
    next_ref: int = FIRST_REF
    submissions: list[SubmissionRecord] = field(default_factory=list)


class Ledger:
    """Submissions and uploads for the served competitions; every method is thread-safe."""

    def __init__(self, competitions: Iterable[ServedCompetition], *, scoring_delay: float = 0.0,
                 state_dir: Path | None = None, benchmarks: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        self.competitions = {c.slug: c for c in competitions}
        self.scoring_delay = scoring_delay
        self.state_dir = Path(state_dir) if state_dir else None
        self.clock = clock
        self._lock = threading.RLock()
        self._uploads: dict[str, Upload] = {}
        self._store = self._load()
        self._benchmarks = {c.slug: self._benchmark(c) for c in self.competitions.values()} if benchmarks else {}

    # -- competitions ---------------------------------------------------------------------------
    def competition(self, slug: str) -> ServedCompetition:
        try:
            return self.competitions[slug]
        except KeyError:
            raise ApiError(404, f"Competition '{slug}' not found.") from None

    def entered(self, slug: str, *, rules: bool = True) -> ServedCompetition:
        """The competition, if the caller may use its data and submit (403 until rules are accepted)."""
        comp = self.competition(slug)
        if rules and not comp.rules_accepted:
            raise ApiError(403, "You must accept this competition's rules before you'll be able to "
                                "download files or submit.")
        return comp

    def configure(self, slug: str, *, rules_accepted: bool | None = None, daily_limit: int | None = None) -> None:
        with self._lock:
            comp = self.competition(slug)
            if rules_accepted is not None:
                comp.rules_accepted = bool(rules_accepted)
            if daily_limit is not None:
                comp.daily_limit = int(daily_limit)

    # -- uploads and submissions ----------------------------------------------------------------
    def start_upload(self, slug: str, user: str, file_name: str, content_length: int) -> Upload:
        self.entered(slug)
        upload = Upload(token=secrets.token_urlsafe(16), slug=slug, user=user,
                        file_name=file_name or "submission.csv", content_length=int(content_length))
        with self._lock:
            self._uploads[upload.token] = upload
        return upload

    def receive_upload(self, token: str, data: bytes) -> None:
        with self._lock:
            upload = self._uploads.get(token)
            if upload is None:
                raise ApiError(404, "Upload URL not found or expired.")
            if upload.content_length and len(data) != upload.content_length:
                raise ApiError(400, f"Upload is {len(data)} bytes; {upload.content_length} were announced.")
            upload.data = data

    def create_submission(self, slug: str, user: str, token: str, description: str) -> SubmissionRecord:
        self.entered(slug)
        with self._lock:
            upload = self._uploads.get(token)
            if upload is None or upload.data is None or upload.slug != slug or upload.user != user:
                raise ApiError(400, "The submission file was not uploaded (unknown or incomplete blob token).")
            record = self.submit_file(slug, user, upload.file_name, upload.data, description)
            del self._uploads[token]
            return record

    def submit_file(self, slug: str, user: str, file_name: str, data: bytes, description: str) -> SubmissionRecord:
        """Record and score a submission file (an upload's, or the output of a notebook version)."""
        comp = self.entered(slug)
        with self._lock:
            used = self.limits(slug, user)["numToday"]
            if used >= comp.daily_limit:
                raise ApiError(400, f"Your team has used its daily Submission allowance ({comp.daily_limit}) "
                                    "today, please try again tomorrow UTC.")
            record = SubmissionRecord(
                ref=self._store.next_ref, slug=slug, user=user, date=iso(datetime.fromtimestamp(self.clock(), timezone.utc)),
                description=description, file_name=file_name, total_bytes=len(data),
                ready_at=self.clock() + self.scoring_delay)
            self._store.next_ref += 1
            self._score(comp, record, data)
            self._store.submissions.append(record)
            self._save()
            return record

    def submissions(self, slug: str, user: str) -> list[SubmissionRecord]:
        """The user's submissions to ``slug``, newest first."""
        self.competition(slug)
        with self._lock:
            mine = [s for s in self._store.submissions if s.slug == slug and s.user == user]
        return sorted(mine, key=lambda s: s.ref, reverse=True)

    def submission(self, ref: int, user: str) -> SubmissionRecord:
        with self._lock:
            for s in self._store.submissions:
                if s.ref == ref and s.user == user:
                    return s
        raise ApiError(404, f"Submission {ref} not found.")

    def limits(self, slug: str, user: str) -> dict[str, Any]:
        comp = self.competition(slug)
        today = datetime.fromtimestamp(self.clock(), timezone.utc).date().isoformat()
        mine = self.submissions(slug, user)
        used = sum(1 for s in mine if s.date.startswith(today))
        return {"numToday": used, "numTotal": len(mine),
                "numAllowedNow": max(0, comp.daily_limit - used), "limitedByTotal": False}

    # -- leaderboard -----------------------------------------------------------------------------
    def leaderboard(self, slug: str) -> list[Standing]:
        """Best public score per team (and the sample-submission benchmark), best first."""
        comp = self.competition(slug)
        now = self.clock()
        best: dict[str, tuple[float, str]] = {}
        with self._lock:
            done = [s for s in self._store.submissions
                    if s.slug == slug and s.status(now) == "COMPLETE" and s.public is not None]
        sign = -1.0 if comp.direction == "max" else 1.0
        for s in sorted(done, key=lambda s: s.ref):
            if s.user not in best or sign * s.public < sign * best[s.user][0]:
                best[s.user] = (s.public, s.date)
        if slug in self._benchmarks and self._benchmarks[slug] is not None:
            best.setdefault(BENCHMARK_TEAM, self._benchmarks[slug])
        rows = sorted(best.items(), key=lambda kv: (sign * kv[1][0], kv[1][1]))
        return [Standing(rank=i, team_id=team_id(name), team_name=name, date=date, score=score)
                for i, (name, (score, date)) in enumerate(rows, 1)]

    def rank(self, slug: str, user: str) -> int | None:
        return next((row.rank for row in self.leaderboard(slug) if row.team_name == user), None)

    def team_count(self, slug: str) -> int:
        return sum(1 for row in self.leaderboard(slug) if row.team_name != BENCHMARK_TEAM)

    # -- internals -------------------------------------------------------------------------------
    def _score(self, comp: ServedCompetition, record: SubmissionRecord, data: bytes) -> None:
        if comp.scorer is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.state_dir / "submissions" / str(record.ref) if self.state_dir else Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / Path(record.file_name).name
            path.write_bytes(data)
            try:
                scores = comp.scorer.score(path, shown_as=record.file_name)
            except SubmissionRejected as e:
                record.error = str(e)
                return
        record.public, record.private = scores.public, scores.private

    def _benchmark(self, comp: ServedCompetition) -> tuple[float, str] | None:
        sample = comp.sample_submission() if comp.scorer else None
        if sample is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / sample[0]
            path.write_bytes(sample[1])
            try:
                score = comp.scorer.score(path).public
            except SubmissionRejected:
                return None
        date = iso(datetime.fromtimestamp(comp.archive.stat().st_mtime, timezone.utc))
        return (score, date) if score is not None else None

    def _load(self) -> _Store:
        path = self.state_dir / "state.json" if self.state_dir else None
        if path is None or not path.is_file():
            return _Store()
        try:
            data = json.loads(path.read_text())
            return _Store(next_ref=int(data["next_ref"]),
                          submissions=[SubmissionRecord(**s) for s in data["submissions"]])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ServerError(f"{path}: not a server state file ({e})") from None

    def _save(self) -> None:
        if self.state_dir:
            atomic_write_json(self.state_dir / "state.json", {
                "next_ref": self._store.next_ref,
                "submissions": [asdict(s) for s in self._store.submissions]})
