"""Reading pictures: one size limit, the EXIF orientation applied, and truncated files reported.

Every picture cgc reads goes through `image_size` (header only) before any pixel is decoded, so
that a header declaring 50000x50000 pixels is refused in one line instead of exhausting memory;
the limit is `--max-pixels` (environment variable CGC_MAX_PIXELS, which worker processes
inherit). Sizes and pixels are those of the picture as shown, EXIF orientation applied, as
OpenCV's imread and Label Studio (where the boxes are drawn) use them.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from cgc.errors import InputError

MAX_PIXELS_ENV = "CGC_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 100_000_000  # 100 megapixels: above any camera's photos, far below what exhausts memory
EXIF_ORIENTATION = 0x0112
SWAPPED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that turn the picture by 90 degrees
EXIF_HEADER_FORMATS = {"JPEG", "MPO", "TIFF", "WEBP"}
JPEG_SUFFIXES = (".jpg", ".jpeg")
JPEG_END = b"\xff\xd9"  # the end-of-image marker; entropy-coded data can never hold it (0xFF is stuffed)
JPEG_TAIL_BYTES = 4096  # where the marker is looked for: some writers pad the file after it
TRUNCATED_JPEG = "truncated JPEG (no end-of-image marker): part of the picture is missing"

Image.MAX_IMAGE_PIXELS = None  # cgc applies its own limit, before decoding, with a message naming the file


def max_pixels() -> int:
    """The largest picture (width x height) cgc decodes."""
    value = os.environ.get(MAX_PIXELS_ENV)
    return int(value) if value else DEFAULT_MAX_PIXELS


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of a picture as shown, from its header only; refuses one above `max_pixels`."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            # EXIF sits in the header of these formats; PIL would decode a whole PNG to look for it
            exif = image.getexif() if image.format in EXIF_HEADER_FORMATS else {}
            if exif.get(EXIF_ORIENTATION) in SWAPPED_ORIENTATIONS:
                width, height = height, width
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot read image ({exc})", path) from None
    refuse_above_limit(width, height, path)
    return width, height


def check_pixel_limit(path: str | Path) -> None:
    """Refuse a file whose header declares more than `max_pixels`; a header PIL cannot read passes (the decoder
    that follows reports it)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return
    refuse_above_limit(width, height, path)


def refuse_above_limit(width: int, height: int, path: str | Path) -> None:
    """The size limit, for a reader that has the header open already."""
    limit = max_pixels()
    if width * height > limit:
        raise InputError(f"declares {width}x{height} pixels, more than the limit of {limit} "
                         f"(raise it with --max-pixels)", path)


def check_picture(path: str | Path) -> tuple[int, int]:
    """(width, height) of a picture that can be used, without decoding it: header readable, within the size
    limit, and for a JPEG, not cut off."""
    path = Path(path)
    size = image_size(path)
    refuse_truncated(path)
    return size


def refuse_truncated(path: Path) -> None:
    if path.suffix.lower() in JPEG_SUFFIXES and not jpeg_is_complete(path):
        raise InputError(TRUNCATED_JPEG, path)


def read_bgr(path: str | Path) -> np.ndarray:
    """The picture as shown, as OpenCV holds it (H x W x 3 uint8, BGR); refuses undecodable or truncated files."""
    path = Path(path)
    check_pixel_limit(path)
    picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if picture is None:
        raise InputError("cannot decode image (corrupt or not an image)", path)
    refuse_truncated(path)
    return picture


def read_rgb(path: str | Path) -> np.ndarray:
    """`read_bgr` in RGB order, as the network and the CRF take it."""
    return np.ascontiguousarray(cv2.cvtColor(read_bgr(path), cv2.COLOR_BGR2RGB))


def decode_rgb(data: bytes, name: str) -> np.ndarray:
    """`read_rgb` for a picture held in memory (e.g. fetched from a server); ``name`` names it in errors."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as image:
            refuse_above_limit(*image.size, name)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot read image ({exc})", name) from None
    picture = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if picture is None:
        raise InputError("cannot decode image (corrupt or not an image)", name)
    if name.lower().endswith(JPEG_SUFFIXES) and JPEG_END not in data[-JPEG_TAIL_BYTES:]:
        raise InputError(TRUNCATED_JPEG, name)
    return np.ascontiguousarray(cv2.cvtColor(picture, cv2.COLOR_BGR2RGB))


def jpeg_is_complete(path: Path) -> bool:
    """Whether the JPEG file still holds its end-of-image marker (a cut-off download or copy does not)."""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - JPEG_TAIL_BYTES))
        return JPEG_END in handle.read()


def write_picture(path: str | Path, picture: np.ndarray, jpeg_quality: int | None = None) -> None:
    """Save an OpenCV picture (BGR or grey); OpenCV only returns False on a full or read-only disk, so say so."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if jpeg_quality is not None else []
    if not cv2.imwrite(str(path), picture, params):
        raise InputError("cannot write picture here (read-only or full disk?)", path)
