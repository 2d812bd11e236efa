"""How close weak labels come to the true instances, where a fully annotated copy exists.

Per image, weak and true instances are paired one to one by the Hungarian assignment on mask
IoU; a true instance left without a partner scores 0. The mean over all true instances of the
compared images is the figure the README reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from cgc.coco import mask_iou_matrix, segmentation_to_rle
from cgc.errors import InputError
from cgc.fileio import read_json


@dataclass
class LabelQuality:
    images_compared: int
    truth_images_without_labels: int
    true_instances: int
    weak_instances: int
    mean_iou: float
    instances_above_half: float  # share of true instances matched with IoU >= 0.5


def instance_rles_by_file(path: str | Path, what: str) -> dict[str, list[dict[str, Any]]]:
    """file_name -> RLE masks of that image's instances, from a COCO instance JSON."""
    data = read_json(path, what)
    try:
        images = {image["id"]: image for image in data["images"]}
        by_file: dict[str, list[dict[str, Any]]] = {image["file_name"]: [] for image in images.values()}
        for annotation in data["annotations"]:
            image = images[annotation["image_id"]]
            by_file[image["file_name"]].append(segmentation_to_rle(annotation["segmentation"], image["height"], image["width"]))
    except (KeyError, TypeError) as exc:
        raise InputError(f"not a COCO instance-segmentation file (missing {exc})", path) from None
    return by_file


def matched_ious(weak: list[dict[str, Any]], truth: list[dict[str, Any]]) -> np.ndarray:
    """Per true instance, the IoU of the weak instance paired with it (0 when unpaired)."""
    scores = np.zeros(len(truth))
    ious = mask_iou_matrix(weak, truth)
    if ious.size:
        rows, cols = linear_sum_assignment(-ious)
        scores[cols] = ious[rows, cols]
    return scores


def compare_to_truth(labels_path: str | Path, truth_path: str | Path) -> LabelQuality:
    """Score the weak labels against true instance masks, on the images both files hold."""
    weak = instance_rles_by_file(labels_path, "weak-label file")
    truth = instance_rles_by_file(truth_path, "ground-truth file")
    return label_quality(weak, truth, labels_path, truth_path)


def label_quality(weak: dict[str, list[dict[str, Any]]], truth: dict[str, list[dict[str, Any]]],
                  labels_path: str | Path, truth_path: str | Path) -> LabelQuality:
    """`compare_to_truth` on files already read (`instance_rles_by_file`); `truth` may be a subset of the
    pictures, such as one kind of scene. The paths only name the files in an error."""
    shared = sorted(set(weak) & set(truth))
    if not shared:
        raise InputError(f"no image of {labels_path} appears in the ground truth (file names differ?)", truth_path)
    scores = np.concatenate([matched_ious(weak[name], truth[name]) for name in shared])
    return LabelQuality(
        images_compared=len(shared),
        truth_images_without_labels=len(set(truth) - set(weak)),
        true_instances=len(scores),
        weak_instances=sum(len(weak[name]) for name in shared),
        mean_iou=round(float(scores.mean()), 4) if len(scores) else 0.0,
        instances_above_half=round(float((scores >= 0.5).mean()), 4) if len(scores) else 0.0,
    )
