"""Finding image / mask files in a folder and pairing them by file stem."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from cgc.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_SUFFIXES = (".png",)


def require_dir(path: str | Path, what: str) -> Path:
    """Return `path` as a Path, or raise InputError naming it when it is not a directory."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} not found", path)
    if not path.is_dir():
        raise InputError(f"{what} is not a directory", path)
    return path


def files_by_stem(directory: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Map file stem -> path for the files in `directory` with one of `suffixes` (any case).

    Hidden files (e.g. macOS `._x.jpg` resource forks) are skipped. Two files with one stem
    (`a.jpg` and `a.png`) would make the pairing ambiguous, so that is an InputError.
    """
    found: dict[str, Path] = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in suffixes or not path.is_file():
            continue
        if path.stem in found:
            raise InputError(f"two files share the name {path.stem!r}: {found[path.stem].name} and {path.name}", directory)
        found[path.stem] = path
    return found


EXIF_ORIENTATION = 0x0112
SWAPPED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that turn the picture by 90 degrees


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image as shown, from its header only, without decoding the pixels.

    "As shown" applies the EXIF orientation, as OpenCV's imread and Label Studio do.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(EXIF_ORIENTATION) in SWAPPED_ORIENTATIONS:
                return height, width
            return width, height
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"cannot read image ({exc})", path) from None
