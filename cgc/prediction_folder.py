"""The prediction folder that `cgc predict` and `cgc crf refine` write, and its one reader.

A prediction folder holds `results.json` (COCO results: image_id, segmentation RLE, score, bbox)
and `images.json` ([{id, file_name, height, width}, ...]), which says which picture each
image_id is. Ids are only a numbering of this folder: anything that pairs the results with
another dataset goes through the file names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cgc.errors import InputError
from cgc.fileio import atomic_write_json, read_json

PREDICTIONS_KIND = "predictions"  # the output-folder kind (see fileio.atomic_directory)
RESULTS_FILE = "results.json"
IMAGES_FILE = "images.json"
IMAGE_FIELDS = ("id", "file_name", "height", "width")


def write_prediction_folder(folder: str | Path, results: Sequence[Mapping[str, Any]],
                            images: Sequence[Mapping[str, Any]]) -> None:
    """Write results.json and images.json into `folder` (each atomically)."""
    folder = Path(folder)
    atomic_write_json(folder / RESULTS_FILE, list(results))
    atomic_write_json(folder / IMAGES_FILE, list(images), indent=1)


def read_prediction_images(path: str | Path) -> list[dict[str, Any]]:
    """images.json: one {id, file_name, height, width} per picture, ids and file names unique."""
    images = read_json(path, f"{IMAGES_FILE} (written by `cgc predict`)")
    if not isinstance(images, list):
        raise InputError("must be a list of {id, file_name, height, width}", path)
    for entry in images:
        if not isinstance(entry, dict) or not set(IMAGE_FIELDS) <= entry.keys():
            raise InputError(f"entry without id/file_name/height/width: {str(entry)[:80]}", path)
    for field in ("id", "file_name"):
        repeated = sorted(value for value, count in Counter(str(entry[field]) for entry in images).items() if count > 1)
        if repeated:
            raise InputError(f"{field} {repeated[0]!r} appears more than once", path)
    return images


def read_prediction_folder(directory: str | Path) -> tuple[list[dict[str, Any]], dict[Any, list[dict[str, Any]]]]:
    """images.json entries and results.json grouped by image id, checked (ids known, masks of the image's size)."""
    from cgc.evaluation import load_predictions

    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("prediction folder not found", directory)
    images = read_prediction_images(directory / IMAGES_FILE)
    results_path = directory / RESULTS_FILE
    raw = read_json(results_path, f"{RESULTS_FILE} (written by `cgc predict`)")
    try:
        results = load_predictions(raw, {"images": images}) if raw else []
    except InputError as exc:  # it names in-memory data "predictions"; name the file instead
        raise InputError(str(exc).removeprefix("predictions: "), results_path) from None
    if isinstance(raw, list) and results:
        # load_predictions makes clean copies; keep each entry's other fields in order
        results = [{**original, **clean} for original, clean in zip(raw, results)]
    grouped: dict[Any, list[dict[str, Any]]] = {entry["id"]: [] for entry in images}
    for result in results:
        grouped[result["image_id"]].append(result)
    return images, grouped
