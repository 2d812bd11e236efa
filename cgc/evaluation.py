"""How good predicted salient instances are: the paper's AP^r / AP and standard COCO mask AP.

The paper (IV.B, eqs. 10-12) scores an image by the share of its true instances that a
predicted instance covers with IoU >= alpha, averages that share over the test images
(AP^r_alpha) and averages AP^r over alpha = 0.50, 0.55, ..., 0.95 (AP). Its text leaves some
details open; the choices made here, so that numbers are reproducible:

* One to one. A true instance counts at most once and a prediction covers at most one true
  instance. Per image and alpha, the count is a maximum matching between predictions and true
  instances restricted to pairs with IoU >= alpha (Hungarian assignment on the 0/1 matrix
  "IoU >= alpha"). The paper defines the precision per true instance i ("precision = 1 if
  IoU(i) >= alpha", eq. 11) and speaks of "the average of maximum precision value", so a
  maximum matching is the literal reading; greedy-by-score (as COCO does) can pair a
  prediction with the wrong instance and undercount, and ignores that AP^r has no ranking.
  For alpha > 0.5 and non-overlapping true instances both give the same count, since a mask
  can then overlap at most one partner by more than half.
* Score threshold. AP^r never penalises false positives, so without a threshold emitting every
  proposal would maximise it. Only predictions with score >= `score_threshold` (default 0.5,
  the usual operating point of Mask R-CNN-style models) are counted; the value is recorded in
  the output.
* Images with no (non-crowd) true instance have no defined precision (0/0): they are left out
  of the AP^r average and counted in `images_without_ground_truth`. Images in the ground truth
  without any prediction count with precision 0.
* Clipping at 1: with one-to-one matching the count can never exceed the number of true
  instances, so the per-image value is at most 1 by construction (asserted, not clipped).
* IoU >= alpha as in eq. (10) (the prose says "IoU > 0.5"), with a 1e-9 tolerance for float
  noise. Crowd regions (`iscrowd: 1`) are not instances to find and are ignored by AP^r; a
  prediction lying on one (half of it or more inside) that matches no instance is ignored too, in
  AP^r and in precision and recall, as COCOeval ignores it.

COCO mask AP (AP, AP50, AP75, AP_S/M/L) comes from pycocotools' COCOeval, class-agnostic
(every instance is category 1), on *all* predictions: COCO AP integrates over the score
ranking, so a threshold would only cut its precision-recall curve short.

All figures are percentages, like the paper's tables (e.g. 57.13 / 85.60 / 71.02).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy.optimize import linear_sum_assignment

from cgc.coco import SALIENT_CATEGORY, SALIENT_CATEGORY_ID, encode_mask, mask_iou_matrix, segmentation_to_rle
from cgc.errors import InputError
from cgc.coco_files import (IMAGES_FILE, RESULTS_FILE, check_result_entries, check_results, read_instance_file,
                             read_prediction_images, read_results_file)

ALPHAS: tuple[float, ...] = tuple(round(0.50 + 0.05 * step, 2) for step in range(10))
DEFAULT_SCORE_THRESHOLD = 0.5
COCO_STAT_NAMES: tuple[str, ...] = ("AP", "AP50", "AP75", "APs", "APm", "APl")
_IOU_TOLERANCE = 1e-9


def alpha_key(alpha: float) -> str:
    """Key of an IoU threshold in the `ap_r` dict: "0.50", "0.55", ..."""
    return f"{alpha:.2f}"


# ---------------------------------------------------------------------------------------------
# Loading and checking inputs


def _source_name(source: Any, default: str) -> str:
    return str(source) if isinstance(source, (str, Path)) else default


def load_ground_truth(gt: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """Read a COCO instance JSON (RLE or polygons) into a clean class-agnostic copy.

    The copy has every annotation in category 1, RLE segmentations with str counts, an `area`
    (the file's, else the mask area) and `iscrowd`, and fresh annotation ids, which is what
    COCOeval needs; the caller's dict is not modified.
    """
    checked = read_instance_file(gt, "ground-truth file" if isinstance(gt, (str, Path)) else "ground truth")
    annotations = []
    for index, annotation in enumerate(checked.annotations, start=1):
        rle, area = annotation["segmentation"], annotation.get("area")
        if mask_utils.area(rle) == 0:
            raise InputError(f"annotation {annotation['id']} (image {annotation['image_id']}) has an empty mask: an "
                             f"instance without a pixel could never be found; remove it", checked.source)
        annotations.append({
            "id": index,
            "image_id": annotation["image_id"],
            "category_id": SALIENT_CATEGORY_ID,
            "segmentation": rle,
            "area": float(area) if isinstance(area, (int, float)) else float(mask_utils.area(rle)),
            "bbox": [float(v) for v in mask_utils.toBbox(rle)],
            "iscrowd": int(bool(annotation.get("iscrowd", 0))),
        })
    return {"images": checked.images, "annotations": annotations, "categories": [dict(SALIENT_CATEGORY)]}


def load_predictions(predictions: Iterable[Mapping[str, Any]] | Mapping[str, Any] | str | Path,
                     gt: Mapping[str, Any], match_by_id: bool = False) -> list[dict[str, Any]]:
    """Read predictions (a prediction folder, a COCO results list, or a COCO dict whose annotations carry scores).

    `gt` is a dataset from `load_ground_truth`. Predictions that say which picture each image id
    is (the folder's images.json, an images.json beside a results file, a COCO dict's images)
    are paired with the ground truth by file name: ids are only each file's own numbering. A
    results file without that is refused unless `match_by_id` says its ids are the ground
    truth's; in-memory lists are taken to use the ground truth's ids. Every prediction is then
    checked (known image, mask of the image's size, a numeric score) and returned as a clean
    copy in category 1 with an RLE segmentation, so that a mistake surfaces here, naming the file.
    """
    name = _source_name(predictions, "predictions")
    data, named_images = _predictions_and_images(predictions)
    if isinstance(data, Mapping):
        if not isinstance(data.get("annotations"), list):
            raise InputError("a predictions dict must be a COCO dataset with an 'annotations' list", name)
        data = data["annotations"]
    check_result_entries(data, name)
    if named_images is not None:
        data = _with_ground_truth_ids(data, named_images, gt["images"], name)
    elif isinstance(predictions, (str, Path)) and not match_by_id:
        raise InputError(f"its image ids cannot be matched to the ground truth's pictures: put the {IMAGES_FILE} that "
                         f"`cgc predict` wrote beside it (or give the prediction folder), or pass --match-by-id if "
                         f"its ids are the ground truth's own", name)
    return check_results(data, gt["images"], name)


def _shown(values: list[str], first: int = 5) -> str:
    return ", ".join(values[:first]) + (", ..." if len(values) > first else "")


def _predictions_and_images(predictions: Any) -> tuple[Any, list[dict[str, Any]] | None]:
    """The raw predictions and, where their source says, the pictures their image ids stand for."""
    data = predictions
    if isinstance(predictions, (str, Path)):
        path = Path(predictions)
        if path.is_dir():
            return read_results_file(path / RESULTS_FILE), read_prediction_images(path / IMAGES_FILE)
        data = read_results_file(path)
        beside = path.with_name(IMAGES_FILE)
        if isinstance(data, list) and beside.is_file() and beside != path:
            return data, read_prediction_images(beside)
    if isinstance(data, Mapping) and isinstance(data.get("images"), list):
        images = data["images"]
        if all(isinstance(image, Mapping) and "id" in image and "file_name" in image for image in images):
            return data, images
    return data, None


def _with_ground_truth_ids(data: list[Mapping[str, Any]], named_images: list[Mapping[str, Any]],
                           gt_images: list[Mapping[str, Any]], name: str) -> list[dict[str, Any]]:
    """Predictions renumbered to the ground truth's image ids, paired by file name (or by base name when it is
    unique in the ground truth); refuses predictions whose picture cannot be found."""
    by_file = {str(image["file_name"]): image["id"] for image in gt_images}
    by_base: dict[str, list[Any]] = {}
    for image in gt_images:
        by_base.setdefault(Path(str(image["file_name"])).name, []).append(image["id"])
    gt_id: dict[Any, Any] = {}
    for image in named_images:
        file_name = str(image["file_name"])
        base = by_base.get(Path(file_name).name, [])
        if file_name in by_file:
            gt_id[image["id"]] = by_file[file_name]
        elif len(base) == 1:
            gt_id[image["id"]] = base[0]
    file_of = {image["id"]: str(image["file_name"]) for image in named_images}
    unlisted = sorted({repr(p["image_id"]) for p in data if p["image_id"] not in file_of})
    if unlisted:
        raise InputError(f"predictions name image ids that its {IMAGES_FILE} does not list ({_shown(unlisted)})", name)
    unpaired = sorted({file_of[p["image_id"]] for p in data if p["image_id"] not in gt_id})
    if unpaired:
        raise InputError(f"predictions for {len(unpaired)} pictures that the ground truth does not hold, matched by "
                         f"file name ({_shown(unpaired)}); are they for another split?", name)
    return [{**prediction, "image_id": gt_id[prediction["image_id"]]} for prediction in data]


# ---------------------------------------------------------------------------------------------
# Box baseline


def _box_pixels(bbox: list[float], height: int, width: int) -> tuple[int, int, int, int]:
    """Pixels whose centre lies inside an xywh box: exact for integer boxes, clipped to the image."""
    x, y, w, h = bbox
    x0, y0 = max(0, math.ceil(x - 0.5)), max(0, math.ceil(y - 0.5))
    x1, y1 = min(width, math.ceil(x + w - 0.5)), min(height, math.ceil(y + h - 0.5))
    return x0, y0, max(x0, x1), max(y0, y1)


def fill_boxes_as_masks(predictions: list[Mapping[str, Any]],
                        gt_images: list[Mapping[str, Any]] | Mapping[Any, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Replace every predicted mask by its filled box: the trivial baseline a mask head must beat.

    The box is the prediction's `bbox` (the detector's box) when present, else the tight box of
    its mask. `gt_images` (COCO image dicts, as a list or by id) give the image sizes.
    Returns new prediction dicts; the inputs are not modified.
    """
    images = gt_images if isinstance(gt_images, Mapping) else {image["id"]: image for image in gt_images}
    filled = []
    for prediction in predictions:
        image = images[prediction["image_id"]]
        height, width = int(image["height"]), int(image["width"])
        bbox = prediction.get("bbox")
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4):
            rle = segmentation_to_rle(prediction["segmentation"], height, width)
            bbox = [float(v) for v in mask_utils.toBbox(rle)]
        x0, y0, x1, y1 = _box_pixels([float(v) for v in bbox], height, width)
        mask = np.zeros((height, width), bool)
        mask[y0:y1, x0:x1] = True
        item = dict(prediction)
        item["segmentation"] = encode_mask(mask)
        item["bbox"] = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
        item.pop("area", None)
        filled.append(item)
    return filled


# ---------------------------------------------------------------------------------------------
# The paper's AP^r and AP


def matched_instances(ious: np.ndarray, alpha: float) -> int:
    """Size of a maximum one-to-one matching using only (prediction, truth) pairs with IoU >= alpha.

    Rows are predictions, columns true instances. Hungarian assignment on the 0/1 "hit" matrix
    maximises the number of pairs, so a duplicate prediction cannot count a true instance twice.
    """
    hits = (ious >= alpha - _IOU_TOLERANCE).astype(float)
    if not hits.any():
        return 0
    rows, cols = linear_sum_assignment(hits, maximize=True)
    return int(hits[rows, cols].sum())


def image_precisions(ious: np.ndarray, alphas: tuple[float, ...] = ALPHAS) -> dict[str, float]:
    """Eq. (10)-(11) for one image: share of its true instances matched at each alpha (0..1)."""
    truth = ious.shape[1]
    precisions = {}
    for alpha in alphas:
        matched = matched_instances(ious, alpha)
        assert matched <= truth, "one-to-one matching cannot exceed the number of true instances"
        precisions[alpha_key(alpha)] = matched / truth
    return precisions


def masks_by_image(gt: Mapping[str, Any], predictions: list[Mapping[str, Any]], score_threshold: float,
                   image_ids: Iterable[Any]) -> tuple[dict[Any, list[dict]], dict[Any, list[dict]]]:
    """Per image of ``image_ids``: its non-crowd true RLEs, and the predicted RLEs scored >= ``score_threshold``
    that do not lie on a crowd region (see `off_crowd_regions`)."""
    truth: dict[Any, list[dict]] = {image_id: [] for image_id in image_ids}
    crowds: dict[Any, list[dict]] = {image_id: [] for image_id in truth}
    for annotation in gt["annotations"]:
        if annotation["image_id"] in truth:
            (crowds if annotation["iscrowd"] else truth)[annotation["image_id"]].append(annotation["segmentation"])
    predicted: dict[Any, list[dict]] = {image_id: [] for image_id in truth}
    for prediction in predictions:
        if prediction["image_id"] in predicted and prediction["score"] >= score_threshold:
            predicted[prediction["image_id"]].append(prediction["segmentation"])
    for image_id, regions in crowds.items():
        if regions and predicted[image_id]:
            predicted[image_id] = off_crowd_regions(predicted[image_id], truth[image_id], regions)
    return truth, predicted


def off_crowd_regions(predicted: list[dict], truth: list[dict], crowds: list[dict], alpha: float = 0.5) -> list[dict]:
    """The predictions that count: one that lies on a crowd region (at least `alpha` of its area inside it) and
    matches no true instance at IoU >= `alpha` is neither a hit nor a false positive, as COCOeval ignores it."""
    on_crowd = np.asarray(mask_utils.iou(predicted, crowds, [1] * len(crowds))).max(axis=1) >= alpha - _IOU_TOLERANCE
    hits = mask_iou_matrix(predicted, truth).max(axis=1, initial=0.0) >= alpha - _IOU_TOLERANCE
    return [mask for mask, crowd, hit in zip(predicted, on_crowd, hits) if hit or not crowd]


def paper_ap_r(gt: Mapping[str, Any], predictions: list[Mapping[str, Any]], score_threshold: float,
               image_ids: Iterable[Any] | None = None) -> dict[str, Any]:
    """AP^r_alpha (eq. 10) for every alpha and AP (eq. 12), in percent, over the given images.

    Takes the clean dicts of `load_ground_truth` / `load_predictions`; see the module
    docstring for the matching, threshold and empty-image rules.
    """
    selected = [image["id"] for image in gt["images"]] if image_ids is None else list(image_ids)
    truth, predicted = masks_by_image(gt, predictions, score_threshold, selected)
    sums = {alpha_key(alpha): 0.0 for alpha in ALPHAS}
    evaluated = 0
    for image_id in selected:
        if not truth[image_id]:
            continue
        evaluated += 1
        ious = mask_iou_matrix(predicted[image_id], truth[image_id])
        for key, value in image_precisions(ious).items():
            sums[key] += value
    ap_r = {key: (100.0 * total / evaluated if evaluated else None) for key, total in sums.items()}
    return {
        "ap_r": ap_r,
        "AP": float(np.mean(list(ap_r.values()))) if evaluated else None,
        "AP_r50": ap_r["0.50"],
        "AP_r70": ap_r["0.70"],
        "images": len(selected),
        "images_evaluated": evaluated,
        "images_without_ground_truth": len(selected) - evaluated,
        "ground_truth_instances": sum(len(truth[i]) for i in selected),
        "predictions_counted": sum(len(predicted[i]) for i in selected),
    }


def operating_point(gt: Mapping[str, Any], predictions: list[Mapping[str, Any]], score_threshold: float,
                    alpha: float = 0.5, image_ids: Iterable[Any] | None = None) -> dict[str, Any]:
    """What a user gets at ``score_threshold``: precision and recall (%) at IoU >= ``alpha``, and
    predictions per true instance, the false positives AP^r never counts.

    Matching as for AP^r (maximum one-to-one), over every selected image, those without true
    instances included: a prediction there is a false positive.
    """
    selected = [image["id"] for image in gt["images"]] if image_ids is None else list(image_ids)
    truth, predicted = masks_by_image(gt, predictions, score_threshold, selected)
    matched = sum(matched_instances(mask_iou_matrix(predicted[i], truth[i]), alpha)
                  for i in selected if truth[i] and predicted[i])
    n_predicted = sum(len(found) for found in predicted.values())
    n_truth = sum(len(instances) for instances in truth.values())
    return {
        "iou": alpha,
        "matched": matched,
        "precision": 100.0 * matched / n_predicted if n_predicted else None,
        "recall": 100.0 * matched / n_truth if n_truth else None,
        "predictions_per_instance": n_predicted / n_truth if n_truth else None,
    }


# ---------------------------------------------------------------------------------------------
# COCO mask AP


def _coco_from_dataset(dataset: Mapping[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = copy.deepcopy(dict(dataset))
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _results_coco(gt_coco: COCO, predictions: list[Mapping[str, Any]]) -> COCO:
    """What `COCO.loadRes` builds for segm results, but also for an empty list (loadRes fails)."""
    annotations = []
    for index, prediction in enumerate(predictions, start=1):
        rle = prediction["segmentation"]
        annotations.append({
            "id": index,
            "image_id": prediction["image_id"],
            "category_id": SALIENT_CATEGORY_ID,
            "segmentation": rle,
            "area": float(mask_utils.area(rle)),
            "bbox": prediction.get("bbox") or [float(v) for v in mask_utils.toBbox(rle)],
            "score": prediction["score"],
            "iscrowd": 0,
        })
    return _coco_from_dataset({"images": gt_coco.dataset["images"], "annotations": annotations,
                               "categories": gt_coco.dataset["categories"]})


def coco_mask_ap(gt: Mapping[str, Any], predictions: list[Mapping[str, Any]],
                 image_ids: Iterable[Any] | None = None, verbose: bool = False) -> dict[str, float | None]:
    """Class-agnostic COCO mask AP/AP50/AP75/APs/APm/APl in percent (None where undefined).

    Comparable with RDPNet/OQTR, which report this metric. COCOeval's printing is swallowed
    unless `verbose`.
    """
    gt_coco = _coco_from_dataset(gt)
    dt_coco = _results_coco(gt_coco, predictions)
    output = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with output:
        evaluator = COCOeval(gt_coco, dt_coco, iouType="segm")
        if image_ids is not None:
            evaluator.params.imgIds = sorted(image_ids, key=str)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: (None if value < 0 else 100.0 * float(value))
            for name, value in zip(COCO_STAT_NAMES, evaluator.stats[:len(COCO_STAT_NAMES)])}


# ---------------------------------------------------------------------------------------------
# Everything together


def attribute_image_ids(gt: Mapping[str, Any]) -> dict[str, list[Any]]:
    """SOC-style attribute name -> ids of the ground-truth images carrying it (empty if none do)."""
    subsets: dict[str, list[Any]] = {}
    for image in gt["images"]:
        for attribute in image.get("attributes") or []:
            subsets.setdefault(attribute, []).append(image["id"])
    return dict(sorted(subsets.items()))


def evaluate_predictions(gt: Mapping[str, Any] | str | Path,
                         predictions: list[Mapping[str, Any]] | Mapping[str, Any] | str | Path,
                         score_threshold: float = DEFAULT_SCORE_THRESHOLD, verbose: bool = False,
                         match_by_id: bool = False) -> dict[str, Any]:
    """Score predicted instances against ground truth: the paper's AP^r/AP and COCO mask AP.

    `gt`: COCO instance JSON (path or dict). `predictions`: what `load_predictions` reads (paired
    with the ground truth by file name, or by id with `match_by_id`). `score_threshold` applies
    to AP^r, precision and recall only.
    `boxes_as_masks` holds the same figures for the same detections with each mask replaced by
    its filled box: the trivial baseline a mask head must beat, always reported beside it. If
    images carry an `attributes` list, `per_attribute` repeats the metrics on each attribute's
    images. Raises InputError (naming the file) on unreadable or inconsistent inputs.
    """
    truth = load_ground_truth(gt)
    predicted = load_predictions(predictions, truth, match_by_id)
    metrics: dict[str, Any] = {
        "units": "percent",
        "score_threshold": score_threshold,
        "matching": "maximum one-to-one matching on IoU >= alpha (Hungarian)",
        "predictions": len(predicted),
    }
    metrics.update(paper_ap_r(truth, predicted, score_threshold))
    metrics["at_score_threshold"] = operating_point(truth, predicted, score_threshold)
    metrics["coco"] = coco_mask_ap(truth, predicted, verbose=verbose)
    boxes = fill_boxes_as_masks(predicted, truth["images"])
    paper = paper_ap_r(truth, boxes, score_threshold)
    metrics["boxes_as_masks"] = {"AP": paper["AP"], "AP_r50": paper["AP_r50"], "AP_r70": paper["AP_r70"],
                                 "coco": coco_mask_ap(truth, boxes)}
    subsets = attribute_image_ids(truth)
    if subsets:
        metrics["per_attribute"] = {}
        for attribute, image_ids in subsets.items():
            paper = paper_ap_r(truth, predicted, score_threshold, image_ids)
            metrics["per_attribute"][attribute] = {
                "images": paper["images"],
                "images_without_ground_truth": paper["images_without_ground_truth"],
                "AP": paper["AP"], "AP_r50": paper["AP_r50"], "AP_r70": paper["AP_r70"],
                "coco": coco_mask_ap(truth, predicted, image_ids),
            }
    return metrics


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_metrics_table(metrics: Mapping[str, Any]) -> list[str]:
    """A few aligned text lines with the headline figures (one row per attribute subset)."""
    header = f"{'subset':<10} {'images':>6} {'AP':>6} {'APr0.5':>6} {'APr0.7':>6} {'cocoAP':>6} {'AP50':>6} {'AP75':>6}"
    rows = [("all", metrics)] + list(metrics.get("per_attribute", {}).items())
    lines = [header]
    for name, row in rows:
        coco = row["coco"]
        lines.append(f"{name:<10} {row['images']:>6} {_cell(row['AP']):>6} {_cell(row['AP_r50']):>6} "
                     f"{_cell(row['AP_r70']):>6} {_cell(coco['AP']):>6} {_cell(coco['AP50']):>6} {_cell(coco['AP75']):>6}")
    lines.append(f"AP^r counts predictions with score >= {metrics['score_threshold']:g} "
                 f"({metrics['predictions_counted']} of {metrics['predictions']}); "
                 f"{metrics['images_without_ground_truth']} images without ground truth left out of AP^r")
    boxes = metrics.get("boxes_as_masks")
    if boxes is not None:
        lines.append(f"Boxes filled as masks (the baseline): AP {_cell(boxes['AP'])}, APr0.5 {_cell(boxes['AP_r50'])}, "
                     f"APr0.7 {_cell(boxes['AP_r70'])}, cocoAP {_cell(boxes['coco']['AP'])}")
    point = metrics.get("at_score_threshold")
    if point is not None:
        per_instance = point["predictions_per_instance"]
        lines.append(f"At score >= {metrics['score_threshold']:g}: precision {_cell(point['precision'])} %, recall "
                     f"{_cell(point['recall'])} % (IoU >= {point['iou']:g}), "
                     f"{'n/a' if per_instance is None else f'{per_instance:.2f}'} predictions per true instance")
    return lines
