"""The competitions a local Kaggle server offers, read from a folder laid out like Kaggle's data:

    <root>/<slug>/<slug>.zip          the competition's files (what `kaggle competitions download` gets)
    <root>/<slug>/solution.csv        optional: true test labels; without it submissions get no score
    <root>/<slug>/competition.json    optional: {"title", "category", "reward", "deadline",
                                                 "daily_limit", "rules_accepted"} and the scoring
                                                 facts (see :mod:`kaggle_local.scoring`)

A competition's ``competition.json`` can also be given from elsewhere (``competition_json={slug: path}``),
for a folder the server must not write into, such as ``../shared/competitions``.

Example:
    >>> import tempfile, zipfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "tiny").mkdir()
    >>> with zipfile.ZipFile(root / "tiny" / "tiny.zip", "w") as z:
    ...     z.writestr("train.csv", "id,label\\n")
    >>> [c.slug for c in load_catalogue(root)]
    ['tiny']
"""
from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from kaggle_local.errors import ServerError
from kaggle_local.scoring import SCORING_KEYS, Scorer, check_facts

__all__ = ["SETTINGS", "SETTINGS_KEYS", "SOLUTION", "ServedCompetition", "load_catalogue"]

SOLUTION = "solution.csv"
SETTINGS = "competition.json"
SAMPLE_NAMES = ("sample_submission.csv", "samplesubmission.csv")   # compared lower-cased
SETTINGS_KEYS = ("title", "category", "reward", "deadline", "daily_limit", "rules_accepted")


@dataclass(kw_only=True)
class ServedCompetition:
    slug: str
    archive: Path
    title: str
    category: str = "Playground"
    reward: str = "Kudos"
    deadline: datetime
    daily_limit: int
    rules_accepted: bool = True
    metric: str = ""                   # shown as the evaluation metric, also without a solution
    scorer: Scorer | None = None

    @property
    def id(self) -> int:
        return zlib.crc32(self.slug.encode()) & 0x7FFFFFFF

    @property
    def url(self) -> str:
        return f"https://www.kaggle.com/competitions/{self.slug}"

    @property
    def direction(self) -> str:
        return self.scorer.metric.direction if self.scorer else "max"

    def members(self) -> list[zipfile.ZipInfo]:
        with zipfile.ZipFile(self.archive) as zf:
            return [m for m in zf.infolist() if not m.is_dir()]

    def read_member(self, name: str) -> bytes:
        with zipfile.ZipFile(self.archive) as zf:
            return zf.read(name)

    def sample_submission(self) -> tuple[str, bytes] | None:
        """The archive's sample submission (``sample_submission.csv``/``sampleSubmission.csv``), if any."""
        for m in self.members():
            if Path(m.filename).name.lower() in SAMPLE_NAMES:
                return Path(m.filename).name, self.read_member(m.filename)
        return None


def load_catalogue(root: Path, *, competition_json: Mapping[str, Path] | None = None, daily_limit: int = 5,
                   rules_not_accepted: frozenset[str] = frozenset()) -> list[ServedCompetition]:
    """Every ``<root>/<slug>/<slug>.zip``, with its settings and scorer.

    ``competition_json`` maps a slug to the file to use instead of ``<root>/<slug>/competition.json``.
    """
    root = Path(root)
    if not root.is_dir():
        raise ServerError(f"{root}: competitions folder not found")
    given_files = dict(competition_json or {})
    served = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        archive = folder / f"{folder.name}.zip"
        if not archive.is_file():
            continue
        given = given_files.pop(folder.name, None)
        where = Path(given) if given is not None else folder / SETTINGS
        if given is not None and not where.is_file():
            raise ServerError(f"{where}: not found (given as the competition.json of {folder.name})")
        facts = _settings(where)
        scoring = check_facts(facts, str(where))      # also without a solution: a misspelt metric stops the start
        solution = folder / SOLUTION
        scorer = Scorer.load(folder.name, solution, scoring, str(where)) if solution.is_file() else None
        served.append(ServedCompetition(
            slug=folder.name,
            archive=archive,
            title=str(facts.get("title") or folder.name),
            category=str(facts.get("category", "Playground")),
            reward=str(facts.get("reward", "Kudos")),
            deadline=_deadline(facts.get("deadline"), where),
            daily_limit=int(facts.get("daily_limit", daily_limit)),
            rules_accepted=bool(facts.get("rules_accepted", True)) and folder.name not in rules_not_accepted,
            metric=scorer.metric.name if scorer else scoring.get("metric", ""),
            scorer=scorer,
        ))
    if given_files:
        raise ServerError(f"{root}: no competition {', '.join(sorted(given_files))} to apply "
                          f"{', '.join(str(p) for p in given_files.values())} to")
    return served


def _settings(path: Path) -> dict[str, Any]:
    """A ``competition.json`` (``{}`` when there is none); unknown keys are refused, naming the file."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ServerError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, dict):
        raise ServerError(f"{path}: expected a JSON object")
    unknown = sorted(set(data) - set(SETTINGS_KEYS) - set(SCORING_KEYS))
    if unknown:
        raise ServerError(f"{path}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(SETTINGS_KEYS + SCORING_KEYS)}")
    return data


def _deadline(value: Any, where: Path) -> datetime:
    if value is None:
        now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        return now + timedelta(days=90)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ServerError(f"{where}: deadline {value!r} is not an ISO date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
