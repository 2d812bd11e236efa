"""Every file cgc reads or writes in COCO form, each with one checked reader and one writer.

- Instance labels (weak labels, label rounds, `cgc export coco`, ground truth): a COCO instance
  JSON with RLE or polygon masks. `read_instance_file` / `write_coco_file`.
- Consensus boxes (`cgc annotate import`): a COCO detection JSON, boxes and no masks.
  `read_box_file` / `write_coco_file`.
- Results: a COCO results list [{image_id, segmentation, score, bbox}]. `check_results`.
- The prediction folder (`cgc predict`, `cgc crf refine`): results.json and images.json, which
  says which picture each image id is. `read_prediction_folder` / `write_prediction_folder`.

A reader checks a file once, on the way in, and raises one InputError naming the file and the
entry at fault, so that no later stage meets a malformed entry. Masks come out as RLE with str
`counts` (what JSON holds), whatever form the file used.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from cgc.coco import SALIENT_CATEGORY_ID, bbox_xyxy, checked_rle
from cgc.errors import InputError
from cgc.fileio import atomic_write_json, read_json

PREDICTIONS_KIND = "predictions"  # the output-folder kind of a prediction folder (see fileio.atomic_directory)
RESULTS_FILE = "results.json"
IMAGES_FILE = "images.json"
IMAGE_FIELDS = ("id", "file_name", "height", "width")


# ---------------------------------------------------------------------------------------------
# Instance labels and consensus boxes: COCO dataset files


@dataclass(frozen=True)
class CocoFile:
    """A checked COCO dataset file.

    `data` is the file's top level as read, with its `images` and `annotations` replaced by the
    checked copies: ids are integers and unique, every annotation names a listed image and has a
    bbox of four finite numbers, and (in an instance file) a mask of its image's size as RLE.
    """

    source: str  # the file, or what an in-memory dataset is, for messages
    data: dict[str, Any]

    @property
    def images(self) -> list[dict[str, Any]]:
        return self.data["images"]

    @property
    def annotations(self) -> list[dict[str, Any]]:
        return self.data["annotations"]

    def annotations_by_image(self) -> dict[int, list[dict[str, Any]]]:
        """Image id -> its annotations in file order; every listed image is a key."""
        grouped: dict[int, list[dict[str, Any]]] = {image["id"]: [] for image in self.images}
        for annotation in self.annotations:
            grouped[annotation["image_id"]].append(annotation)
        return grouped

    def masks_by_file_name(self) -> dict[str, list[dict[str, Any]]]:
        """file_name -> the RLE masks of that picture's instances."""
        grouped = self.annotations_by_image()
        return {image["file_name"]: [item["segmentation"] for item in grouped[image["id"]]] for image in self.images}


def read_instance_file(source: str | Path | Mapping[str, Any], what: str = "instance-label file") -> CocoFile:
    """A COCO instance file (weak labels, a label round, ground truth), checked; `source` may be a dict already read."""
    return _read_coco_file(source, what, masks=True)


def read_coco_boxes(source: str | Path | Mapping[str, Any], what: str = "box file") -> CocoFile:
    """A COCO detection file (boxes, no masks needed), checked; images may leave out their size."""
    return _read_coco_file(source, what, masks=False)


def _read_coco_file(source: str | Path | Mapping[str, Any], what: str, masks: bool) -> CocoFile:
    name = str(source) if isinstance(source, (str, Path)) else what
    data = read_json(source, what) if isinstance(source, (str, Path)) else source
    if not isinstance(data, Mapping) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations", []), list):
        raise InputError(f"not a COCO {'instance' if masks else 'box'} file: expected an object with 'images' and "
                         f"'annotations' lists", name)
    images = [_checked_image(image, position, name, masks) for position, image in enumerate(data["images"])]
    _refuse_repeats((image["id"] for image in images), "image id", name)
    by_id = {image["id"]: image for image in images}
    annotations = [_checked_annotation(annotation, position, by_id, name, masks)
                   for position, annotation in enumerate(data.get("annotations", []))]
    _refuse_repeats((annotation["id"] for annotation in annotations), "annotation id", name)
    return CocoFile(name, {**data, "images": images, "annotations": annotations})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _refuse_repeats(values: Iterable[Any], what: str, name: str) -> None:
    repeated = sorted(value for value, count in Counter(values).items() if count > 1)
    if repeated:
        raise InputError(f"{what} {repeated[0]!r} appears more than once", name)


def _checked_image(image: Any, position: int, name: str, sized: bool) -> dict[str, Any]:
    """An image entry with an integer id and a file name, and (where masks need it) a positive integer size."""
    where = f"images[{position}]"
    if not isinstance(image, Mapping) or not _is_int(image.get("id")) \
            or not isinstance(image.get("file_name"), str) or not image["file_name"]:
        raise InputError(f"{where} needs an integer 'id' and a 'file_name'"
                         + (" and a positive integer 'height' and 'width'" if sized else ""), name)
    size = (image.get("height"), image.get("width"))
    if sized and not all(_is_int(value) and value > 0 for value in size):
        raise InputError(f"image {image['id']!r} needs a positive integer 'height' and 'width' (got {size})", name)
    if not sized and not all(value in (None, 0) or (_is_int(value) and value > 0) for value in size):
        raise InputError(f"image {image['id']!r} has a 'height' or 'width' that is not a positive integer: {size}", name)
    attributes = image.get("attributes")
    if attributes is not None and (not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes)):
        raise InputError(f"image {image['id']!r}: 'attributes' must be a list of names", name)
    return dict(image)


def _finite_box(box: Any) -> bool:
    return isinstance(box, list) and len(box) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)


def _checked_annotation(annotation: Any, position: int, images: Mapping[int, Mapping[str, Any]], name: str,
                        masks: bool) -> dict[str, Any]:
    """An annotation naming a listed image, with an integer id (its 1-based position when absent), a finite xywh
    bbox (the mask's box when an instance file has none) and, in an instance file, a readable mask as RLE."""
    where = f"annotations[{position}]"
    if not isinstance(annotation, Mapping):
        raise InputError(f"{where} is not an object", name)
    clean = dict(annotation)
    clean.setdefault("id", position + 1)
    if not _is_int(clean["id"]):
        raise InputError(f"{where} has an id that is not an integer: {clean['id']!r}", name)
    image = images.get(annotation.get("image_id")) if _is_int(annotation.get("image_id")) else None
    if image is None:
        raise InputError(f"{where} names image id {annotation.get('image_id')!r}, which is not in 'images'", name)
    if masks:
        if "segmentation" not in annotation:
            raise InputError(f"{where} has no segmentation", name)
        clean["segmentation"] = checked_rle(annotation["segmentation"], image, name, f"annotation {clean['id']}")
        if "bbox" not in annotation:
            clean["bbox"] = [float(v) for v in mask_utils.toBbox(clean["segmentation"])]
    if not _finite_box(clean.get("bbox")):
        raise InputError(f"{where} needs a 'bbox' of 4 finite numbers, not {clean.get('bbox')!r}", name)
    if clean.get("iscrowd", 0) not in (0, 1) or isinstance(clean.get("iscrowd"), float):
        raise InputError(f"{where} has 'iscrowd' {clean['iscrowd']!r}: it must be 0 or 1", name)
    area = clean.get("area")
    if area is not None and (isinstance(area, bool) or not isinstance(area, (int, float)) or not math.isfinite(area)
                             or area < 0):
        raise InputError(f"{where} has 'area' {area!r}: it must be a finite number >= 0", name)
    return clean


def write_coco_file(path: str | Path, dataset: CocoFile | Mapping[str, Any], indent: int | None = None) -> None:
    """Write a COCO dataset (instance labels or boxes) atomically: readers never see half a file."""
    atomic_write_json(path, dataset.data if isinstance(dataset, CocoFile) else dict(dataset), indent=indent)


@dataclass
class ImageBoxes:
    """One picture of a box file and its consensus boxes (x1, y1, x2, y2 pixels)."""

    image_id: int
    file_name: str
    width: int | None
    height: int | None
    box_ids: list[int] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)


def read_box_file(path: str | Path) -> list[ImageBoxes]:
    """The consensus boxes of `cgc annotate import`, per picture in image-id order."""
    boxes = read_coco_boxes(path)
    records = {image["id"]: ImageBoxes(image["id"], image["file_name"], image.get("width") or None,
                                       image.get("height") or None) for image in boxes.images}
    for annotation in boxes.annotations:
        records[annotation["image_id"]].box_ids.append(annotation["id"])
        records[annotation["image_id"]].boxes.append(bbox_xyxy([float(v) for v in annotation["bbox"]]))
    return sorted(records.values(), key=lambda record: record.image_id)


# ---------------------------------------------------------------------------------------------
# Results and the prediction folder


def check_result_entries(results: Any, name: str) -> None:
    """The shape of a results list, before its image ids mean anything: a list of objects with image_id and
    segmentation."""
    if not isinstance(results, list):
        raise InputError("predictions must be a COCO results list [{image_id, segmentation, score}, ...]", name)
    for index, prediction in enumerate(results, start=1):
        if not isinstance(prediction, Mapping) or "image_id" not in prediction or "segmentation" not in prediction:
            raise InputError(f"prediction {index} needs image_id and segmentation", name)


def check_results(results: Any, images: Sequence[Mapping[str, Any]], name: str,
                  listed_in: str = "the ground truth") -> list[dict[str, Any]]:
    """A COCO results list checked against the pictures it is for (`images`, from `listed_in`): each names one of
    them, has a mask of that picture's size and a numeric score. Returns clean copies in category 1 with RLE masks
    (and the bbox, if given)."""
    check_result_entries(results, name)
    by_id = {image["id"]: image for image in images}
    clean, unknown = [], []
    for index, prediction in enumerate(results, start=1):
        image = by_id.get(prediction["image_id"])
        if image is None:
            unknown.append(prediction["image_id"])
            continue
        score = prediction.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise InputError(f"prediction {index} has no numeric 'score' (got {score!r})", name)
        item = {"image_id": image["id"], "category_id": SALIENT_CATEGORY_ID,
                "segmentation": checked_rle(prediction["segmentation"], image, name, f"prediction {index}"),
                "score": float(score)}
        if "bbox" in prediction:
            if not _finite_box(prediction["bbox"]):
                raise InputError(f"prediction {index} has a 'bbox' that is not 4 finite numbers: "
                                 f"{prediction['bbox']!r}", name)
            item["bbox"] = [float(v) for v in prediction["bbox"]]
        clean.append(item)
    if unknown:
        shown = ", ".join(repr(i) for i in sorted(set(unknown), key=str)[:5])
        raise InputError(f"{len(unknown)} predictions name image ids absent from {listed_in} ({shown}"
                         f"{', ...' if len(set(unknown)) > 5 else ''}); are they for another split?", name)
    return clean


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
    for key in ("id", "file_name"):
        _refuse_repeats((str(entry[key]) for entry in images), key, str(path))
    return images


def read_results_file(path: str | Path) -> Any:
    """The raw list of a results.json (checked against its pictures by `check_results`)."""
    return read_json(path, f"{RESULTS_FILE} (written by `cgc predict`)" if Path(path).name == RESULTS_FILE
                     else "predictions file")


def prediction_files(source: str | Path | None) -> dict[str, Path]:
    """The files a prediction input (a folder, or its results file) is read from, named for the output guard."""
    if source is None:
        return {}
    source = Path(source)
    results = source / RESULTS_FILE if source.is_dir() else source
    return {"--predictions": source, f"--predictions' {RESULTS_FILE}": results,
            f"--predictions' {IMAGES_FILE}": results.with_name(IMAGES_FILE)}


def read_prediction_folder(directory: str | Path) -> tuple[list[dict[str, Any]], dict[Any, list[dict[str, Any]]]]:
    """images.json entries and results.json grouped by image id (see `results_with_images`)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("prediction folder not found", directory)
    return results_with_images(directory / RESULTS_FILE)


def results_with_images(results_path: str | Path, raw: Any = None
                        ) -> tuple[list[dict[str, Any]], dict[Any, list[dict[str, Any]]]]:
    """A results file (`raw`: its content, if the caller has read it already) and the images.json beside it: the
    pictures, and the results grouped by image id, checked (ids known, masks of the picture's size). Each result keeps
    its other fields (a bbox, a CRF's marks) in order."""
    results_path = Path(results_path)
    images = read_prediction_images(results_path.with_name(IMAGES_FILE))
    if raw is None:
        raw = read_results_file(results_path)
    results = [{**original, **clean}
               for original, clean in zip(raw, check_results(raw, images, str(results_path), IMAGES_FILE))]
    grouped: dict[Any, list[dict[str, Any]]] = {entry["id"]: [] for entry in images}
    for result in results:
        grouped[result["image_id"]].append(result)
    return images, grouped
