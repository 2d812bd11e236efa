"""Reading pictures: one size limit, the EXIF orientation read once, and truncated files reported.

Every picture cgc reads goes through one header reader, `picture_header` (Pillow, header only),
before any pixel is decoded, so that a header declaring 50000x50000 pixels is refused in one line
instead of exhausting memory; the limit is `--max-pixels` (environment variable CGC_MAX_PIXELS,
which worker processes inherit). A file whose header Pillow cannot read is refused, even if
OpenCV could decode it: its size could not be checked first. Sizes and pixels are those of the
picture as shown, EXIF orientation applied, as Label Studio (where the boxes are drawn) shows
them. The orientation is read once, by Pillow, and applied to OpenCV's pixels by cgc itself:
OpenCV reads a malformed orientation tag that Pillow ignores, which made sizes and pixels
disagree.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from cgc.errors import InputError

MAX_PIXELS_ENV = "CGC_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 100_000_000  # 100 megapixels: above any camera's photos, far below what exhausts memory
EXIF_ORIENTATION = 0x0112
SWAPPED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that turn the picture by 90 degrees
EXIF_HEADER_FORMATS = {"JPEG", "MPO", "WEBP"}  # TIFF: Pillow turns the size itself, OpenCV cannot read a turned one
JPEG_SUFFIXES = (".jpg", ".jpeg")
JPEG_END = b"\xff\xd9"  # the end-of-image marker; entropy-coded data can never hold it (0xFF is stuffed)
JPEG_TAIL_BYTES = 4096  # where the marker is looked for: some writers pad the file after it
TRUNCATED_JPEG = "truncated JPEG (no end-of-image marker): part of the picture is missing"

Image.MAX_IMAGE_PIXELS = None  # cgc applies its own limit, before decoding, with a message naming the file


def max_pixels() -> int:
    """The largest picture (width x height) cgc decodes."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"{MAX_PIXELS_ENV}={value!r} is not a positive whole number of pixels")
    return int(value)


@dataclass(frozen=True)
class PictureHeader:
    """What a picture's header says: its stored size, its EXIF orientation (1-8, 1 when absent or unreadable)."""

    stored_width: int
    stored_height: int
    orientation: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as shown, the orientation applied."""
        if self.orientation in SWAPPED_ORIENTATIONS:
            return self.stored_height, self.stored_width
        return self.stored_width, self.stored_height


def picture_header(source: str | Path | BinaryIO, name: str | Path) -> PictureHeader:
    """The header of a picture file or stream, within the size limit; an InputError naming `name` otherwise."""
    try:
        with Image.open(source) as image:
            width, height = image.size
            # EXIF sits in the header of these formats; PIL would decode a whole PNG to look for it
            with warnings.catch_warnings():  # a malformed tag is ignored (orientation 1), not shouted about
                warnings.simplefilter("ignore")
                exif = image.getexif() if image.format in EXIF_HEADER_FORMATS else {}
            orientation = exif.get(EXIF_ORIENTATION, 1)
            header = PictureHeader(width, height, orientation if orientation in range(1, 9) else 1)
    except FileNotFoundError:
        raise InputError("file not found", name) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, TypeError) as exc:
        raise InputError(f"cannot read the picture's header ({exc})", name) from None
    refuse_above_limit(width, height, name)
    return header


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of a picture as shown, from its header only; refuses one above `max_pixels`."""
    return picture_header(path, path).size


def encoded_size(data: bytes, name: str) -> tuple[int, int]:
    """`image_size` of a picture held in memory (e.g. fetched from a server); ``name`` names it in errors."""
    return picture_header(io.BytesIO(data), name).size


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


def oriented(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels turned as EXIF `orientation` says they are shown (as Pillow's ImageOps.exif_transpose)."""
    if orientation == 2:
        pixels = pixels[:, ::-1]
    elif orientation == 3:
        pixels = pixels[::-1, ::-1]
    elif orientation == 4:
        pixels = pixels[::-1]
    elif orientation == 5:
        pixels = pixels.swapaxes(0, 1)
    elif orientation == 6:
        pixels = np.rot90(pixels, -1)
    elif orientation == 7:
        pixels = pixels[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        pixels = np.rot90(pixels, 1)
    return np.ascontiguousarray(pixels)


def decode_as_shown(data: np.ndarray, header: PictureHeader, name: str | Path, flags: int) -> np.ndarray:
    """OpenCV's decoding of the encoded bytes `data`, its own orientation handling off and the header's applied;
    it must agree with the header's size."""
    pixels = cv2.imdecode(data, flags | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
    if pixels is None:
        raise InputError("cannot decode image (corrupt or not an image)", name)
    if pixels.shape[:2] != (header.stored_height, header.stored_width):
        raise InputError(f"decodes to {pixels.shape[1]}x{pixels.shape[0]} pixels where its header says "
                         f"{header.stored_width}x{header.stored_height} (a damaged or multi-part file?)", name)
    return oriented(pixels, header.orientation)


def read_file_bytes(path: Path, what: str = "image") -> np.ndarray:
    """A file's bytes for OpenCV's decoder (which copes with non-ASCII paths this way)."""
    try:
        return np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise InputError(f"{what} file not found", path) from None
    except OSError as exc:
        raise InputError(f"cannot read {what} file: {exc.strerror or exc}", path) from None


def read_bgr(path: str | Path) -> np.ndarray:
    """The picture as shown, as OpenCV holds it (H x W x 3 uint8, BGR); refuses undecodable or truncated files."""
    path = Path(path)
    header = picture_header(path, path)
    refuse_truncated(path)
    return decode_as_shown(read_file_bytes(path), header, path, cv2.IMREAD_COLOR)


def read_rgb(path: str | Path) -> np.ndarray:
    """`read_bgr` in RGB order, as the network and the CRF take it."""
    return np.ascontiguousarray(cv2.cvtColor(read_bgr(path), cv2.COLOR_BGR2RGB))


def decode_rgb(data: bytes, name: str) -> np.ndarray:
    """`read_rgb` for a picture held in memory (e.g. fetched from a server); ``name`` names it in errors."""
    header = picture_header(io.BytesIO(data), name)
    if name.lower().endswith(JPEG_SUFFIXES) and JPEG_END not in data[-JPEG_TAIL_BYTES:]:
        raise InputError(TRUNCATED_JPEG, name)
    picture = decode_as_shown(np.frombuffer(data, np.uint8), header, name, cv2.IMREAD_COLOR)
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
