"""The score threshold a user can trust: picked on validation images, kept in the checkpoint.

A fixed 0.5 means something different for every model: an undertrained one scores its good
detections at 0.3, a long-trained one its duplicates at 0.6. `cgc calibrate` runs the model on
validation images with instance labels (true masks, or weak labels when that is all there is),
and takes the threshold with the best F1 of what `cgc predict` would write there (one instance
per pixel, matched one to one at IoU >= 0.5, as `cgc eval` counts precision and recall). Ties
go to the higher threshold: fewer predictions for the same F1. `cgc predict` and `cgc eval`
use the recorded value unless `--score-thr` is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgc.coco import mask_iou_matrix
from cgc.errors import InputError
from cgc.evaluation import DEFAULT_SCORE_THRESHOLD, load_ground_truth, masks_by_image, matched_instances
from cgc.inference import Detections, LoadedModel, coco_results, detect_images, gt_image_paths
from cgc.checkpoint import add_to_checkpoint

CANDIDATES: tuple[float, ...] = tuple(round(0.05 * step, 2) for step in range(1, 20))  # 0.05 .. 0.95
MATCH_IOU = 0.5


@dataclass(frozen=True)
class ThresholdRow:
    """What `cgc predict` would write on the validation images at one threshold."""

    threshold: float
    predictions: int
    matched: int
    truth: int

    @property
    def precision(self) -> float:
        return self.matched / self.predictions if self.predictions else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else 0.0

    @property
    def f1(self) -> float:
        total = self.predictions + self.truth
        return 2 * self.matched / total if total else 0.0


@dataclass(frozen=True)
class ScoreThresholdChoice:
    """The picked threshold, how it did, and on what: stored in the checkpoint as plain types."""

    threshold: float
    f1: float
    precision: float
    recall: float
    predictions_per_instance: float
    picked_on: str
    images: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def threshold_rows(model: LoadedModel, ground_truth: str | Path, images_dir: str | Path,
                   candidates: Sequence[float] = CANDIDATES, progress: bool = True) -> tuple[list[ThresholdRow], int]:
    """Counts at every candidate threshold over the ground truth's images (and how many images)."""
    truth = load_ground_truth(ground_truth)
    by_image, _ = masks_by_image(truth, [], 0.0, [image["id"] for image in truth["images"]])
    entries = gt_image_paths(ground_truth, truth["images"], images_dir)
    counts = np.zeros((len(candidates), 2), np.int64)  # predictions, matched
    ids = {path: image_id for image_id, path in entries}
    for path, _rgb, detections in detect_images(model.model, model.device, [path for _, path in entries], progress):
        counts += image_counts(detections, by_image[ids[path]], candidates)
    total_truth = sum(len(instances) for instances in by_image.values())
    rows = [ThresholdRow(float(t), int(p), int(m), total_truth) for t, (p, m) in zip(candidates, counts)]
    return rows, len(entries)


def image_counts(detections: Detections, truth: list[dict], candidates: Sequence[float]) -> np.ndarray:
    """(len(candidates), 2): predictions written and true instances matched, at each threshold."""
    counts = np.zeros((len(candidates), 2), np.int64)
    for row, threshold in enumerate(candidates):
        predicted = [entry["segmentation"] for entry in coco_results(0, detections.instances(threshold))]
        counts[row] = len(predicted), matched_instances(mask_iou_matrix(predicted, truth), MATCH_IOU) if predicted and truth else 0
    return counts


def pick_score_threshold(rows: Sequence[ThresholdRow], picked_on: str, images: int) -> ScoreThresholdChoice:
    """The best F1; of equal F1 (to 1e-9), the highest threshold. Without a true instance there is nothing to
    choose by: an InputError, not a threshold picked from zeros."""
    if not rows or rows[0].truth == 0:
        raise InputError(f"the validation labels hold no instance on the {images} pictures given: a threshold "
                         f"cannot be chosen from them", picked_on)
    best = max(rows, key=lambda row: (round(row.f1, 9), row.threshold))
    per_instance = best.predictions / best.truth if best.truth else 0.0
    return ScoreThresholdChoice(best.threshold, round(best.f1, 4), round(best.precision, 4), round(best.recall, 4),
                                round(per_instance, 4), picked_on, images)


def record_score_threshold(checkpoint: Path, choice: ScoreThresholdChoice) -> None:
    """Store the choice in the checkpoint file (rewritten atomically)."""
    add_to_checkpoint(checkpoint, "score_threshold", choice.to_json())


def score_threshold_of(model: LoadedModel, given: float | None) -> float:
    """The threshold to use: the one given, else the checkpoint's calibrated one, else 0.5."""
    if given is not None:
        return given
    if model.score_threshold is not None:
        return model.score_threshold
    return DEFAULT_SCORE_THRESHOLD
