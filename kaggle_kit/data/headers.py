"""Image dimensions read from the file header, before anything is decoded.

OpenCV allocates the whole pixel buffer a header declares before it reads a single pixel, so a
74-byte PNG claiming 40000 x 40000 costs gigabytes (or raises). :func:`header_size` reads width and
height from the first bytes of PNG, JPEG, GIF, BMP, WebP, TIFF and PNM files, so that
:mod:`kaggle_kit.data.images` can refuse a file above the pixel limit (:func:`max_pixels`: the
``KAGGLE_KIT_MAX_IMAGE_PIXELS`` environment variable, default 100 megapixels) without decoding it.

Example:
    >>> import struct
    >>> gif = b"GIF89a" + struct.pack("<HH", 640, 480) + bytes(8)
    >>> header_size(gif), header_size(b"not an image")
    ((640, 480), None)
"""
from __future__ import annotations

import os
import struct

from kaggle_kit.errors import DataError

__all__ = ["DEFAULT_MAX_PIXELS", "ENV_MAX_PIXELS", "max_pixels", "header_size", "jpeg_frame"]

DEFAULT_MAX_PIXELS = 100_000_000
ENV_MAX_PIXELS = "KAGGLE_KIT_MAX_IMAGE_PIXELS"


def max_pixels(limit: int | None = None) -> int:
    """``limit`` if given, else ``$KAGGLE_KIT_MAX_IMAGE_PIXELS``, else 100 megapixels."""
    if limit is not None:
        return int(limit)
    raw = os.environ.get(ENV_MAX_PIXELS, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        raise DataError(f"{ENV_MAX_PIXELS}={raw!r}: not a number of pixels") from None
    if value < 1:
        raise DataError(f"{ENV_MAX_PIXELS}={raw!r}: must be at least 1")
    return value


def jpeg_frame(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, colour components) from a JPEG's start-of-frame header, or None."""
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
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height, data[i + 9]
        i += 2 + length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
    found: dict[int, int] = {}
    for n in range(count):
        entry = data[ifd + 2 + 12 * n: ifd + 14 + 12 * n]
        if len(entry) < 12:
            break
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):   # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    fields: list[int] = []
    for line in data[2:512].split(b"\n"):
        for word in line.split(b"#")[0].split():
            if not word.isdigit():
                return None
            fields.append(int(word))
            if len(fields) == 2:
                return fields[0], fields[1]
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the header declares them, or None for a format or header it cannot read."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data.startswith(b"\xff\xd8"):
            frame = jpeg_frame(data)
            return frame[:2] if frame else None
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data.startswith(b"BM"):
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)          # a negative height means top-down rows
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return width & 0x3FFF, height & 0x3FFF
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
            return None
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
        if data[:1] == b"P" and data[1:2] in b"123456" and len(data) > 2:
            return _pnm_size(data)
    except struct.error:   # a header cut short: the decoder reports the file as broken
        return None
    return None
