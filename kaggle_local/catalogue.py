"""The competitions a local Kaggle server offers, read from a folder laid out like Kaggle's data:

    <root>/<slug>/<slug>.zip          the competition's files (what `kaggle competitions download` gets)
    <root>/<slug>/solution.csv        optional: true test labels; without it submissions get no score
    <root>/<slug>/competition.json    optional: {"title", "category", "reward", "deadline",
                                                 "daily_limit", "rules_accepted"}

Example:
    >>> import tempfile, zipfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "tiny").mkdir()
    >>> with zipfile.ZipFile(root / "tiny" / "tiny.zip", "w") as z:
    ...     z.writestr("train.csv", "id,label\\n")
    >>> [c.slug for c in load_catalogue(root, plugins={})]
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

from kaggle_kit.competition import Competition
from kaggle_kit.errors import KitError
from kaggle_local.scoring import Scorer

SOLUTION = "solution.csv"
SETTINGS = "competition.json"
SAMPLE_NAMES = ("sample_submission.csv", "samplesubmission.csv")   # compared lower-cased


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


def load_catalogue(root: Path, plugins: Mapping[str, Competition], *, daily_limit: int = 5,
                   rules_not_accepted: frozenset[str] = frozenset()) -> list[ServedCompetition]:
    """Every ``<root>/<slug>/<slug>.zip``, with its settings and scorer."""
    root = Path(root)
    if not root.is_dir():
        raise KitError(f"{root}: competitions folder not found")
    served = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        archive = folder / f"{folder.name}.zip"
        if not archive.is_file():
            continue
        settings = _settings(folder / SETTINGS)
        solution = folder / SOLUTION
        served.append(ServedCompetition(
            slug=folder.name,
            archive=archive,
            title=str(settings.get("title") or (plugins[folder.name].title if folder.name in plugins else "")
                      or folder.name),
            category=str(settings.get("category", "Playground")),
            reward=str(settings.get("reward", "Kudos")),
            deadline=_deadline(settings.get("deadline"), folder / SETTINGS),
            daily_limit=int(settings.get("daily_limit", daily_limit)),
            rules_accepted=bool(settings.get("rules_accepted", True)) and folder.name not in rules_not_accepted,
            scorer=Scorer.load(folder.name, solution, plugins) if solution.is_file() else None,
        ))
    return served


def _settings(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise KitError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, dict):
        raise KitError(f"{path}: expected a JSON object")
    return data


def _deadline(value: Any, where: Path) -> datetime:
    if value is None:
        now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        return now + timedelta(days=90)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise KitError(f"{where}: deadline {value!r} is not an ISO date") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
