"""Perceptual hashes and near-duplicate search that scales to tens of thousands of images.

An image's hash describes the 16x16 lowest-frequency DCT coefficients of its 64x64 greyscale
thumbnail (the brightness term left out) as two 256-bit masks: ``bits``, which coefficients are
positive, and ``strong``, which are large enough (at least :data:`FLOOR`) for their sign to survive
resizing and JPEG re-compression. Two images are compared on the coefficients strong in both: they
are *near-duplicates* when at most ``threshold`` (a fraction, default 6%) of those signs differ.
Weak coefficients are left out because their signs are noise: smooth images (skies, tissue, blurry
photos) have many, and counting them would split their copies apart. A mirror image negates exactly
the odd-column coefficients, so mirrored copies are found by flipping those bits, at no cost.

Resizing, JPEG re-compression, brightness and contrast changes and mirroring keep copies within 5%
on real data; other photos differ on about half of the signs, and even different revolvers shot
alike on white differ on 9% or more (pistolas-vs-smartphones, see the README, `kaggle-kit inspect`). The price of that
precision is that a shift by 1% of the width already changes about 10% of the signs: shifted
copies are not near-duplicates. The *coarse* comparison, on the 8x8 lowest frequencies only,
tolerates such shifts but cannot tell similar product photos apart; it only widens the groups that
keep copies out of validation folds (``near_clusters(..., coarse=...)``), where joining two similar
photos costs nothing.

The search never loops over pairs in Python: identical hashes are merged first, then blocks of rows
are compared with numpy XOR + AND + popcount on the first two words (an exact filter: fewer signs
differ there than overall), and only the survivors are compared on all four.

Example:
    >>> rng = np.random.default_rng(0)
    >>> img = cv2.GaussianBlur(rng.integers(0, 255, (80, 60, 3), dtype=np.uint8), (9, 9), 3)
    >>> h = np.stack([perceptual_hash(img), perceptual_hash(cv2.resize(img, (45, 60))),
    ...               perceptual_hash(img[:, ::-1]), perceptual_hash(255 - img)])
    >>> difference(h[0], h[1:]).round(2).tolist()   # resized and mirrored copies are near, the negative is not
    [0.0, 0.0, 0.51]
    >>> near_clusters(h).tolist()
    [0, 0, 0, 1]
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from kaggle_kit.atomic import atomic_write_text
from kaggle_kit.errors import DataError
from kaggle_kit.data.images import BadImage, decode_rgb

__all__ = ["Progress", "THUMB", "FLOOR", "DEFAULT_THRESHOLD", "GROUP_COARSE_THRESHOLD", "MIN_COMMON",
           "VERSION", "ODD", "LOW", "popcount", "perceptual_hash", "to_hex", "from_hex", "difference",
           "NearGraph", "near_graph", "near_clusters", "nearest", "FileHashes", "hash_files"]

Progress = Callable[[int, int], None]

THUMB = 64                      # side of the greyscale thumbnail the DCT is taken of
FLOOR = 4.0                     # |coefficient| (orthonormal DCT of 0-255 pixels) whose sign is trusted
DEFAULT_THRESHOLD = 0.06        # share of differing signs: copies <= 0.06, other photos >= 0.09
GROUP_COARSE_THRESHOLD = 0.06   # the same on the 8x8 lowest frequencies, for leak groups
MIN_COMMON = 32                 # fewer strong coefficients in common: too little to compare
VERSION = "phash3"              # names the cache files; change it when the hash changes
BITS, STRONG = 0, 1             # hash[..., BITS, :] signs, hash[..., STRONG, :] trusted coefficients


def _pattern(keep: np.ndarray) -> np.ndarray:
    """A 16x16 boolean pattern -> the four uint64 words it packs to."""
    return np.packbits(keep.ravel()).view(">u8").astype(np.uint64)


_ROWS, _COLS = np.mgrid[0:16, 0:16]
ODD = _pattern(_COLS % 2 == 1)                  # the bits a mirror image flips
LOW = _pattern((_ROWS < 8) & (_COLS < 8))       # the coarse 8x8 lowest frequencies (words 0 and 1)
_ALL = np.full(4, ~np.uint64(0), np.uint64)
_BYTE_BITS = np.array([bin(v).count("1") for v in range(256)], np.uint8)


def _popcount_bytes(x: np.ndarray) -> np.ndarray:
    """Set bits per uint64 via a byte table (numpy < 2 has no bitwise_count)."""
    x = np.ascontiguousarray(x, np.uint64)
    return _BYTE_BITS[x.view(np.uint8)].reshape(*x.shape, 8).sum(-1, dtype=np.uint8)


popcount = getattr(np, "bitwise_count", _popcount_bytes)
_CHUNK_ELEMENTS = 1 << 22                       # pairs compared per block (tens of MB of temporaries)


def perceptual_hash(rgb: np.ndarray) -> np.ndarray:
    """An (H, W, 3) RGB or (H, W) grey uint8 image -> a (2, 4) uint64 array: signs, strong coefficients."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    small = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
    block = cv2.dct(small)[:16, :16]
    block[0, 0] = 0.0                           # brightness
    return np.stack([_pattern(block > 0), _pattern(np.abs(block) >= FLOOR)])


def to_hex(h: np.ndarray) -> str:
    """A (2, 4) hash as 64 hex characters (for JSON caches)."""
    return h.astype(">u8").tobytes().hex()


def from_hex(text: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(text), ">u8").astype(np.uint64).reshape(2, 4)


def difference(a: np.ndarray, b: np.ndarray, *, coarse: bool = False) -> np.ndarray:
    """The share of differing signs between hash(es) ``a`` and ``b`` (or b's mirror, whichever is
    smaller) among the coefficients strong in both; 1.0 where fewer than :data:`MIN_COMMON` are."""
    a, b = np.asarray(a), np.asarray(b)
    both = a[..., STRONG, :] & b[..., STRONG, :] & (LOW if coarse else _ALL)
    common = popcount(both).sum(-1, dtype=np.int64)
    flips = a[..., BITS, :] ^ b[..., BITS, :]
    plain = popcount(flips & both).sum(-1, dtype=np.int64)
    mirrored = popcount((flips ^ ODD) & both).sum(-1, dtype=np.int64)
    share = np.minimum(plain, mirrored) / np.maximum(common, 1)
    return np.where(common >= (MIN_COMMON // 2 if coarse else MIN_COMMON), share, 1.0)


# -- search ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NearGraph:
    """Near-duplicate edges between distinct hashes; ``node`` maps each image to its hash's node."""

    node: np.ndarray
    i: np.ndarray
    j: np.ndarray
    fine: np.ndarray            # per edge: a near-duplicate (else joined by the coarse comparison only)

    def clusters(self, *, coarse: bool = False) -> np.ndarray:
        """Connected components: one label per image, numbered 0..k-1 in order of their first image.

        ``coarse``: follow the coarse edges too (shift-tolerant groups for validation folds).
        """
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        if len(self.node) == 0:
            return np.zeros(0, np.int64)
        keep = np.ones(len(self.i), bool) if coarse else self.fine
        n = int(self.node.max()) + 1
        graph = coo_matrix((np.ones(int(keep.sum()), np.int8), (self.i[keep], self.j[keep])), shape=(n, n))
        labels = connected_components(graph, directed=False)[1][self.node]
        _, first, relabel = np.unique(labels, return_index=True, return_inverse=True)
        return np.argsort(np.argsort(first))[relabel.ravel()].astype(np.int64)


def near_graph(hashes: np.ndarray, threshold: float = DEFAULT_THRESHOLD, *, coarse: float | None = None
               ) -> NearGraph:
    """Every near pair among ``hashes`` (and, with ``coarse``, every coarse-near pair), found once."""
    if len(hashes) == 0:
        empty = np.zeros(0, np.int64)
        return NearGraph(node=empty, i=empty, j=empty, fine=np.zeros(0, bool))
    unique, inverse = np.unique(hashes.reshape(len(hashes), -1), axis=0, return_inverse=True)
    i, j, d = _pairs(unique.reshape(-1, 2, 4), unique.reshape(-1, 2, 4), threshold, coarse=coarse, upper=True)
    return NearGraph(node=inverse.ravel().astype(np.int64), i=i, j=j, fine=d <= threshold)


def near_clusters(hashes: np.ndarray, threshold: float = DEFAULT_THRESHOLD, *, coarse: float | None = None
                  ) -> np.ndarray:
    """One cluster label per image (connected components of near pairs, and coarse pairs if given)."""
    return near_graph(hashes, threshold, coarse=coarse).clusters(coarse=coarse is not None)


def nearest(queries: np.ndarray, targets: np.ndarray, threshold: float = DEFAULT_THRESHOLD
            ) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the index of the closest target within ``threshold`` and their difference;
    -1 and 1.0 where no target is that close."""
    index = np.full(len(queries), -1, np.int64)
    diff = np.ones(len(queries))
    if len(queries) == 0 or len(targets) == 0:
        return index, diff
    uq, q_inv = np.unique(queries.reshape(len(queries), -1), axis=0, return_inverse=True)
    ut, t_first = np.unique(targets.reshape(len(targets), -1), axis=0, return_index=True)
    i, j, d = _pairs(uq.reshape(-1, 2, 4), ut.reshape(-1, 2, 4), threshold, coarse=None, upper=False)
    best_idx = np.full(len(uq), -1, np.int64)
    best_d = np.ones(len(uq))
    order = np.lexsort((d, i))                        # by query, then difference
    hit, first = np.unique(i[order], return_index=True)
    best_idx[hit] = t_first[j[order][first]]
    best_d[hit] = d[order][first]
    q_inv = q_inv.ravel()
    return best_idx[q_inv], best_d[q_inv]


def _pairs(a: np.ndarray, b: np.ndarray, threshold: float, *, coarse: float | None, upper: bool
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (i, j, difference) of near pairs a[i], b[j] (i < j when ``upper``): difference at most
    ``threshold``, or coarse difference at most ``coarse`` when given."""
    rows = max(1, _CHUNK_ELEMENTS // max(1, len(b)))
    # Exact filter on word 0 alone: a near pair has at most threshold * 256 differing strong signs
    # in all, so at most that many in word 0; a coarse-near pair at most coarse * 64 among the LOW
    # bits, so at most that many among word 0's LOW bits.
    limit, coarse_limit = int(threshold * 256), int((coarse or 0.0) * 64)
    bits_a, strong_a = np.ascontiguousarray(a[:, BITS, 0]), np.ascontiguousarray(a[:, STRONG, 0])
    bits_b, strong_b = np.ascontiguousarray(b[:, BITS, 0]), np.ascontiguousarray(b[:, STRONG, 0])

    def block(r0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r1 = min(r0 + rows, len(a))
        c0 = r0 if upper else 0
        both = strong_a[r0:r1, None] & strong_b[None, c0:]
        plain = bits_a[r0:r1, None] ^ bits_b[None, c0:]
        mirrored = plain ^ ODD[0]
        plain &= both
        mirrored &= both
        near = np.minimum(popcount(plain), popcount(mirrored)) <= limit
        if coarse is not None:
            plain &= LOW[0]
            mirrored &= LOW[0]
            near |= np.minimum(popcount(plain), popcount(mirrored)) <= coarse_limit
        i, j = np.nonzero(near)
        i, j = i + r0, j + c0
        if upper:
            keep = j > i
            i, j = i[keep], j[keep]
        d = difference(a[i], b[j])
        keep = d <= threshold
        if coarse is not None:
            keep |= difference(a[i], b[j], coarse=True) <= coarse
        return i[keep], j[keep], d[keep]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:   # numpy releases the GIL
        parts = list(pool.map(block, range(0, len(a), rows)))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    i, j, d = (np.concatenate([p[k] for p in parts]) for k in range(3))
    return i.astype(np.int64), j.astype(np.int64), d


# -- files -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileHashes:
    """Per file: the SHA-1 of its bytes, its size, and its perceptual hash (an (n, 2, 4) array)."""

    digests: tuple[str, ...]
    nbytes: np.ndarray
    hashes: np.ndarray

    def __len__(self) -> int:
        return len(self.digests)

    def take(self, start: int, stop: int | None = None) -> "FileHashes":
        return FileHashes(self.digests[start:stop], self.nbytes[start:stop], self.hashes[start:stop])


def hash_files(paths: Sequence[Path], cache_file: Path, progress: Progress | None = None) -> FileHashes:
    """Hash each file (in parallel), reusing results cached in ``cache_file`` by path, size and mtime.

    Each file is read and decoded once; :class:`DataError` names a file that cannot be decoded.
    """
    try:
        cache = json.loads(Path(cache_file).read_text())
    except (OSError, ValueError):
        cache = {}
    keys = [_key(p) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in cache]

    def one(i: int) -> list:
        try:
            data = Path(paths[i]).read_bytes()
            return [hashlib.sha1(data).hexdigest(), len(data), to_hex(perceptual_hash(decode_rgb(data)))]
        except BadImage as e:
            raise DataError(f"{paths[i]}: {e}") from None
        except OSError as e:
            raise DataError(f"{paths[i]}: cannot read file ({e.strerror})") from None

    done = len(paths) - len(todo)
    if todo:
        try:
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
                for i, entry in zip(todo, pool.map(one, todo)):
                    cache[keys[i]] = entry
                    done += 1
                    if progress and done % 256 == 0:
                        progress(done, len(paths))
        finally:  # what was hashed is kept even when a file fails or the user interrupts
            atomic_write_text(cache_file, json.dumps(cache, separators=(",", ":")))
    if progress:
        progress(len(paths), len(paths))
    entries = [cache[k] for k in keys]
    hashes = np.stack([from_hex(e[2]) for e in entries]) if entries else np.zeros((0, 2, 4), np.uint64)
    return FileHashes(digests=tuple(e[0] for e in entries), nbytes=np.array([e[1] for e in entries], np.int64),
                      hashes=hashes)


def _key(path: Path) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}|missing"
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"
