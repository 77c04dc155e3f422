"""Sets augmented from a few originals: distinct synthetic pictures and their copies.

``original(rng)`` draws a picture nothing else resembles (a colour gradient, a texture, a few shapes of
random colours); ``copy_of(img, rng)`` turns, flips, shifts, crops and colour-jitters it the way a data
set built from a few originals does. ``write_set(folder, ...)`` writes both as PNG files named
``<original>_<copy>.png`` (copy 0 is the original itself) and returns the original of each file.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["original", "copy_of", "write_set"]


def original(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """A BGR uint8 picture: a gradient between two random colours, a blurred texture, 3-6 shapes."""
    t = np.linspace(0, 1, size, dtype=np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.clip(np.cos(angle) * t[None, :] + np.sin(angle) * t[:, None], 0, 1)[..., None]
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = a * (1 - ramp) + b * ramp
    texture = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), rng.uniform(1, 6))
    img += texture[..., None] / (texture.std() + 1e-6) * rng.uniform(5, 30) * rng.uniform(0.3, 1, 3)
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(3, 7)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = tuple(int(c) for c in rng.integers(0, size, 2))
        kind = rng.integers(0, 4)
        if kind == 0:
            cv2.circle(img, centre, int(rng.integers(size // 12, size // 3)), colour, -1)
        elif kind == 1:
            corner = tuple(int(c) for c in rng.integers(0, size, 2))
            cv2.rectangle(img, centre, corner, colour, -1)
        elif kind == 2:
            pts = rng.integers(0, size, (int(rng.integers(3, 6)), 2)).astype(np.int32)
            cv2.fillPoly(img, [pts], colour)
        else:
            end = tuple(int(c) for c in rng.integers(0, size, 2))
            cv2.line(img, centre, end, colour, int(rng.integers(2, 8)))
    return img


def copy_of(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A quarter turn and/or flip, a shift of up to 10%, a crop to 80-100%, and colour jitter."""
    h, w = img.shape[:2]
    out = np.rot90(img, int(rng.integers(0, 4)))
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = np.ascontiguousarray(out)
    dx, dy = (rng.uniform(-0.1, 0.1, 2) * (w, h)).round()
    out = cv2.warpAffine(out, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REFLECT)
    side = rng.uniform(0.8, 1.0)
    ch, cw = int(h * side), int(w * side)
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = cv2.resize(out[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180                     # hue
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.75, 1.25), 0, 255)       # saturation
    out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
    out = (out - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-25, 25)      # contrast, brightness
    return np.clip(out, 0, 255).astype(np.uint8)


def write_set(folder: Path, originals: int, copies: int, seed: int = 0, size: int = 96) -> dict[str, int]:
    """``originals`` pictures and ``copies`` copies of each under ``folder``; file name -> its original."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = {}
    for k in range(originals):
        img = original(rng, size)
        for c in range(copies + 1):
            name = f"{k}_{c}.png"
            assert cv2.imwrite(str(folder / name), img if c == 0 else copy_of(img, rng))
            source[name] = k
    return source
