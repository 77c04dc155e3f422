"""Resize modes by name: how an image of any shape is fitted to the training square.

OpenCV and NumPy load on the first resize, so listing the modes (``kaggle-kit --help``,
:func:`list_resize_modes`, :meth:`TrainConfig.validate`) stays fast.

Example:
    >>> import numpy as np
    >>> img = np.zeros((10, 20, 3), np.uint8)
    >>> [resize(img, 8, mode).shape for mode in list_resize_modes()]
    [(8, 8, 3), (8, 8, 3), (8, 8, 3)]
    >>> get_resize_mode("pad").keeps_aspect, get_resize_mode("stretch").keeps_aspect
    (True, False)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Callable, Literal

from kaggle_kit.registry import Registry

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ResizeMode", "Resizer", "RESIZERS", "resize", "get_resize_mode", "list_resize_modes",
           "resize_stretch", "resize_crop", "resize_pad"]

ResizeMode = Literal["stretch", "crop", "pad"]


@dataclass(frozen=True, kw_only=True)
class Resizer:
    name: str
    fn: Callable[["np.ndarray", int], "np.ndarray"]
    keeps_aspect: bool        # objects keep their proportions (crop cuts the edges, pad adds borders)
    description: str = ""


RESIZERS: Registry[Resizer] = Registry("resize mode")


def resize_mode(name: str, *, keeps_aspect: bool):
    """Register ``fn(img, size) -> (size, size, 3) image`` as mode ``name``, described by its docstring."""

    def add(fn):
        RESIZERS.add(name, Resizer(name=name, fn=fn, keeps_aspect=keeps_aspect,
                                   description=(fn.__doc__ or "").strip().split("\n", 1)[0]))
        return fn

    return add


def get_resize_mode(name: str) -> Resizer:
    return RESIZERS.get(name)


def list_resize_modes() -> list[str]:
    return RESIZERS.names()


def resize(img: "np.ndarray", size: int, mode: str = "stretch") -> "np.ndarray":
    return RESIZERS.get(mode).fn(img, size)


@cache
def _cv2():
    import cv2

    cv2.setNumThreads(1)  # the kit parallelises across images; nested threads only contend
    return cv2


def _interp(src: tuple[int, int], dst: tuple[int, int]) -> int:
    cv2 = _cv2()
    return cv2.INTER_AREA if dst[0] < src[0] or dst[1] < src[1] else cv2.INTER_LINEAR


@resize_mode("stretch", keeps_aspect=False)
def resize_stretch(img: "np.ndarray", size: int) -> "np.ndarray":
    """Scale each side to ``size`` (the aspect ratio changes)."""
    return _cv2().resize(img, (size, size), interpolation=_interp(img.shape[:2], (size, size)))


@resize_mode("crop", keeps_aspect=True)
def resize_crop(img: "np.ndarray", size: int) -> "np.ndarray":
    """Scale the short side to ``size``, then cut the centre square."""
    import numpy as np

    h, w = img.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    img = _cv2().resize(img, (nw, nh), interpolation=_interp((h, w), (nh, nw)))
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(img[top:top + size, left:left + size])


@resize_mode("pad", keeps_aspect=True)
def resize_pad(img: "np.ndarray", size: int) -> "np.ndarray":
    """Scale the long side to ``size`` keeping the aspect ratio, pad the rest with grey."""
    import numpy as np

    h, w = img.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    img = _cv2().resize(img, (nw, nh), interpolation=_interp((h, w), (nh, nw)))
    out = np.full((size, size, 3), 128, np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top:top + nh, left:left + nw] = img
    return out
