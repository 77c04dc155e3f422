"""Reading every image mode as 8-bit RGB with the right colours, rejecting broken files, resizing."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
from PIL import Image

from kaggle_kit.data.images import BadImage, check_image, decode_rgb, read_rgb
from kaggle_kit.data.resize import resize
from kaggle_kit.registry import UnknownName

WriteImage = Callable[..., Path]  # the conftest fixture


def assert_rgb8(img: np.ndarray, shape: tuple[int, int]) -> None:
    assert img.dtype == np.uint8 and img.shape == (*shape, 3) and img.flags["C_CONTIGUOUS"]


# -- modes -----------------------------------------------------------------------------------
def test_rgb_png_keeps_channel_order(tmp_path: Path, write_image: WriteImage) -> None:
    p = write_image(tmp_path / "red.png", (220, 30, 60), size=5)
    img = read_rgb(p)
    assert_rgb8(img, (5, 5))
    assert img[0, 0].tolist() == [220, 30, 60]
    assert check_image(p).mode == "RGB" and check_image(p).format == "png"


def test_rgb_jpeg_colour(tmp_path: Path) -> None:
    p = tmp_path / "a.jpg"
    Image.new("RGB", (8, 6), (200, 30, 60)).save(p, quality=95)
    img = read_rgb(p)
    assert_rgb8(img, (6, 8))
    assert np.abs(img[3, 4].astype(int) - [200, 30, 60]).max() <= 6
    assert check_image(p).format == "jpeg"


def test_greyscale(tmp_path: Path) -> None:
    p = tmp_path / "grey.png"
    assert cv2.imwrite(str(p), np.full((3, 7), 77, np.uint8))
    img = read_rgb(p)
    assert_rgb8(img, (3, 7))
    assert (img == 77).all()
    info = check_image(p)
    assert (info.width, info.height, info.mode) == (7, 3, "L")


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    p = tmp_path / "rgba.png"
    im = Image.new("RGBA", (3, 1))
    im.putdata([(255, 0, 0, 255), (0, 0, 0, 0), (0, 0, 0, 128)])  # opaque red, transparent, half black
    im.save(p)
    img = read_rgb(p)
    assert_rgb8(img, (1, 3))
    assert img[0, 0].tolist() == [255, 0, 0]
    assert img[0, 1].tolist() == [255, 255, 255]
    assert np.abs(img[0, 2].astype(int) - 127).max() <= 1
    assert check_image(p).mode == "RGBA"


def test_palette_png(tmp_path: Path) -> None:
    p = tmp_path / "palette.png"
    im = Image.new("P", (2, 2))
    im.putpalette([10, 200, 30, 250, 5, 100] + [0] * (256 * 3 - 6))
    im.putdata([0, 1, 1, 0])
    im.save(p)
    img = read_rgb(p)
    assert_rgb8(img, (2, 2))
    assert img.tolist() == [[[10, 200, 30], [250, 5, 100]], [[250, 5, 100], [10, 200, 30]]]
    assert check_image(p).mode == "P"


def test_sixteen_bit_png(tmp_path: Path) -> None:
    p = tmp_path / "deep.png"
    bgr16 = np.empty((2, 3, 3), np.uint16)
    bgr16[:] = (0x0100, 0xFFFF, 0x8000)  # B, G, R as cv2 writes them
    assert cv2.imwrite(str(p), bgr16)
    img = read_rgb(p)
    assert_rgb8(img, (2, 3))
    assert img[1, 2].tolist() == [128, 255, 1]
    assert check_image(p).mode == "RGB;16"


def test_sixteen_bit_greyscale_png(tmp_path: Path) -> None:
    p = tmp_path / "deep-grey.png"
    assert cv2.imwrite(str(p), np.full((2, 2), 0x4000, np.uint16))
    assert (read_rgb(p) == 64).all()
    assert check_image(p).mode == "L;16"


def test_cmyk_jpeg(tmp_path: Path) -> None:
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(p, quality=95)  # pure red in CMYK
    img = read_rgb(p)
    assert_rgb8(img, (8, 8))
    assert np.abs(img[4, 4].astype(int) - [255, 0, 0]).max() <= 6
    assert check_image(p).mode == "CMYK"
    q = tmp_path / "cmyk-green.jpg"
    Image.new("CMYK", (8, 8), (255, 0, 255, 0)).save(q, quality=95)
    assert np.abs(read_rgb(q)[4, 4].astype(int) - [0, 255, 0]).max() <= 6


def test_decode_rgb_of_bytes_matches_read_rgb(tmp_path: Path, write_image: WriteImage) -> None:
    p = write_image(tmp_path / "x.png", (1, 2, 3))
    assert np.array_equal(decode_rgb(p.read_bytes()), read_rgb(p))


# -- broken files ----------------------------------------------------------------------------
def jpeg_bytes(tmp_path: Path) -> bytes:
    p = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(p)
    return p.read_bytes()


@pytest.mark.parametrize("name, make, reason", [
    ("truncated.jpg", lambda good: good[: len(good) // 2], "truncated JPEG (no end-of-image marker)"),
    ("empty.jpg", lambda good: b"", "empty file (0 bytes)"),
    ("text.jpg", lambda good: b"this is not an image\n", "not a decodable image"),
])
def test_broken_files_raise_bad_image_with_reason(tmp_path: Path, name, make, reason: str) -> None:
    p = tmp_path / name
    p.write_bytes(make(jpeg_bytes(tmp_path)))
    with pytest.raises(BadImage) as e:
        check_image(p)
    assert str(e.value) == reason
    with pytest.raises(BadImage) as e:
        read_rgb(p)
    assert str(e.value) == reason


def test_truncated_png(tmp_path: Path, write_image: WriteImage) -> None:
    p = write_image(tmp_path / "x.png", size=16)
    p.write_bytes(p.read_bytes()[:-20])
    with pytest.raises(BadImage, match="truncated PNG"):
        check_image(p)


def test_missing_file_is_a_bad_image(tmp_path: Path) -> None:
    with pytest.raises(BadImage, match="cannot read file"):
        read_rgb(tmp_path / "gone.png")


# -- resizing --------------------------------------------------------------------------------
def test_resize_modes() -> None:
    wide = np.zeros((10, 20, 3), np.uint8)
    wide[:, :10] = 255                         # left half white, right half black
    stretched = resize(wide, 8, "stretch")
    assert stretched.shape == (8, 8, 3)
    assert stretched[:, 0].min() == 255 and stretched[:, -1].max() == 0
    cropped = resize(wide, 8, "crop")          # the centre square straddles the edge
    assert cropped.shape == (8, 8, 3)
    assert cropped[:, 0].min() == 255 and cropped[:, -1].max() == 0
    padded = resize(np.full((10, 20, 3), 255, np.uint8), 8, "pad")
    assert padded.shape == (8, 8, 3)
    assert (padded[0] == 128).all() and (padded[-1] == 128).all()   # grey bars above and below
    assert (padded[4] == 255).all()


def test_unknown_resize_mode() -> None:
    with pytest.raises(UnknownName, match="stretch"):
        resize(np.zeros((4, 4, 3), np.uint8), 2, "squash")


# -- sizes from headers, and the pixel limit (issue #12, fault 2) ------------------------------
@pytest.mark.parametrize("fmt, params", [
    ("PNG", {}), ("JPEG", {}), ("JPEG", {"progressive": True}), ("GIF", {}), ("BMP", {}),
    ("WEBP", {"lossless": False}), ("WEBP", {"lossless": True}), ("TIFF", {}), ("PPM", {}),
])
def test_header_size_reads_every_supported_format(tmp_path: Path, fmt: str, params: dict) -> None:
    from kaggle_kit.data.headers import header_size

    p = tmp_path / f"x.{fmt.lower()}"
    Image.new("RGB", (37, 23), (10, 200, 30)).save(p, format=fmt, **params)
    assert header_size(p.read_bytes()) == (37, 23)


def test_webp_with_alpha_has_an_extended_header(tmp_path: Path) -> None:
    from kaggle_kit.data.headers import header_size

    p = tmp_path / "a.webp"
    Image.new("RGBA", (300, 5), (1, 2, 3, 100)).save(p, format="WEBP", lossless=False)
    assert header_size(p.read_bytes()) == (300, 5)


def test_unknown_or_cut_headers_give_no_size() -> None:
    from kaggle_kit.data.headers import header_size

    assert header_size(b"hello") is None
    assert header_size(b"\x89PNG\r\n\x1a\n\x00\x00") is None
    assert header_size(b"BM\x00") is None


def test_a_png_declaring_40000_squared_is_refused_before_decoding(header_bomb, monkeypatch) -> None:
    from kaggle_kit.data.images import ImageTooLarge

    data = header_bomb()
    assert len(data) == 74
    with pytest.raises(ImageTooLarge, match=r"40000 x 40000 pixels \(1,600,000,000\), over the limit of 100,000,000"):
        decode_rgb(data)
    small = header_bomb(20, 20)        # the same file declaring a small size is checked as usual
    with pytest.raises(BadImage) as e:
        decode_rgb(small, max_pixels=10)
    assert isinstance(e.value, ImageTooLarge)
    monkeypatch.setenv("KAGGLE_KIT_MAX_IMAGE_PIXELS", "100")
    with pytest.raises(ImageTooLarge, match="over the limit of 100 "):
        decode_rgb(small)
    monkeypatch.setenv("KAGGLE_KIT_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(Exception, match="KAGGLE_KIT_MAX_IMAGE_PIXELS='lots': not a number"):
        decode_rgb(small)


def test_images_under_the_limit_read_as_before(tmp_path: Path, write_image: WriteImage) -> None:
    p = write_image(tmp_path / "ok.png", (1, 2, 3), size=10)
    assert read_rgb(p, max_pixels=100).shape == (10, 10, 3)
    assert check_image(p, max_pixels=100).width == 10
