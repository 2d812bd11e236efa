"""Simulated box annotators, written the way Label Studio exports a task.

Each annotator has a personal habit (drawing a little loose or tight) plus per-box jitter, now
and then misses an instance (small ones more often) or draws a box around something that is not
salient. That is the noise the consensus step has to average away.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from cgc.coco import mask_bbox_xyxy


@dataclass(frozen=True)
class AnnotatorHabits:
    """Rates and sizes of the simulated annotators' mistakes."""

    annotators: int = 5
    jitter: float = 0.03  # per-edge standard deviation, as a fraction of the box side
    bias: float = 0.015  # spread of each annotator's personal loose/tight tendency
    miss_rate: float = 0.04
    small_miss_rate: float = 0.12  # for instances under 1% of the image
    extra_box_rate: float = 0.05  # per annotator and image
    cancel_rate: float = 0.01  # an annotator who skips the task


def true_boxes(instances: list[np.ndarray]) -> list[tuple[float, float, float, float]]:
    """Tight x1, y1, x2, y2 pixel boxes of the visible instance masks."""
    return [mask_bbox_xyxy(mask) for mask in instances]


def jittered_box(rng: np.random.Generator, box: tuple[float, float, float, float], bias: float, jitter: float, width: int, height: int) -> tuple[float, float, float, float]:
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    dx1, dx2 = rng.normal(-bias, jitter) * bw, rng.normal(bias, jitter) * bw
    dy1, dy2 = rng.normal(-bias, jitter) * bh, rng.normal(bias, jitter) * bh
    nx1, ny1 = np.clip(x1 + dx1, 0, width - 1), np.clip(y1 + dy1, 0, height - 1)
    nx2, ny2 = np.clip(x2 + dx2, nx1 + 1, width), np.clip(y2 + dy2, ny1 + 1, height)
    return float(nx1), float(ny1), float(nx2), float(ny2)


def spurious_box(rng: np.random.Generator, width: int, height: int) -> tuple[float, float, float, float]:
    w, h = rng.uniform(0.05, 0.25) * width, rng.uniform(0.05, 0.25) * height
    x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
    return float(x), float(y), float(x + w), float(y + h)


def rectangle_result(box: tuple[float, float, float, float], width: int, height: int, result_id: str) -> dict:
    """One Label Studio `rectanglelabels` result, coordinates in percent of the image."""
    x1, y1, x2, y2 = box
    return {
        "id": result_id,
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "origin": "manual",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {
            "x": 100.0 * x1 / width,
            "y": 100.0 * y1 / height,
            "width": 100.0 * (x2 - x1) / width,
            "height": 100.0 * (y2 - y1) / height,
            "rotation": 0,
            "rectanglelabels": ["salient"],
        },
    }


def label_studio_task(
    rng: np.random.Generator,
    task_id: int,
    file_name: str,
    instances: list[np.ndarray],
    habits: AnnotatorHabits,
    annotator_biases: np.ndarray,
) -> dict:
    """A Label Studio export task with one annotation per simulated annotator."""
    height, width = instances[0].shape if instances else (0, 0)
    boxes = true_boxes(instances)
    annotations = []
    for annotator in range(habits.annotators):
        user_id = annotator + 1
        annotation = {"id": task_id * 100 + user_id, "completed_by": user_id, "was_cancelled": False, "result": []}
        if rng.random() < habits.cancel_rate:
            annotation["was_cancelled"] = True
            annotations.append(annotation)
            continue
        drawn = []
        for box, mask in zip(boxes, instances):
            small = mask.sum() < 0.01 * width * height
            if rng.random() < (habits.small_miss_rate if small else habits.miss_rate):
                continue
            drawn.append(jittered_box(rng, box, annotator_biases[annotator], habits.jitter, width, height))
        if rng.random() < habits.extra_box_rate:
            drawn.append(spurious_box(rng, width, height))
        for index, box in enumerate(drawn):
            result_id = hashlib.sha1(f"{task_id}-{user_id}-{index}".encode()).hexdigest()[:10]
            annotation["result"].append(rectangle_result(box, width, height, result_id))
        annotations.append(annotation)
    upload_prefix = hashlib.sha1(file_name.encode()).hexdigest()[:8]
    return {
        "id": task_id,
        "data": {"image": f"/data/upload/1/{upload_prefix}-{file_name}"},
        "annotations": annotations,
        "predictions": [],
    }
