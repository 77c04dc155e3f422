"""The data audit (`kaggle-kit inspect`) and leak-aware folds, on tiny images written here."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from kaggle_kit import layouts
from kaggle_kit.data.grouping import duplicate_groups
from kaggle_kit.data import phash  # layouts.TestFolder: pytest would collect a TestFolder imported by name
from kaggle_kit import events
from kaggle_kit.data.audit_record import Audit, audit_paths, audit_warnings, load_audit, save_audit
from kaggle_kit.tools.audit import run_audit
from kaggle_kit.cli import main
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.errors import DataError
from kaggle_kit.training.folds import make_splits
from kaggle_kit.data.manifest import build_manifest
from kaggle_kit.project import Project

SLUG = "toy"


def competition(**kw) -> Competition:
    return Competition(slug=SLUG, classes=("a", "b"), metric="accuracy", train=layouts.ClassFolders(),
                       test=layouts.TestFolder(), submission=Submission(), **kw)


def texture(rng: np.random.Generator, h: int = 48, w: int = 64, blur: float = 4.0) -> np.ndarray:
    """A smooth random colour texture (BGR uint8): distinct per seed, stable under small changes."""
    noise = rng.normal(128, 60, (h, w, 3)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), blur)
    img = (img - img.mean()) / (img.std() + 1e-6) * 50 + 128
    return np.clip(img, 0, 255).astype(np.uint8)


def write(path: Path, img: np.ndarray, *params: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img, list(params)), path
    return path


@pytest.fixture
def project(tmp_path: Path, kit_env: pytest.MonkeyPatch) -> Project:
    return Project(tmp_path / "project")


def data(project: Project) -> Path:
    return project.data_root(SLUG)


# -- per-class statistics, unreadable files, JSON -------------------------------------------------
def test_progress_is_reported_as_typed_events(project: Project) -> None:
    rng = np.random.default_rng(3)
    for k in range(2):
        write(data(project) / "train" / "a" / f"{k}.png", texture(rng))
        write(data(project) / "train" / "b" / f"{k}.png", texture(rng))
    write(data(project) / "test" / "t0.png", texture(rng))
    seen: list[events.Event] = []

    run_audit(project, competition(), report=seen.append)

    stages = [e.message for e in seen if isinstance(e, events.Stage)]
    assert stages == ["checking images", "hashing 5 images (cached for later audits)",
                      "looking for duplicates and shortcuts", "caching 4 images at 160px",
                      "computing 4 image descriptors (8 views each) (cached for later runs)"]
    hashed = [e for e in seen if isinstance(e, events.Progress) and e.task == "hash"]
    assert hashed and (hashed[-1].done, hashed[-1].total) == (5, 5)
    assert {type(e) for e in seen} == {events.Stage, events.Progress}
    assert [events.from_json(events.to_json(e)) for e in seen] == seen   # the --parallel-folds wire format


def test_class_stats_and_unreadable_files(project: Project) -> None:
    rng = np.random.default_rng(0)
    root = data(project)
    for k in range(3):
        write(root / "train" / "a" / f"{k}.png", texture(rng, 15, 20))
    write(root / "train" / "a" / "grey.png", cv2.cvtColor(texture(rng, 30, 40), cv2.COLOR_BGR2GRAY))
    write(root / "train" / "b" / "0.jpg", texture(rng, 40, 30))
    write(root / "train" / "b" / "1.jpg", texture(rng, 60, 30))
    (root / "train" / "b" / "empty.jpg").write_bytes(b"")
    (root / "train" / "b" / "cut.jpg").write_bytes((root / "train" / "b" / "0.jpg").read_bytes()[:200])
    write(root / "test" / "t0.png", texture(rng, 10, 10))

    audit = run_audit(project, competition())

    a, b = audit.classes
    assert (a.name, a.count, b.name, b.count) == ("a", 4, "b", 2)
    assert (a.width.min, a.width.median, a.width.max) == (20, 20, 40)
    assert a.sizes[0] == ("20x15", 3)
    assert a.modes == {"RGB": 3, "L": 1} and a.formats == {"png": 4}
    assert (b.height.min, b.height.max) == (40, 60) and b.formats == {"jpeg": 2}
    assert (b.aspect.min, b.aspect.max) == (0.5, 0.75)
    assert audit.test is not None and audit.test.count == 1 and audit.test.sizes == [("10x10", 1)]
    bad = {Path(u.path).name: (u.split, u.reason) for u in audit.unreadable}
    assert bad == {"empty.jpg": ("train", "empty file (0 bytes)"),
                   "cut.jpg": ("train", "truncated JPEG (no end-of-image marker)")}
    assert audit.shortcuts == []   # six images: too few to cross-validate

    path = save_audit(audit, project, competition())
    assert path == root / "audit.json"
    saved = json.loads(path.read_text())
    assert saved["classes"][0]["sizes"][0] == ["20x15", 3] and len(saved["unreadable"]) == 2
    assert Audit.from_json(path.read_text()) == audit
    assert load_audit(project, competition()) == audit


def test_audit_saved_in_the_cache_when_the_data_folder_cannot_take_it(project: Project) -> None:
    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        write(data(project) / "train" / c / "0.png", texture(rng))
    write(data(project) / "test" / "t.png", texture(rng))
    (data(project) / "audit.json").mkdir()   # as good as read-only for os.replace, even for root
    audit = run_audit(project, competition())
    path = save_audit(audit, project, competition())
    assert path == project.cache / "audit" / f"{SLUG}.json" == audit_paths(project, competition())[1]
    assert audit.saved_to == str(path)
    assert load_audit(project, competition()) == audit


def test_audit_warnings_is_empty_before_any_inspect_and_a_warning_for_a_broken_audit(project: Project) -> None:
    assert audit_warnings(project, competition()) == []
    data(project).mkdir(parents=True)
    (data(project) / "audit.json").write_text("{not json")
    [warning] = audit_warnings(project, competition())
    assert warning.startswith(f"{data(project) / 'audit.json'}: not a readable audit")
    assert warning.endswith(f"run `kaggle-kit inspect {SLUG}` again")


# -- exact and near duplicates ---------------------------------------------------------------------
def test_exact_and_near_duplicates_inside_train_and_across_to_test(project: Project) -> None:
    rng = np.random.default_rng(2)
    root = data(project)
    original = texture(rng, 120, 160)
    write(root / "train" / "a" / "orig.png", original)
    shutil.copy(root / "train" / "a" / "orig.png", root / "train" / "a" / "same_bytes.png")
    write(root / "train" / "b" / "mirror.png", original[:, ::-1])                # same picture, other class
    for k in range(3):
        write(root / "train" / "b" / f"other{k}.png", texture(rng, 120, 160))
    small = cv2.resize(original, (80, 60), interpolation=cv2.INTER_AREA)
    write(root / "test" / "small.jpg", small, cv2.IMWRITE_JPEG_QUALITY, 60)      # resized + recompressed
    shutil.copy(root / "train" / "b" / "other0.png", root / "test" / "identical.png")
    write(root / "test" / "different.jpg", texture(rng, 120, 160))

    audit = run_audit(project, competition())

    assert [sorted(g.ids) for g in audit.exact_train] == [["a/orig.png", "a/same_bytes.png"]]
    assert len(audit.near_train) == 1
    cluster = audit.near_train[0]
    assert sorted(cluster.ids) == ["a/orig.png", "a/same_bytes.png", "b/mirror.png"] and cluster.mixed
    copies = {c.test_id: c for c in audit.test_copies}
    assert set(copies) == {"identical.png", "small.jpg"}
    assert copies["identical.png"].train_id == "b/other0.png" and copies["identical.png"].exact
    assert copies["small.jpg"].train_id in cluster.ids and not copies["small.jpg"].exact
    assert copies["small.jpg"].difference <= audit.threshold
    text = " ".join(audit.warnings())
    assert "2 of 3 test images are near-copies" in text and "1 near-duplicate cluster(s) mix classes" in text
    assert "--group-duplicates" in text
    assert not any("--group-duplicates" in w for w in audit.warnings(grouped=True))


def test_perceptual_hash_separates_different_images_and_matches_edited_copies() -> None:
    rng = np.random.default_rng(3)
    originals = [texture(rng, 96, 128, blur=b)[:, :, ::-1] for b in (2, 4, 8) for _ in range(15)]
    hashes = np.stack([phash.perceptual_hash(img) for img in originals])
    apart = phash.difference(hashes[:, None], hashes[None, :])[np.triu_indices(len(hashes), 1)]
    assert apart.min() > 3 * phash.DEFAULT_THRESHOLD    # unrelated pictures: about half the signs differ

    for img, h in zip(originals, hashes):                 # smooth (blur 8) ones included
        ok, jpeg = cv2.imencode(".jpg", cv2.resize(img, (77, 58), interpolation=cv2.INTER_AREA),
                                [cv2.IMWRITE_JPEG_QUALITY, 50])
        edits = [cv2.imdecode(jpeg, cv2.IMREAD_COLOR), img[:, ::-1],   # (cv2 keeps the channel order)
                 np.clip(img.astype(int) + 25, 0, 255).astype(np.uint8), (img * 0.8).astype(np.uint8)]
        near = phash.difference(h, np.stack([phash.perceptual_hash(e) for e in edits]))
        assert (near <= phash.DEFAULT_THRESHOLD).all(), near


def test_popcount_fallback_for_numpy_1_agrees() -> None:
    x = np.random.default_rng(10).integers(0, 2**63, (5, 7), dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    expected = np.array([[bin(int(v)).count("1") for v in row] for row in x])
    assert (phash._popcount_bytes(x) == expected).all() and (phash.popcount(x) == expected).all()


@pytest.mark.parametrize("count", ["numpy", "byte table"])
def test_near_duplicate_search_equals_brute_force_across_blocks(monkeypatch: pytest.MonkeyPatch, count: str) -> None:
    if count == "byte table":
        monkeypatch.setattr(phash, "popcount", phash._popcount_bytes)
    rng = np.random.default_rng(4)
    n = 300
    bits = rng.integers(0, 2**63, (n, 4), dtype=np.uint64)
    strong = rng.integers(0, 2**63, (n, 4), dtype=np.uint64) | rng.integers(0, 2**63, (n, 4), dtype=np.uint64)
    base = np.stack([bits, strong], axis=1)
    copies = base[:150].copy()                                   # near copies: up to 30 signs flipped
    for k in range(150):
        for b in rng.integers(0, 256, k % 30):
            copies[k, phash.BITS, b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    hashes = np.concatenate([base, copies, base[:5]])           # plus five exact repeats
    monkeypatch.setattr(phash, "_CHUNK_ELEMENTS", 1000)         # many blocks
    full = phash.difference(hashes[:, None], hashes[None, :])
    coarse = phash.difference(hashes[:, None], hashes[None, :], coarse=True)
    from scipy.sparse.csgraph import connected_components

    def same(labels: np.ndarray) -> np.ndarray:
        return labels[:, None] == labels[None, :]

    graph = phash.near_graph(hashes, 0.06, coarse=0.1)
    assert (same(graph.clusters()) == same(connected_components(full <= 0.06, directed=False)[1])).all()
    both = (full <= 0.06) | (coarse <= 0.1)
    assert (same(graph.clusters(coarse=True)) == same(connected_components(both, directed=False)[1])).all()
    assert n < len(set(graph.clusters().tolist())) < len(hashes) - 5 - 50   # some copies joined, not all

    index, diff = phash.nearest(hashes[n:], hashes[:n], threshold=0.06)
    brute = full[n:, :n]
    hit = index >= 0
    assert (hit == (brute.min(1) <= 0.06)).all() and 50 < hit.sum() < 155
    assert np.allclose(diff[hit], brute.min(1)[hit])
    assert np.allclose(brute[np.flatnonzero(hit), index[hit]], diff[hit])


# -- shortcuts -------------------------------------------------------------------------------------
def test_size_shortcut_is_flagged_with_its_evidence(project: Project) -> None:
    rng = np.random.default_rng(5)
    for k in range(15):
        write(data(project) / "train" / "a" / f"{k}.png", rng.integers(0, 255, (15, 20, 3), dtype=np.uint8))
        h, w = rng.integers(16, 48, 2)
        write(data(project) / "train" / "b" / f"{k}.png", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    for k in range(4):
        write(data(project) / "test" / f"{k}.png", rng.integers(0, 255, (15, 20, 3), dtype=np.uint8))

    audit = run_audit(project, competition())

    flagged = [s for s in audit.shortcuts if s.flagged]
    assert flagged[0].feature == "image size" and flagged[0].accuracy > 0.9 and flagged[0].baseline == 0.5
    warning = audit.warnings()[0]
    assert warning.startswith("image size predicts the class")
    assert "15 of 15 'a' images are exactly 20x15, against 0 of 15 'b' images" in warning
    assert "test: 4 of 4 images are exactly 20x15" in warning
    assert "colour mode" not in {s.feature for s in flagged}
    save_audit(audit, project, competition())
    assert audit_warnings(project, competition())[0] == warning


def test_no_shortcut_when_classes_share_their_sizes(project: Project) -> None:
    rng = np.random.default_rng(6)
    sizes = [tuple(s) for s in rng.integers(16, 48, (15, 2))]
    for c in ("a", "b"):
        for k, (h, w) in enumerate(sizes):
            write(data(project) / "train" / c / f"{k}.png", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    write(data(project) / "test" / "t.png", rng.integers(0, 255, (20, 20, 3), dtype=np.uint8))

    audit = run_audit(project, competition())

    assert len(audit.shortcuts) == 6 and not any(s.flagged for s in audit.shortcuts)
    assert audit.warnings() == []


# -- leak-aware folds ------------------------------------------------------------------------------
def augmented_dataset(root: Path, rng: np.random.Generator, originals: int = 30, copies: int = 8,
                      classes: tuple[str, ...] = ("a", "b", "c")) -> None:
    """Per class, ``originals`` random textures with a faint class tint, each saved as ``copies``
    augmented copies (a shift by 0 or 1 pixel of 128 each way, a mirror, brightness): copies look
    alike, classes barely differ. (Copies shifted further apart than about 1% are not grouped.)"""
    for ci, c in enumerate(classes):
        tint = np.zeros(3, np.float32)
        tint[ci] = 12.0
        for o in range(originals):
            base = texture(rng, 128, 128).astype(np.float32) + tint
            for k in range(copies):
                dx, dy = rng.integers(0, 2, 2)
                img = cv2.warpAffine(base, np.float32([[1, 0, dx], [0, 1, dy]]), (128, 128),
                                     borderMode=cv2.BORDER_REFLECT)
                if k % 2:
                    img = img[:, ::-1]
                img = np.clip(img + rng.uniform(-15, 15), 0, 255).astype(np.uint8)
                write(root / "train" / c / f"o{o:02d}_{k}.png", img)


def test_grouped_folds_keep_augmented_copies_together_and_score_like_held_out_originals(
        project: Project) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    augmented_dataset(data(project), np.random.default_rng(7))
    comp = Competition(slug=SLUG, classes=("a", "b", "c"), metric="accuracy", train=layouts.ClassFolders(),
                       submission=Submission())
    manifest = build_manifest(comp, data(project), "train", cache_dir=project.cache)
    origin = np.array([f"{i.split('/')[0]}/{i.split('/')[1][:3]}" for i in manifest.ids])

    groups = duplicate_groups(manifest, cache_dir=project.cache)

    assert len(groups) == len(manifest) == 720
    by_origin = {o: {g for g, oo in zip(groups, origin) if oo == o} for o in set(origin)}
    assert all(len(g) == 1 for g in by_origin.values())          # every copy of an original together
    assert len(set(groups)) == 90                                # and no two originals merged

    x = np.stack([cv2.resize(cv2.imread(str(p)), (16, 16), interpolation=cv2.INTER_AREA).ravel()
                  for p in manifest.paths]).astype(np.float32)
    y = manifest.labels

    def cv(splits) -> float:
        hits = sum(int((KNeighborsClassifier(1).fit(x[tr], y[tr]).predict(x[va]) == y[va]).sum())
                   for tr, va in splits)
        return hits / sum(len(va) for _, va in splits)

    naive = cv(make_splits(y, folds=5, seed=0))
    grouped = cv(make_splits(y, folds=5, seed=0, groups=groups))
    first = np.array([int(o.split("/o")[1]) < 20 for o in origin])   # 20 originals per class train, 10 held out
    held_out = cv([(np.flatnonzero(first), np.flatnonzero(~first))])
    assert naive > 0.9                       # a copy of every validation image sits in the training folds
    assert naive - grouped > 0.3
    assert abs(grouped - held_out) < 0.15, (grouped, held_out)
    for tr, va in make_splits(y, folds=5, seed=0, groups=groups):
        assert not set(np.array(groups)[tr]) & set(np.array(groups)[va])


def test_plugin_group_column_fills_manifest_groups(project: Project) -> None:
    rng = np.random.default_rng(8)
    root = data(project)
    rows = [("1", "a", "p1"), ("2", "a", "p1"), ("3", "b", "p2"), ("4", "b", "")]
    for image_id, _, _ in rows:
        write(root / "train" / f"{image_id}.png", texture(rng, 16, 16))
    (root / "labels.csv").write_text("id,label,patient\n" + "".join(f"{i},{c},{p}\n" for i, c, p in rows))
    layout = layouts.LabelsCSV(folder="train", csv="labels.csv")
    comp = Competition(slug=SLUG, classes=("a", "b"), metric="accuracy", train=layout, submission=Submission(),
                       group_column="patient")
    manifest = build_manifest(comp, root, "train", cache_dir=project.cache)
    assert manifest.ids == ("1.png", "2.png", "3.png", "4.png")
    assert manifest.groups == ("p1", "p1", "p2", "image:4.png")
    plain = Competition(slug=SLUG, classes=("a", "b"), metric="accuracy", train=layout, submission=Submission())
    assert build_manifest(plain, root, "train", cache_dir=project.cache).groups is None

    missing = Competition(slug=SLUG, classes=("a", "b"), metric="accuracy", train=layout,
                          submission=Submission(), group_column="site")
    with pytest.raises(DataError, match=r"labels.csv: no group column 'site'"):
        build_manifest(missing, root, "train", cache_dir=project.cache)


# -- the command -----------------------------------------------------------------------------------
PLUGIN = '''
from kaggle_kit.competition import Competition, Submission
from kaggle_kit.layouts import ClassFolders, TestFolder

COMPETITION = Competition(slug="toy", classes=("a", "b"), metric="accuracy", train=ClassFolders(),
                          test=TestFolder(), submission=Submission())
'''


def test_inspect_command_prints_the_audit_and_saves_it(project: Project, kit_env: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(9)
    (project.root / "competitions").mkdir(parents=True)
    (project.root / "competitions" / "toy.py").write_text(PLUGIN)
    for k in range(12):
        write(data(project) / "train" / "a" / f"{k}.png", texture(rng, 15, 20))
        write(data(project) / "train" / "b" / f"{k}.png", texture(rng, 30 + k, 40))
    write(data(project) / "test" / "copy.jpg", cv2.imread(str(data(project) / "train" / "b" / "3.png")))
    kit_env.setenv("KAGGLE_KIT_HOME", str(project.root))
    kit_env.setenv("COLUMNS", "200")

    assert main(["inspect", SLUG]) == 0

    out = capsys.readouterr().out
    assert "toy: 24 train images in 2 classes, 1 test images" in out
    assert "warning: image size predicts the class: CV accuracy" in out
    assert "12 of 12 'a' images are exactly 20x15" in out
    assert "1 of 1 test images are near-copies of train images (0 identical files)" in out
    assert f"saved {data(project) / 'audit.json'}" in out
    assert json.loads((data(project) / "audit.json").read_text())["test_copies"][0]["train_id"] == "b/3.png"
