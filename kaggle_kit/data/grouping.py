"""Groups of train images that must stay on one side of every split.

Three sources: the plugin's group column (``Competition.group_column``, read from the labels CSV) or
file-name pattern (``Competition.group_pattern``, a regex on each train file name), both read by the
manifest (:func:`plugin_groups`); and near-duplicate clusters of perceptual hashes, which
``--group-duplicates`` joins with copies found by backbone features (:mod:`kaggle_kit.model.similar`,
one stage up, since the features live there).

Example (a pattern: the first group of the match is the key; a name it does not match is its own group):
    >>> from kaggle_kit.layouts import ClassFolders
    >>> from kaggle_kit.competition import Submission
    >>> comp = Competition(slug="cells", classes=("a", "b"), metric="accuracy", train=ClassFolders(),
    ...                    submission=Submission(), group_pattern=r"_(\\d+)_")
    >>> group_pattern(comp, ["a/_0_1234.jpeg", "b/_0_99.jpeg", "a/_7_5.jpeg", "a/other.jpeg"])
    ('0', '0', '7', 'image:a/other.jpeg')
"""
from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from kaggle_kit.competition import Competition
from kaggle_kit.data.phash import DEFAULT_THRESHOLD, GROUP_COARSE_THRESHOLD, VERSION, hash_files, near_graph
from kaggle_kit.errors import DataError
from kaggle_kit.project import Project

if TYPE_CHECKING:   # the manifest reads its groups from here
    from kaggle_kit.data.manifest import Manifest

__all__ = ["hash_cache", "duplicate_groups", "plugin_groups", "group_column", "group_pattern"]


def hash_cache(cache_dir: Path, data_root: Path) -> Path:
    """The file caching the hashes of one data folder's images."""
    folder = hashlib.sha1(str(Path(data_root).resolve()).encode()).hexdigest()[:16]
    return Path(cache_dir) / "hashes" / f"{VERSION}-{folder}.json"


def duplicate_groups(manifest: Manifest, *, cache_dir: Path | None = None,
                     threshold: float = DEFAULT_THRESHOLD) -> list[str]:
    """One group label per manifest image; near-duplicates (one perceptual-hash cluster) share it.

    Passed to :func:`kaggle_kit.training.folds.make_splits` as ``groups``, it keeps every copy of an image on one
    side of each split. The groups are wider than the audit's near-duplicate clusters: they also join
    images whose coarse hashes nearly agree (copies shifted or cropped by about 1%), since putting two
    similar photos in one group costs nothing. Hashes are cached in ``cache_dir`` (default: the
    current project's cache).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else Project.find().cache
    hashes = hash_files(manifest.paths, hash_cache(cache_dir, manifest.root))
    groups = near_graph(hashes.hashes, threshold, coarse=GROUP_COARSE_THRESHOLD).clusters(coarse=True)
    return [f"dup{n}" for n in groups]


def plugin_groups(competition: Competition, root: Path, ids: Sequence[str]) -> tuple[str, ...] | None:
    """The groups the plugin gives each train image id (its group column or file-name pattern), or None."""
    if competition.group_pattern:
        return group_pattern(competition, ids)
    return group_column(competition, root, ids)


def group_pattern(competition: Competition, ids: Sequence[str]) -> tuple[str, ...] | None:
    """The key ``Competition.group_pattern`` finds in each train file name, or None without a pattern.

    The key is the pattern's first group (the whole match when it has none); a name the pattern does not
    match is its own group. A pattern that matches none of the names is a :class:`DataError` naming the
    plugin: it is surely wrong.
    """
    pattern = competition.group_pattern
    if not pattern:
        return None
    regex = re.compile(pattern)
    out, matched = [], 0
    for image_id in ids:
        found = regex.search(image_id.rsplit("/", 1)[-1])
        key = (found.group(1) if regex.groups else found.group(0)) if found else None
        matched += key is not None
        out.append(f"{key}" if key is not None else f"image:{image_id}")
    if ids and not matched:
        example = ids[0].rsplit("/", 1)[-1]
        raise DataError(f"{competition.source or competition.slug}: group_pattern r'{pattern}' matches none of the "
                        f"{len(ids)} train file names (e.g. {example!r})")
    return tuple(out)


def group_column(competition: Competition, root: Path, ids: Sequence[str]) -> tuple[str, ...] | None:
    """The plugin's group column (``Competition.group_column``) for each train image id, or None.

    The column is read from the train layout's labels CSV; an image with an empty cell is its own group.
    """
    column = competition.group_column
    if not column:
        return None
    layout = competition.train
    csv_name, id_column = getattr(layout, "csv", None), getattr(layout, "id_column", None)
    if not (csv_name and id_column):
        raise DataError(f"{competition.source or competition.slug}: group_column {column!r} needs a labels-CSV "
                        f"train layout, not {layout.describe()}")
    path = Path(root) / csv_name
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if column not in (reader.fieldnames or []):
            raise DataError(f"{path}: no group column {column!r}; columns are {', '.join(reader.fieldnames or [])}")
        group_of = {row[id_column].strip(): row[column].strip() for row in reader}
    out = []
    for image_id in ids:
        name = image_id.rsplit("/", 1)[-1]
        out.append(group_of.get(name) or group_of.get(name.rsplit(".", 1)[0]) or f"image:{image_id}")
    return tuple(out)
