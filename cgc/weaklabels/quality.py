"""How close weak labels come to the true instances, where a fully annotated copy exists.

Per image, weak and true instances are paired one to one by the Hungarian assignment on mask
IoU; a true instance left without a partner scores 0. The mean over all true instances of the
compared images is the figure the documentation reports.

Given the consensus boxes the labels were built from, the mean is also split between the true
instances whose box overlaps another box and the rest: rules differ only where two boxes share
pixels. Given the salient-region masks too, a ceiling is reported: each true instance cut to the
mask and to its box, the best labels a rule could give that keeps within both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from cgc.coco import bbox_xyxy, binary_mask_iou, decode_mask, encode_mask, mask_iou_matrix
from cgc.coco_files import read_coco_boxes, read_instance_file
from cgc.datasets.label_maps import read_binary_mask
from cgc.errors import InputError
from cgc.weaklabels.priors import box_region


@dataclass
class LabelQuality:
    images_compared: int
    truth_images_without_labels: int
    true_instances: int
    weak_instances: int
    mean_iou: float
    instances_above_half: float  # share of true instances matched with IoU >= 0.5
    overlapping_instances: int | None = None  # true instances whose consensus box overlaps another box
    mean_iou_overlapping: float | None = None
    mean_iou_apart: float | None = None
    ceiling_mean_iou: float | None = None  # each true instance cut to the mask and its box


def paired(weak: list[dict[str, Any]], truth: list[dict[str, Any]]) -> list[tuple[int, int, float]]:
    """The one-to-one pairing of one picture's weak and true instances (Hungarian, on mask IoU): (weak index,
    true index, their IoU) per pair."""
    ious = mask_iou_matrix(weak, truth)
    if not ious.size:
        return []
    rows, cols = linear_sum_assignment(-ious)
    return [(int(row), int(col), float(ious[row, col])) for row, col in zip(rows, cols)]


def matched_ious(weak: list[dict[str, Any]], truth: list[dict[str, Any]]) -> np.ndarray:
    """Per true instance, the IoU of the weak instance paired with it (0 when unpaired)."""
    scores = np.zeros(len(truth))
    for _, col, iou in paired(weak, truth):
        scores[col] = iou
    return scores


def compare_to_truth(labels_path: str | Path, truth_path: str | Path, boxes_path: str | Path | None = None,
                     masks_dir: str | Path | None = None) -> LabelQuality:
    """Score the weak labels against true instance masks, on the images both files hold; with the consensus boxes
    (`boxes_path`), split by whether a box overlaps another; with the salient-region masks too, the ceiling."""
    weak = read_instance_file(labels_path, "weak-label file").masks_by_file_name()
    truth = read_instance_file(truth_path, "ground-truth file").masks_by_file_name()
    quality = label_quality(weak, truth, labels_path, truth_path)
    if boxes_path is None:
        return quality
    pairs = box_pairs(boxes_path, truth)
    crowded = {name: overlapping(pairs[name], len(rles)) for name, rles in truth.items()}
    ious = paired_ious(weak, truth, labels_path, truth_path)
    split = {wanted: [scores[crowded[name] == wanted] for name, scores in ious.items()] for wanted in (True, False)}
    quality.overlapping_instances = int(sum(len(scores) for scores in split[True]))
    quality.mean_iou_overlapping, quality.mean_iou_apart = (mean_of(split[True]), mean_of(split[False]))
    if masks_dir is not None:
        ceiling = ceiling_labels(pairs, truth, Path(masks_dir))
        quality.ceiling_mean_iou = label_quality(ceiling, truth, "the ceiling", truth_path).mean_iou
    return quality


def mean_of(per_picture: list[np.ndarray]) -> float | None:
    scores = np.concatenate(per_picture) if per_picture else np.zeros(0)
    return round(float(scores.mean()), 4) if scores.size else None


def box_pairs(boxes_path: str | Path, truth: dict[str, list[dict[str, Any]]]) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Per picture, each true instance paired with a consensus box (Hungarian assignment on the IoU of the box's
    region with the instance): (instance index, box region) for every pair, and every box's region."""
    consensus = read_coco_boxes(boxes_path)
    grouped = consensus.annotations_by_image()
    by_name = {image["file_name"]: [bbox_xyxy(item["bbox"]) for item in grouped[image["id"]]] for image in consensus.images}
    pairs: dict[str, list[tuple[int, np.ndarray]]] = {}
    for name, rles in truth.items():
        pairs[name] = []
        if not rles or not by_name.get(name):
            continue
        height, width = rles[0]["size"]
        instances = [decode_mask(rle, height, width) for rle in rles]
        regions = [box_region(box, 0.0, (height, width)) for box in by_name[name]]
        overlap = np.array([[binary_mask_iou(region, mask) for region in regions] for mask in instances])
        paired = dict(zip(*linear_sum_assignment(-overlap)))
        others = [region for j, region in enumerate(regions) if j not in paired.values()]
        pairs[name] = [(i, regions[j]) for i, j in paired.items()] + [(-1, region) for region in others]
    return pairs


def overlapping(pairs: list[tuple[int, np.ndarray]], instances: int) -> np.ndarray:
    """Per true instance, whether the box paired with it overlaps another box (an unpaired instance: no)."""
    crowded = np.zeros(instances, bool)
    for index, region in pairs:
        if index >= 0:
            crowded[index] = any((region & other).any() for _, other in pairs if other is not region)
    return crowded


def ceiling_labels(pairs: dict[str, list[tuple[int, np.ndarray]]], truth: dict[str, list[dict[str, Any]]],
                   masks_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Each true instance within the salient-region mask and its paired box: what a perfect rule would give."""
    ceiling: dict[str, list[dict[str, Any]]] = {}
    for name, rles in truth.items():
        ceiling[name] = []
        paired = [(index, region) for index, region in pairs.get(name, []) if index >= 0]
        if not paired:
            continue
        height, width = rles[0]["size"]
        salient = read_binary_mask(masks_dir / f"{Path(name).stem}.png")
        if salient.shape != (height, width):
            raise InputError(f"is {salient.shape[1]}x{salient.shape[0]}, the ground truth's picture {height}x{width}",
                             masks_dir / f"{Path(name).stem}.png")
        ceiling[name] = [encode_mask(salient & decode_mask(rles[index], height, width) & region)
                         for index, region in paired]
    return ceiling


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
