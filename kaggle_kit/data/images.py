"""Reading images of any mode as 8-bit RGB, checking them once, and resizing them.

Greyscale, RGBA (composited on white), palette, 16-bit and CMYK images are converted; truncated,
empty and non-image files raise :class:`BadImage` with the reason. Every decode checks the size the
header declares first: above the pixel limit (``max_pixels=``, else ``KAGGLE_KIT_MAX_IMAGE_PIXELS``,
default 100 megapixels) it raises :class:`ImageTooLarge` without decoding anything.

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

from kaggle_kit.data.headers import ENV_MAX_PIXELS, header_size, jpeg_frame
from kaggle_kit.data.headers import max_pixels as pixel_limit
from kaggle_kit.errors import DataError
from kaggle_kit.data.resize import resize

__all__ = ["BadImage", "ImageTooLarge", "ImageInfo", "sniff_format", "jpeg_components", "check_pixels",
           "check_image", "to_rgb8", "read_rgb", "decode_rgb", "load_resized"]

cv2.setNumThreads(1)  # the kit parallelises across images; nested threads only contend


class BadImage(DataError):
    """An image that cannot be used; the message is the reason (the caller adds the path)."""


class ImageTooLarge(BadImage):
    """An image whose header declares more pixels than the limit; it is never decoded."""


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
    frame = jpeg_frame(data)
    return frame[2] if frame else None


def _png_mode(data: bytes) -> str:
    bit_depth, colour_type = data[24], data[25]
    mode = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}.get(colour_type, "?")
    return f"{mode};16" if bit_depth == 16 else mode


def check_pixels(data: bytes, limit: int | None = None) -> tuple[int, int] | None:
    """The header's (width, height), or None if unknown; :class:`ImageTooLarge` above the pixel limit.

    >>> import struct
    >>> check_pixels(b"GIF89a" + struct.pack("<HH", 640, 480) + bytes(8), limit=1000)
    Traceback (most recent call last):
    ...
    kaggle_kit.data.images.ImageTooLarge: image too large: its header declares 640 x 480 pixels (307,200), over the limit of 1,000 (KAGGLE_KIT_MAX_IMAGE_PIXELS)
    """
    size = header_size(data)
    allowed = pixel_limit(limit)
    if size is not None and size[0] * size[1] > allowed:
        width, height = size
        raise ImageTooLarge(f"image too large: its header declares {width} x {height} pixels "
                            f"({width * height:,}), over the limit of {allowed:,} ({ENV_MAX_PIXELS})")
    return size


def _decode(data: bytes) -> np.ndarray:
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:   # OpenCV's own checks (e.g. its pixel limit for a format the header parser skips)
        raise BadImage(f"not a decodable image ({str(e).strip().splitlines()[-1][:200]})") from None
    if arr is None or arr.size == 0:
        raise BadImage("not a decodable image")
    return arr


def _check_bytes(data: bytes, max_pixels: int | None = None) -> tuple[ImageInfo, np.ndarray]:
    if not data:
        raise BadImage("empty file (0 bytes)")
    check_pixels(data, max_pixels)
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


def check_image(path: Path, *, max_pixels: int | None = None) -> ImageInfo:
    """Decode ``path`` once and describe it; :class:`BadImage` says why it cannot be used."""
    return _check_bytes(Path(path).read_bytes(), max_pixels)[0]


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


def read_rgb(path: Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Read ``path`` as an (H, W, 3) uint8 RGB array; :class:`BadImage` if it cannot be used."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BadImage(f"cannot read file ({e.strerror})") from None
    return decode_rgb(data, max_pixels=max_pixels)


def decode_rgb(data: bytes, *, max_pixels: int | None = None) -> np.ndarray:
    """Bytes of any supported image -> (H, W, 3) uint8 RGB (used by `serve` for uploads too)."""
    return to_rgb8(_check_bytes(data, max_pixels)[1])


# -- resizing (the modes are in kaggle_kit.data.resize) -------------------------------------------
def load_resized(path: Path, size: int, mode: str = "stretch") -> np.ndarray:
    return resize(read_rgb(path), size, mode)
