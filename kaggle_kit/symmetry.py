"""Symmetry groups a competition's images have (which flips and quarter turns keep a class), and TTA policies.

A plugin states it (``Competition(symmetries="d8")``); augmentation only draws the transforms the
group holds, the cached-activation fast path caches its :attr:`Symmetry.cached_views`, and TTA
averages over its :attr:`Symmetry.views` (a mirror on digits or text would teach the model a wrong
class, so ``none`` has the identity alone).

A view is an element of the dihedral group D8 of the square: ``k`` quarter turns counter-clockwise
after an optional horizontal mirror. Its 3x3 matrix maps an *output* pixel (x, y, 1) to the input
pixel it samples (the convention of ``keras.ops.image.affine_transform``), so views and the random
geometric augmentation compose into one matrix (:mod:`kaggle_kit.data.geometry`).

A TTA policy (:data:`TTA_POLICIES`) is the set of *view keys* whose predictions it averages: a
symmetry view, optionally magnified about the centre (``id@1.15``: the object 15 % larger, cropped to
the input size). A run scores each policy its symmetry allows on its out-of-fold predictions and
keeps the best (``kaggle_kit/training/tta.py``); ``predict`` uses that one.

Example:
    >>> [p.name for p in tta_candidates("hflip")]
    ['none', 'flip', 'scale', 'flip+scale']
    >>> split_key("hflip@1.15")
    ('hflip', 1.15)
    >>> list_symmetries()
    ['d8', 'hflip', 'none']
    >>> get_symmetry("hflip").views
    ('id', 'hflip')
    >>> import numpy as np
    >>> x = np.arange(4).reshape(1, 2, 2, 1)
    >>> apply_view("rot90", x)[0, :, :, 0].tolist()        # counter-clockwise, as np.rot90
    [[1, 3], [0, 2]]
    >>> apply_view(inverse("rot90"), apply_view("rot90", x)).tolist() == x.tolist()
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kaggle_kit.errors import KitError
from kaggle_kit.registry import Registry

__all__ = ["VIEWS", "Symmetry", "SYMMETRIES", "get_symmetry", "list_symmetries", "apply_view", "view_matrix",
           "inverse", "TTAPolicy", "TTA_POLICIES", "get_tta", "list_tta", "tta_candidates", "split_key", "check_tta",
           "SCALE"]

SCALE = 1.15                 # the magnification of the scale views

# name -> (quarter turns counter-clockwise, mirrored first); D8 ordered so a prefix is a useful subset
VIEWS: dict[str, tuple[int, bool]] = {
    "id": (0, False), "hflip": (0, True), "rot90": (1, False), "rot90_hflip": (1, True),
    "rot180": (2, False), "vflip": (2, True), "rot270": (3, False), "rot270_hflip": (3, True),
}


@dataclass(frozen=True, kw_only=True)
class Symmetry:
    """A symmetry group: its views (TTA), the subset cached for the fast path, and what it allows."""

    name: str
    views: tuple[str, ...]             # every element, the identity first
    cached_views: tuple[str, ...]      # passes over cached activations (a subset the cost allows)
    description: str = ""

    @property
    def mirrors(self) -> bool:
        return any(VIEWS[v][1] for v in self.views)

    @property
    def quarter_turns(self) -> bool:
        return any(VIEWS[v][0] for v in self.views)


SYMMETRIES: Registry[Symmetry] = Registry("symmetry")


def _add(sym: Symmetry) -> None:
    SYMMETRIES.add(sym.name, sym, source=__file__)


_add(Symmetry(name="none", views=("id",), cached_views=("id",),
              description="no flip or turn keeps a class (digits, text, charts)"))
_add(Symmetry(name="hflip", views=("id", "hflip"), cached_views=("id", "hflip"),
              description="a horizontal mirror keeps the class (photos, cartoons); the default"))
_add(Symmetry(name="d8", views=tuple(VIEWS), cached_views=("id", "hflip", "rot90", "rot90_hflip"),
              description="any quarter turn and mirror keeps the class (microscopy, satellite, pollen)"))


def get_symmetry(name: str) -> Symmetry:
    return SYMMETRIES.get(name)


def list_symmetries() -> list[str]:
    return SYMMETRIES.names()


def apply_view(name: str, x: np.ndarray) -> np.ndarray:
    """``x`` (N, H, W, C; square images for quarter turns) under view ``name``: mirror, then turn."""
    turns, mirror = VIEWS[name]
    if mirror:
        x = x[:, :, ::-1]
    return np.rot90(x, turns, axes=(1, 2)) if turns else x


def inverse(name: str) -> str:
    """The view that undoes ``name``."""
    turns, mirror = VIEWS[name]
    back = (turns if mirror else -turns) % 4         # a mirror conjugates a turn into its inverse
    return next(v for v, (t, m) in VIEWS.items() if t == back and m == mirror)


def view_matrix(name: str, size: int) -> np.ndarray:
    """The 3x3 output-to-input pixel matrix of view ``name`` on a ``size`` x ``size`` image."""
    turns, mirror = VIEWS[name]
    c = (size - 1) / 2
    shift = np.array([[1, 0, c], [0, 1, c], [0, 0, 1]], np.float64)
    unshift = np.array([[1, 0, -c], [0, 1, -c], [0, 0, 1]], np.float64)
    # output (x, y) of np.rot90 counter-clockwise once samples input (W-1-y, x): about the centre
    # that is (x, y) -> (-y, x); the mirror (x -> -x) is applied to the input first
    turn = np.linalg.matrix_power(np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], np.float64), turns)
    flip = np.diag([-1.0, 1.0, 1.0]) if mirror else np.eye(3)
    return shift @ flip @ turn @ unshift


# -- test-time augmentation policies ----------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TTAPolicy:
    """A named set of view keys (``view`` or ``view@zoom``) whose predictions are averaged."""

    name: str
    keys: tuple[str, ...]
    description: str = ""

    @property
    def views(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(split_key(k)[0] for k in self.keys))

    def allowed_by(self, symmetry: str) -> bool:
        return set(self.views) <= set(get_symmetry(symmetry).views)


TTA_POLICIES: Registry[TTAPolicy] = Registry("TTA policy")


def split_key(key: str) -> tuple[str, float]:
    """``"hflip@1.15"`` -> ``("hflip", 1.15)``; ``"rot90"`` -> ``("rot90", 1.0)``."""
    view, _, zoom = key.partition("@")
    return view, float(zoom) if zoom else 1.0


def _tta(name: str, keys: tuple[str, ...], description: str) -> None:
    TTA_POLICIES.add(name, TTAPolicy(name=name, keys=keys, description=description), source=__file__)


_D8 = tuple(VIEWS)
_tta("none", ("id",), "the images as they are")
_tta("flip", ("id", "hflip"), "and their horizontal mirrors")
_tta("d8_half", _D8[:4], "4 of the 8 flips and quarter turns (the views the cached fast path holds)")
_tta("d8", _D8, "all 8 flips and quarter turns")
_tta("scale", ("id", f"id@{SCALE}"), f"and the image magnified {SCALE}x about its centre")
_tta("flip+scale", ("id", "hflip", f"id@{SCALE}", f"hflip@{SCALE}"), f"flip, each also magnified {SCALE}x")


def get_tta(name: str) -> TTAPolicy:
    return TTA_POLICIES.get(name)


def list_tta() -> list[str]:
    return TTA_POLICIES.names()


def tta_candidates(symmetry: str, available: tuple[str, ...] | None = None) -> list[TTAPolicy]:
    """The policies ``symmetry`` allows (all of whose keys are ``available``, when given), cheapest first."""
    order = ["none", "flip", "d8_half", "d8", "scale", "flip+scale"]
    out = [get_tta(n) for n in order if get_tta(n).allowed_by(symmetry)]
    return [p for p in out if available is None or set(p.keys) <= set(available)]


def check_tta(name: str, symmetry: str, where: str) -> TTAPolicy:
    """Policy ``name``, or a one-line KitError when unknown or when ``symmetry`` forbids its views."""
    policy = get_tta(name)
    if not policy.allowed_by(symmetry):
        allowed = ", ".join(p.name for p in tta_candidates(symmetry))
        raise KitError(f"{where}: TTA {name!r} shows views ({', '.join(policy.views)}) that symmetry {symmetry!r} "
                       f"does not allow; allowed: {allowed}")
    return policy
