"""Reading images of any mode as 8-bit RGB, checking them once, and resizing them.

Greyscale, RGBA (composited on white), palette, 16-bit and CMYK images are converted; truncated,
empty and non-image files raise :class:`BadImage` with the reason.

Example:
    >>> import numpy as np, cv2, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "grey.png"
    >>> _ = cv2.imwrite(str(p), np.full((10, 20), 128, np.uint8))
    >>> info = check_image(p)
    >>> (info.width, info.height, info.mode)
    (20, 10, 'L')
    >>> resize(read_rgb(p), 8, "pad").shape
    (8, 8, 3)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kaggle_kit.errors import DataError
from kaggle_kit.data.resize import RESIZERS, ResizeMode, resize  # noqa: F401  (resize's old home)

cv2.setNumThreads(1)  # the kit parallelises across images; nested threads only contend


class BadImage(DataError):
    """An image that cannot be used; the message is the reason (the caller adds the path)."""


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    mode: str         # L, RGB, RGBA, P (palette), CMYK, I;16 (16-bit), ...
    format: str       # jpeg, png, other


def sniff_format(head: bytes) -> str:
    if head.startswith(b"\xff\xd8"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    return "other"


def jpeg_components(data: bytes) -> int | None:
    """The number of colour components in a JPEG's frame header (4 = CMYK), or None."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return data[i + 9]
        i += 2 + length
    return None


def _png_mode(data: bytes) -> str:
    bit_depth, colour_type = data[24], data[25]
    mode = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}.get(colour_type, "?")
    return f"{mode};16" if bit_depth == 16 else mode


def _decode(data: bytes) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.size == 0:
        raise BadImage("not a decodable image")
    return arr


def _check_bytes(data: bytes) -> tuple[ImageInfo, np.ndarray]:
    if not data:
        raise BadImage("empty file (0 bytes)")
    fmt = sniff_format(data[:8])
    if fmt == "jpeg":
        tail = data.rstrip(b"\x00")[-2:]
        if tail != b"\xff\xd9":
            raise BadImage("truncated JPEG (no end-of-image marker)")
    elif fmt == "png" and b"IEND" not in data[-16:]:
        raise BadImage("truncated PNG (no IEND chunk)")
    arr = _decode(data)
    if fmt == "png" and len(data) > 26:
        mode = _png_mode(data)
    elif fmt == "jpeg" and jpeg_components(data) == 4:
        mode = "CMYK"
    else:
        channels = 1 if arr.ndim == 2 else arr.shape[2]
        mode = {1: "L", 3: "RGB", 4: "RGBA"}.get(channels, "?") + (";16" if arr.dtype == np.uint16 else "")
    return ImageInfo(width=arr.shape[1], height=arr.shape[0], mode=mode, format=fmt), arr


def check_image(path: Path) -> ImageInfo:
    """Decode ``path`` once and describe it; :class:`BadImage` says why it cannot be used."""
    return _check_bytes(Path(path).read_bytes())[0]


def to_rgb8(arr: np.ndarray) -> np.ndarray:
    """Any array cv2 decodes (grey, BGR, BGRA, 16-bit) -> contiguous 8-bit RGB."""
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = cv2.normalize(arr, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if arr.ndim == 2:
        return cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    if arr.shape[2] == 4:  # composite on white, so transparent parts are not black
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        bgr = arr[:, :, :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)
        return cv2.cvtColor(bgr.astype(np.uint8), cv2.COLOR_BGR2RGB)
    if arr.shape[2] == 2:  # grey + alpha
        return to_rgb8(_la_to_bgra(arr))
    return cv2.cvtColor(arr[:, :, :3], cv2.COLOR_BGR2RGB)


def _la_to_bgra(arr: np.ndarray) -> np.ndarray:
    grey, alpha = arr[:, :, 0], arr[:, :, 1]
    return np.dstack([grey, grey, grey, alpha])


def read_rgb(path: Path) -> np.ndarray:
    """Read ``path`` as an (H, W, 3) uint8 RGB array; :class:`BadImage` if it cannot be used."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BadImage(f"cannot read file ({e.strerror})") from None
    return decode_rgb(data)


def decode_rgb(data: bytes) -> np.ndarray:
    """Bytes of any supported image -> (H, W, 3) uint8 RGB (used by `serve` for uploads too)."""
    return to_rgb8(_check_bytes(data)[1])


# -- resizing (the modes are in kaggle_kit.data.resize) -------------------------------------------
def load_resized(path: Path, size: int, mode: str = "stretch") -> np.ndarray:
    return resize(read_rgb(path), size, mode)
