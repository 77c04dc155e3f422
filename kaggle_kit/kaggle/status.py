"""Where I stand in a competition: my submissions (with the run each came from), today's allowance,
the top of the public leaderboard and my position; and waiting for pending scores.

Example (needs credentials and a reachable server)::

    report = competition_status(Project.find(), "cifar-10-mini", client=KaggleClient())
    [(row.info.status, row.run_id) for row in report.submissions]
    # -> [('complete', '20260101-120000-efficientnet_lite0-ab12')]

"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from kaggle_kit.errors import KaggleError, KitError
from kaggle_kit.kaggle.client import KaggleClient, LeaderboardRow, Limits, SubmissionInfo
from kaggle_kit.project import Project
from kaggle_kit.training.runs import list_runs

__all__ = ["SubmissionRow", "StatusReport", "run_of_refs", "competition_status", "wait_for_scores"]


@dataclass(frozen=True, kw_only=True)
class SubmissionRow:
    info: SubmissionInfo
    run_id: str | None             # the kit's run that recorded this ref, if any


@dataclass(frozen=True, kw_only=True)
class StatusReport:
    slug: str
    submissions: list[SubmissionRow]
    limits: Limits | None          # None when the server does not say
    leaderboard: list[LeaderboardRow]
    my_rank: int | None
    team_count: int | None

    @property
    def pending(self) -> int:
        return sum(1 for row in self.submissions if row.info.status == "pending")


def run_of_refs(project: Project, slug: str) -> dict[str, str]:
    """Submission ref -> run id, from the run records of ``slug`` (empty without a plugin)."""
    try:
        competition = project.competitions.get(slug)
    except KitError:
        return {}
    if competition is None:
        return {}
    return {str(s.get("ref")): run.run_id for run in list_runs(project, competition) for s in run.submissions}


def competition_status(project: Project, slug: str, *, client: KaggleClient, top: int = 10) -> StatusReport:
    runs = run_of_refs(project, slug)
    submissions = [SubmissionRow(info=s, run_id=runs.get(str(s.ref))) for s in client.submissions(slug)]
    try:
        limits = client.limits(slug)
    except KaggleError:
        limits = None           # an optional endpoint: the official CLI ignores its errors too
    info = client.competition(slug)
    return StatusReport(slug=slug, submissions=submissions, limits=limits, leaderboard=client.leaderboard(slug, top),
                        my_rank=info.user_rank if info else None, team_count=info.team_count if info else None)


def wait_for_scores(project: Project, slug: str, *, client: KaggleClient, top: int = 10, timeout: float = 600.0,
                    poll: float = 5.0, refs: list[int] | None = None, sleep: Callable[[float], None] = time.sleep,
                    clock: Callable[[], float] = time.monotonic) -> StatusReport:
    """Poll until ``refs`` (default: the submissions pending now) are scored or ``timeout`` seconds pass;
    the report tells which. Each poll reads the pending submissions one by one (``get_submission``),
    not pages of the listing."""
    deadline = clock() + timeout
    waiting = list(refs) if refs is not None else [s.ref for s in client.submissions(slug) if s.status == "pending"]
    while waiting and clock() < deadline:
        sleep(max(0.0, min(poll, deadline - clock())))
        waiting = [ref for ref in waiting if client.submission(ref).status == "pending"]
    return competition_status(project, slug, client=client, top=top)
