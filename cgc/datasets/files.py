"""Finding image / mask files in a folder and pairing them by file stem."""

from __future__ import annotations

from pathlib import Path

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


def picture_in_folder(images_dir: Path, file_name: str, listed_in: str | Path) -> Path:
    """The picture a label file names, inside `images_dir`: a name that would read elsewhere (absolute, or with
    '..') is refused, naming the file that lists it, so no input can make cgc read a file outside the folder."""
    if not file_name or Path(file_name).is_absolute() or ".." in Path(file_name).parts:
        raise InputError(f"file_name {file_name!r} points outside the image folder {images_dir}", listed_in)
    return images_dir / file_name
