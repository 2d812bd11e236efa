"""`cgc weaklabels build`: consensus boxes + binary salient masks -> COCO instance weak labels.

Each image is handled on its own (in a pool of worker processes): read and check its picture
and mask (or, without masks, estimate the salient region from the boxes: `box_salience.py`),
turn its boxes into instance masks under the priors (`priors.py`), and encode them as RLE. The
parent gathers the results in image order, so the output does not depend on the number of
workers, and writes every file atomically once all images are done.
"""

from __future__ import annotations

import os
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from cgc.coco import SALIENT_CATEGORY_ID, coco_dataset, encode_mask
from cgc.coco_files import ImageBoxes, read_box_file, write_coco_file
from cgc.datasets.files import IMAGE_SUFFIXES, MASK_SUFFIXES, files_by_stem, require_dir
from cgc.datasets.label_maps import read_binary_mask
from cgc.datasets.pictures import image_size, read_bgr, write_picture
from cgc.errors import InputError
from cgc.fileio import atomic_directory, atomic_write_json, refuse_outputs_over_inputs
from cgc.parallel import map_in_processes
from cgc.visualize import overlay_instances
from cgc.weaklabels.box_salience import instance_masks_from_boxes_alone
from cgc.weaklabels.priors import PriorSettings
from cgc.weaklabels.rules import instance_masks_from_boxes

WEAK_LABELS_KIND = "weak labels"
OVERLAYS_KIND = "weak-label overlays"


@dataclass
class InstanceLabel:
    box_id: int
    box: tuple[float, float, float, float]  # clipped to the image
    segmentation: dict[str, Any] | None = None
    area: int = 0
    box_coverage: float = 0.0
    dropped: str | None = None


@dataclass
class ImageLabels:
    image: ImageBoxes
    width: int = 0
    height: int = 0
    instances: list[InstanceLabel] = field(default_factory=list)
    excluded: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class BuildSummary:
    images: int
    images_used: int
    images_excluded: int
    instances: int
    instances_kept: int
    instances_dropped: int
    mean_box_coverage: float


def clip_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    return max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)


def label_one_image(
    image: ImageBoxes,
    image_path: Path | None,
    mask_path: Path | None,
    settings: PriorSettings,
    overlay_dir: Path | None,
    boxes_only: bool = False,
) -> ImageLabels:
    """Weak labels of one image, or the reason it cannot have any.

    With `boxes_only` there is no mask file: the salient region is estimated from the boxes.
    """
    result = ImageLabels(image=image)
    if image_path is None:
        result.excluded = "image file not found"
        return result
    if mask_path is None and not boxes_only:
        result.excluded = "mask file not found"
        return result
    needs_pixels = boxes_only or overlay_dir is not None or settings.rule == "appearance" or (
        settings.rule == "resolve-shared" and settings.edge_weight > 0)
    try:
        if needs_pixels:
            picture = read_bgr(image_path)
            height, width = picture.shape[:2]
        else:
            picture = None
            width, height = image_size(image_path)
        salient = None if boxes_only else read_binary_mask(mask_path)
    except InputError as exc:
        result.excluded = f"unreadable file: {exc}"
        return result
    result.width, result.height = width, height
    if salient is not None and salient.shape != (height, width):
        result.excluded = f"mask {mask_path.name} is {salient.shape[1]}x{salient.shape[0]} but image is {width}x{height}"
        return result
    if image.width is not None and image.height is not None and (image.width, image.height) != (width, height):
        result.excluded = f"boxes were drawn on a {image.width}x{image.height} image but the file is {width}x{height}"
        return result
    if not image.boxes:
        result.excluded = "no salient instance (no consensus box)"
        return result
    usable: list[InstanceLabel] = []
    for box_id, box in zip(image.box_ids, image.boxes):
        clipped = clip_box(box, width, height)
        label = InstanceLabel(box_id=box_id, box=clipped)
        if box[2] <= box[0] or box[3] <= box[1]:
            label.dropped = "box has no area"
        elif clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
            label.dropped = "box lies outside the image"
        else:
            if clipped != tuple(box):
                result.notes.append(f"box {box_id} clipped to the image")
            usable.append(label)
        result.instances.append(label)
    boxes = np.array([label.box for label in usable])
    if salient is None:
        masks, empty = instance_masks_from_boxes_alone(picture, boxes, settings) if usable else ([], [])
        salient = np.any(masks, axis=0) if masks else np.zeros((height, width), bool)
        result.notes += [f"box {usable[index].box_id}: GrabCut kept nothing, the ellipse inscribed in the box stands in"
                         for index in empty]
    else:
        masks = instance_masks_from_boxes(salient, boxes, picture, settings) if usable else []
    for label, mask in zip(usable, masks):
        area = int(mask.sum())
        if area == 0:
            in_box = salient[int(round(label.box[1])) : int(round(label.box[3])), int(round(label.box[0])) : int(round(label.box[2]))]
            label.dropped = "salient pixels in the box all belong to other boxes" if in_box.any() else "no salient pixel in the box"
            continue
        box_area = max(1.0, (label.box[2] - label.box[0]) * (label.box[3] - label.box[1]))
        label.segmentation, label.area, label.box_coverage = encode_mask(mask), area, round(min(1.0, area / box_area), 4)
    kept = [label for label in result.instances if label.dropped is None]
    if not kept:
        result.excluded = "no usable region: no box holds a salient region"
    elif overlay_dir is not None:
        drawing = overlay_instances(picture, [mask for label, mask in zip(usable, masks) if label.dropped is None], [label.box for label in kept])
        write_picture(overlay_dir / f"{Path(image.file_name).stem}.jpg", drawing, jpeg_quality=90)
    return result


def find_file(name: str, by_name: dict[str, Path], by_stem: dict[str, Path]) -> Path | None:
    """The file called `name`, else the only file with its stem (labels often change the extension)."""
    return by_name.get(name) or by_stem.get(Path(name).stem)


def write_weak_labels(
    images_dir: str | Path,
    masks_dir: str | Path | None,
    boxes_path: str | Path,
    out_dir: str | Path,
    settings: PriorSettings = PriorSettings(),
    overlays_dir: str | Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> BuildSummary:
    """Write `annotations.json` and `report.json` under `out_dir` (and overlays); return the counts.

    `out_dir` and the overlays folder are each replaced as a whole once everything is written, so that
    the labels and their report always belong to one build. Neither may hold an input, and a folder cgc
    did not write is replaced only with `overwrite`. Overlays inside `out_dir` are written with it.
    Without `masks_dir`, the salient region of each picture is estimated from its boxes.
    """
    images_dir = require_dir(images_dir, "image folder")
    masks_dir = None if masks_dir is None else require_dir(masks_dir, "mask folder")
    records = read_box_file(boxes_path)
    out_dir = Path(out_dir)
    refuse_outputs_over_inputs({"--out": out_dir, "--overlays": overlays_dir},
                               {"--images": images_dir, "--masks": masks_dir, "--boxes": boxes_path})
    image_files = files_by_stem(images_dir, IMAGE_SUFFIXES)
    image_names = {path.name: path for path in image_files.values()}
    mask_files = files_by_stem(masks_dir, MASK_SUFFIXES) if masks_dir is not None else {}
    jobs = [(record, find_file(record.file_name, image_names, image_files), mask_files.get(Path(record.file_name).stem)) for record in records]
    workers = max(1, workers or os.cpu_count() or 1)
    with ExitStack() as outputs:
        out_tmp = outputs.enter_context(atomic_directory(out_dir, WEAK_LABELS_KIND, overwrite))
        overlay_tmp = None
        if overlays_dir is not None:
            overlay_tmp = (folder_within(out_tmp, out_dir, overlays_dir)
                           or outputs.enter_context(atomic_directory(overlays_dir, OVERLAYS_KIND, overwrite)))
        job = partial(label_job, settings=settings, overlay_dir=overlay_tmp, boxes_only=masks_dir is None)
        results = map_in_processes(job, jobs, workers, "weak labels", progress)
        dataset, report, summary = assemble_outputs(results, settings, boxes_path, masks_dir)
        if summary.images_used == 0 and summary.images > 0:  # an empty label file would only fail later, in training
            reasons = Counter(entry["reason"] for entry in report["excluded_images"])
            reason, count = reasons.most_common(1)[0]
            raise InputError(f"no image could be labelled: all {summary.images} were excluded ({count} for "
                             f"'{reason}')", boxes_path)
        atomic_write_json(out_tmp / "report.json", report, indent=1)
        write_coco_file(out_tmp / "annotations.json", dataset)
    return summary


def folder_within(tmp: Path, out_dir: Path, folder: str | Path) -> Path | None:
    """`folder`'s place inside the temporary `tmp` that will become `out_dir`, if it lies within `out_dir`."""
    try:
        relative = Path(folder).resolve().relative_to(out_dir.resolve())
    except ValueError:
        return None
    target = tmp / relative
    target.mkdir(parents=True, exist_ok=True)
    return target


def label_job(job: tuple[ImageBoxes, Path | None, Path | None], settings: PriorSettings, overlay_dir: Path | None,
              boxes_only: bool) -> ImageLabels:
    return label_one_image(*job, settings=settings, overlay_dir=overlay_dir, boxes_only=boxes_only)


def assemble_outputs(results: list[ImageLabels], settings: PriorSettings, boxes_path: str | Path,
                     masks_dir: Path | None = None) -> tuple[dict, dict, BuildSummary]:
    """The COCO dataset, the report and the summary, all in image-id order."""
    images, annotations, excluded, dropped, instances, notes = [], [], [], [], [], []
    for result in results:
        name = result.image.file_name
        notes += [{"image_id": result.image.image_id, "file_name": name, "note": note} for note in result.notes]
        for label in result.instances:
            if label.dropped is not None:
                dropped.append({"image_id": result.image.image_id, "file_name": name, "box_id": label.box_id, "reason": label.dropped})
        if result.excluded is not None:
            excluded.append({"image_id": result.image.image_id, "file_name": name, "reason": result.excluded})
            continue
        images.append({"id": result.image.image_id, "file_name": name, "width": result.width, "height": result.height})
        for label in result.instances:
            if label.dropped is not None:
                continue
            x1, y1, x2, y2 = label.box
            annotation_id = len(annotations) + 1
            annotations.append(
                {
                    "id": annotation_id,
                    "image_id": result.image.image_id,
                    "category_id": SALIENT_CATEGORY_ID,
                    "segmentation": label.segmentation,
                    "area": label.area,
                    "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                    "iscrowd": 0,
                    "box_id": label.box_id,
                    "box_coverage": label.box_coverage,
                }
            )
            instances.append({"annotation_id": annotation_id, "image_id": result.image.image_id, "file_name": name, "box_id": label.box_id, "area": label.area, "box_coverage": label.box_coverage})
    coverage = [item["box_coverage"] for item in instances]
    summary = BuildSummary(
        images=len(results),
        images_used=len(images),
        images_excluded=len(excluded),
        instances=sum(len(result.instances) for result in results),
        instances_kept=len(annotations),
        instances_dropped=len(dropped),
        mean_box_coverage=round(float(np.mean(coverage)), 4) if coverage else 0.0,
    )
    source = "salient-region masks" if masks_dir is not None else "GrabCut in each box, no masks"
    dataset = coco_dataset(images, annotations, f"cgc weak labels (consensus boxes + {source})")
    report = {
        "settings": asdict(settings),
        "boxes": str(boxes_path),
        "masks": str(masks_dir) if masks_dir is not None else None,
        "counts": asdict(summary),
        "excluded_images": excluded,
        "dropped_instances": dropped,
        "notes": notes,
        "instances": instances,
    }
    return dataset, report, summary
