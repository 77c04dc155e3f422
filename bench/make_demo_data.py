"""Build the bundled demo competition ``cifar-10-mini`` from the shared CIFAR-10 copy.

Takes the first 40 training images of each class (400) and the first 20 test images of each
class (200, by their true label), renumbers both 1..N in that order, and writes:

- ``kaggle_local/competitions/cifar-10-mini/cifar-10-mini.zip``: ``train/<n>.jpg`` +
  ``trainLabels.csv``, ``test/<n>.jpg`` + ``sampleSubmission.csv`` (the layout of cifar-10.zip);
- ``kaggle_local/competitions/cifar-10-mini/solution.csv``: ``id,label``, the true test labels
  the local Kaggle server scores submissions with;
- ``kaggle_local/competitions/cifar-10-mini/competition.json``: its title, daily limit and the
  scoring facts (accuracy on the class name in ``label``, the ten classes).

The output is byte-for-byte reproducible (fixed member order and timestamps).

Usage:
    python bench/make_demo_data.py [--source ../shared/competitions/cifar-10] [--out DIR]

(the default source is ``shared/competitions/cifar-10`` beside the repository).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import zipfile
from collections import defaultdict
from pathlib import Path

from kaggle_local.atomic import atomic_path, atomic_write_text

TRAIN_PER_CLASS = 40
TEST_PER_CLASS = 20
STAMP = (2024, 1, 1, 0, 0, 0)          # every member gets this date: a reproducible archive
SLUG = "cifar-10-mini"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "competitions" / "cifar-10"
DEFAULT_OUT = REPO / "kaggle_local" / "competitions" / SLUG
SETTINGS = {"title": "CIFAR-10 mini (kaggle-kit demo)", "category": "Playground", "reward": "Kudos",
            "daily_limit": 5, "metric": "accuracy", "id_column": "id", "labels": "name", "label_column": "label"}


def read_labels(text: str) -> list[tuple[str, str]]:
    return [(row["id"], row["label"]) for row in csv.DictReader(io.StringIO(text))]


def pick(rows: list[tuple[str, str]], per_class: int) -> list[tuple[str, str]]:
    """The first ``per_class`` ids of each label, kept in their original id order."""
    taken: dict[str, int] = defaultdict(int)
    out = []
    for id_, label in sorted(rows, key=lambda r: int(r[0])):
        if taken[label] < per_class:
            taken[label] += 1
            out.append((id_, label))
    return out


def to_csv(header: tuple[str, str], rows: list[tuple[int, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def add(zout: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=STAMP)
    info.compress_type = zipfile.ZIP_STORED if name.endswith(".jpg") else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zout.writestr(info, data)


def build(source: Path, out: Path) -> None:
    archive = source / "cifar-10.zip"
    with zipfile.ZipFile(archive) as zin:
        train = pick(read_labels(zin.read("trainLabels.csv").decode()), TRAIN_PER_CLASS)
        test = pick(read_labels((source / "solution.csv").read_text()), TEST_PER_CLASS)
        with atomic_path(out / f"{SLUG}.zip") as tmp, zipfile.ZipFile(tmp, "w") as zout:
            for new, (old, _) in enumerate(train, 1):
                add(zout, f"train/{new}.jpg", zin.read(f"train/{old}.jpg"))
            add(zout, "trainLabels.csv", to_csv(("id", "label"), [(n, lab) for n, (_, lab) in enumerate(train, 1)]).encode())
            for new, (old, _) in enumerate(test, 1):
                add(zout, f"test/{new}.jpg", zin.read(f"test/{old}.jpg"))
            add(zout, "sampleSubmission.csv", to_csv(("id", "label"), [(n, "cat") for n in range(1, len(test) + 1)]).encode())
    atomic_write_text(out / "solution.csv", to_csv(("id", "label"), [(n, lab) for n, (_, lab) in enumerate(test, 1)]))
    settings = {**SETTINGS, "classes": sorted({lab for _, lab in test})}
    atomic_write_text(out / "competition.json", json.dumps(settings, indent=2) + "\n")
    print(f"{out / f'{SLUG}.zip'}: {len(train)} train + {len(test)} test images, "
          f"{(out / f'{SLUG}.zip').stat().st_size // 1024} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="folder with cifar-10.zip and solution.csv")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    build(args.source, args.out)


if __name__ == "__main__":
    main()
