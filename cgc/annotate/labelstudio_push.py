"""Upload boxes and masks to a Label Studio project as predictions (pre-annotations) to review.

Accepted inputs, each a COCO file cgc writes:
- consensus boxes (`cgc annotate import`): boxes -> `rectanglelabels`;
- weak labels (`cgc weaklabels build`, annotations.json): box + mask per instance;
- model predictions (`cgc predict`: its folder, or results.json with images.json beside it),
  with scores.

Boxes go as `rectanglelabels` in percent of the image. Masks go as `brushlabels` in Label
Studio's own RLE (`label_studio_sdk.converter.brush.mask2rle`, lossless) or as `polygonlabels`
(outer OpenCV contours, one polygon per connected part), whichever mask tool the project's
labelling config has (`cgc annotate setup --mask-tool`); without one, masks are skipped with a
warning. An instance's box and mask are separate regions, so a reviewer can fix either.

Images are matched to tasks by `ls_task_id` when the file has it, else by file name. Pushing
again with the same model version replaces that version's predictions on those tasks instead
of stacking duplicates. When reviewers accept or fix a prediction, Label Studio stores it as
their annotation, which the next `cgc annotate import` reads.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgc.annotate.import_parser import labelstudio_image_file_name
from cgc.annotate.labelstudio_config import ControlTag, control_tags
from cgc.annotate.labelstudio_client import (
    LabelStudioConnection,
    LabelStudioError,
    get_project,
    iter_project_tasks,
    stored_file_name,
    task_image_ref,
)
from cgc.coco_files import RESULTS_FILE, read_coco_boxes, read_instance_file, results_with_images
from cgc.errors import InputError
from cgc.fileio import read_json

MASK_FORMATS = ("auto", "brush", "polygon", "none")
PUSH_BATCH = 200


@dataclass
class Instances:
    """A COCO file read for pushing: its kind and, per image, the image record and its instances."""

    kind: str  # "boxes", "weaklabels" or "predictions"
    images: list[dict[str, Any]]
    instances: dict[Any, list[dict[str, Any]]]


@dataclass
class PushSummary:
    project_id: int
    model_version: str
    kind: str
    mask_format: str
    tasks_pushed: int = 0
    regions: int = 0
    replaced: int = 0
    images_without_instances: int = 0
    unmatched: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    masks_skipped: bool = False


def read_instances(path: str | Path) -> Instances:
    """Consensus boxes, weak labels or `cgc predict` output -> images and their instances, each checked by its
    format's reader."""
    path = Path(path)
    if path.is_dir():
        if (path / "annotations.json").is_file():
            return read_instances(path / "annotations.json")
        if (path / RESULTS_FILE).is_file():
            return read_instances(path / RESULTS_FILE)
        raise InputError(f"folder holds neither annotations.json (weak labels) nor {RESULTS_FILE} (cgc predict)", path)
    content = read_json(path, "annotations file")
    if isinstance(content, list):  # COCO results: images.json beside them says which picture each id is
        images, grouped = results_with_images(path, content)
        return Instances("predictions", images, grouped)
    if not isinstance(content, dict):
        raise InputError("not a COCO file (expected 'images' and 'annotations') nor COCO results", path)
    annotations = content.get("annotations") or []
    has_masks = any(isinstance(item, dict) and item.get("segmentation") for item in annotations)
    coco = read_instance_file(content, str(path)) if has_masks else read_coco_boxes(content, str(path))
    unsized = [image["file_name"] for image in coco.images if not image.get("width") or not image.get("height")]
    if unsized:
        raise InputError(f"image {unsized[0]!r} has no width and height, which Label Studio regions need", path)
    scored = any("score" in item for item in coco.annotations)
    kind = "predictions" if scored else "weaklabels" if has_masks else "boxes"
    return Instances(kind, coco.images, coco.annotations_by_image())


def _bbox(annotation: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """The instance's COCO box, if it has one with area."""
    bbox = annotation.get("bbox")
    if isinstance(bbox, list) and len(bbox) == 4 and bbox[2] > 0 and bbox[3] > 0:
        return tuple(float(v) for v in bbox)  # type: ignore[return-value]
    return None


def _mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """A mask's tight box in COCO x, y, w, h; None if the mask is empty."""
    from cgc.coco import mask_bbox_xywh

    box = mask_bbox_xywh(mask)
    return tuple(box) if box[2] > 0 else None  # type: ignore[return-value]


def _pct(value: float, size: int) -> float:
    return min(100.0, max(0.0, value / size * 100.0))


def rectangle_result(region_id: str, tag: ControlTag, label: str, box: tuple[float, float, float, float],
                     width: int, height: int) -> dict[str, Any]:
    x, y, w, h = box
    return {
        "id": region_id, "from_name": tag.name, "to_name": tag.to_name, "type": "rectanglelabels",
        "original_width": width, "original_height": height, "image_rotation": 0,
        "value": {"x": _pct(x, width), "y": _pct(y, height), "width": _pct(w, width), "height": _pct(h, height),
                  "rotation": 0, "rectanglelabels": [label]},
    }


def mask_results(region_id: str, tag: ControlTag, mask_format: str, label: str, mask: np.ndarray) -> list[dict[str, Any]]:
    """One brushlabels region (Label Studio RLE), or one polygonlabels region per outer contour."""
    height, width = mask.shape
    common = {"from_name": tag.name, "to_name": tag.to_name, "original_width": width, "original_height": height,
              "image_rotation": 0}
    if mask_format == "brush":
        from label_studio_sdk.converter.brush import mask2rle

        rle = mask2rle(mask.astype(np.uint8) * 255)
        return [{"id": region_id, **common, "type": "brushlabels",
                 "value": {"format": "rle", "rle": [int(v) for v in rle], "brushlabels": [label]}}]
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    results = []
    for number, contour in enumerate(sorted(contours, key=cv2.contourArea, reverse=True)):
        if len(contour) < 3:
            continue
        points = [[_pct(float(x), width), _pct(float(y), height)] for x, y in contour[:, 0, :]]
        results.append({"id": f"{region_id}-{number}", **common, "type": "polygonlabels",
                        "value": {"points": points, "closed": True, "polygonlabels": [label]}})
    return results


@dataclass(frozen=True)
class RegionSource:
    """One instance to show in Label Studio: its region id, box (COCO xywh), score and mask, each if known."""

    region: str
    box: tuple[float, float, float, float] | None
    score: float | None
    mask: np.ndarray | None


def prediction_for_image(image: dict[str, Any], instances: list[dict[str, Any]], tags: dict[str, ControlTag],
                         mask_format: str, label: str) -> tuple[list[dict[str, Any]], float | None]:
    """Result regions for one image of a COCO file, plus the prediction's score (mean instance score/agreement)."""
    from cgc.coco import decode_mask

    width, height = int(image["width"]), int(image["height"])
    sources = []
    for number, annotation in enumerate(instances, start=1):
        score = annotation.get("score", annotation.get("agreement"))
        box = _bbox(annotation)
        # decoded once, for the mask region and for a box the annotation lacks
        wanted = mask_format != "none" or box is None
        mask = decode_mask(annotation["segmentation"], height, width) if wanted and annotation.get("segmentation") else None
        if box is None and mask is not None:
            box = _mask_box(mask)
        sources.append(RegionSource(f"cgc{annotation.get('id', number)}", box,
                                    float(score) if isinstance(score, (int, float)) else None,
                                    mask if mask_format != "none" else None))
    return regions_for_image(width, height, sources, tags, mask_format, label)


def regions_for_image(width: int, height: int, sources: list[RegionSource], tags: dict[str, ControlTag],
                      mask_format: str, label: str) -> tuple[list[dict[str, Any]], float | None]:
    """Each instance as a box (where the config has RectangleLabels) and its mask in `mask_format`, plus the
    prediction's score, the mean of the instances' scores."""
    results: list[dict[str, Any]] = []
    scores = [source.score for source in sources if source.score is not None]
    for source in sources:
        if source.box is not None and "rectangle" in tags:
            item = rectangle_result(f"{source.region}-box", tags["rectangle"], label, source.box, width, height)
            if source.score is not None:
                item["score"] = source.score
            results.append(item)
        if mask_format != "none" and source.mask is not None and source.mask.any():
            results += mask_results(f"{source.region}-mask", tags[mask_format], mask_format, label, source.mask)
    return results, (sum(scores) / len(scores) if scores else None)


def push_predictions(
    connection: LabelStudioConnection,
    project_id: int,
    source: str | Path,
    model_version: str | None = None,
    mask_format: str = "auto",
    label: str = "salient",
) -> PushSummary:
    """Upload the file's instances as predictions on the matching tasks of the project."""
    data = read_instances(source)
    project = get_project(connection, project_id)
    tags = control_tags(project.get("label_config") or "<View/>")
    if "rectangle" not in tags:
        raise LabelStudioError(f"project {project_id} has no RectangleLabels tag; create it with `cgc annotate setup`")
    has_masks = data.kind != "boxes"
    masks_skipped = False
    if mask_format == "auto":
        mask_format = next((kind for kind in ("brush", "polygon") if kind in tags), "none")
        masks_skipped = has_masks and mask_format == "none"
    elif mask_format != "none" and mask_format not in tags:
        raise LabelStudioError(
            f"project {project_id} has no {mask_format.capitalize()}Labels tag for masks; "
            f"use --mask-format {'/'.join(k for k in ('brush', 'polygon') if k in tags) or 'none'} "
            f"or create the project with `cgc annotate setup --mask-tool {mask_format}`")
    model_version = model_version or f"cgc-{data.kind}"
    summary = PushSummary(project_id, model_version, data.kind, mask_format, masks_skipped=masks_skipped)

    tasks = list(iter_project_tasks(connection, project_id, fields="all"))
    by_id = {task["id"]: task for task in tasks}
    by_name: dict[str, list[int]] = defaultdict(list)
    for task in tasks:
        ref, _ = task_image_ref(task.get("data"))
        if ref:
            by_name[labelstudio_image_file_name(ref)].append(task["id"])

    predictions = []
    for image in data.images:
        task_id = image.get("ls_task_id")
        if task_id not in by_id:
            candidates = by_name.get(image["file_name"]) or by_name.get(stored_file_name(image["file_name"])) or []
            if len(candidates) != 1:
                (summary.ambiguous if candidates else summary.unmatched).append(image["file_name"])
                continue
            task_id = candidates[0]
        instances = data.instances.get(image["id"], [])
        if not instances:
            summary.images_without_instances += 1
            continue
        results, score = prediction_for_image(image, instances, tags, mask_format, label)
        prediction: dict[str, Any] = {"task": task_id, "result": results, "model_version": model_version}
        if score is not None:
            prediction["score"] = score
        predictions.append(prediction)
        summary.regions += len(results)

    pushed_tasks = {p["task"] for p in predictions}
    stale = [
        p["id"] for task_id in pushed_tasks for p in by_id[task_id].get("predictions") or []
        if isinstance(p, dict) and p.get("model_version") == model_version and "id" in p
    ]
    for prediction_id in stale:
        with connection.errors(f"replacing prediction {prediction_id}"):
            connection.client.predictions.delete(id=prediction_id)
    summary.replaced = len(stale)
    _upload_predictions(connection, project_id, predictions)
    summary.tasks_pushed = len(predictions)
    return summary


def _upload_predictions(connection: LabelStudioConnection, project_id: int, predictions: list[dict[str, Any]]) -> None:
    bulk = getattr(connection.client.projects, "import_predictions", None)
    for start in range(0, len(predictions), PUSH_BATCH):
        batch = predictions[start:start + PUSH_BATCH]
        with connection.errors(f"uploading predictions to project {project_id}", project_id):
            if bulk is not None:
                bulk(id=project_id, request=batch)
            else:  # older SDKs: one request per task
                for prediction in batch:
                    connection.client.predictions.create(**prediction)
