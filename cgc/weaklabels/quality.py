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

from cgc.coco import mask_iou_matrix
from cgc.coco_files import read_instance_file
from cgc.errors import InputError


@dataclass
class LabelQuality:
    images_compared: int
    truth_images_without_labels: int
    true_instances: int
    weak_instances: int
    mean_iou: float
    instances_above_half: float  # share of true instances matched with IoU >= 0.5


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
    weak = read_instance_file(labels_path, "weak-label file").masks_by_file_name()
    truth = read_instance_file(truth_path, "ground-truth file").masks_by_file_name()
    return label_quality(weak, truth, labels_path, truth_path)


def paired_ious(weak: dict[str, list[dict[str, Any]]], truth: dict[str, list[dict[str, Any]]],
                labels_path: str | Path, truth_path: str | Path) -> dict[str, np.ndarray]:
    """Per picture both hold (in name order), `matched_ious` of its true instances; the paths name the files in
    the error raised when they share no picture."""
    shared = sorted(set(weak) & set(truth))
    if not shared:
        raise InputError(f"no image of {labels_path} appears in the ground truth (file names differ?)", truth_path)
    return {name: matched_ious(weak[name], truth[name]) for name in shared}


def label_quality(weak: dict[str, list[dict[str, Any]]], truth: dict[str, list[dict[str, Any]]],
                  labels_path: str | Path, truth_path: str | Path) -> LabelQuality:
    """`compare_to_truth` on files already read (`CocoFile.masks_by_file_name`); `truth` may be a subset of the
    pictures, such as one kind of scene. The paths only name the files in an error."""
    ious = paired_ious(weak, truth, labels_path, truth_path)
    shared = list(ious)
    scores = np.concatenate(list(ious.values()))
    return LabelQuality(
        images_compared=len(shared),
        truth_images_without_labels=len(set(truth) - set(weak)),
        true_instances=len(scores),
        weak_instances=sum(len(weak[name]) for name in shared),
        mean_iou=round(float(scores.mean()), 4) if len(scores) else 0.0,
        instances_above_half=round(float((scores >= 0.5).mean()), 4) if len(scores) else 0.0,
    )
