"""COCO conventions shared by every stage: one class "salient", RLE masks, ids from 1.

The dataset stays plain COCO JSON on disk so that torchvision, detectron2 and mmdetection can
read it too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

SALIENT_CATEGORY_ID = 1
SALIENT_CATEGORY = {"id": SALIENT_CATEGORY_ID, "name": "salient", "supercategory": "salient"}


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Binary HxW mask -> COCO compressed RLE with `counts` as str (JSON-serialisable)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def decode_mask(segmentation: dict[str, Any] | list, height: int, width: int) -> np.ndarray:
    """COCO segmentation (RLE, uncompressed RLE or polygons) -> boolean HxW mask."""
    return mask_utils.decode(segmentation_to_rle(segmentation, height, width)).astype(bool)


def mask_bbox_xywh(mask: np.ndarray) -> list[float]:
    """Tight pixel box of a mask in COCO xywh (exclusive right/bottom edge); zeros if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = int(xs.min()), int(ys.min())
    return [float(x0), float(y0), float(xs.max() + 1 - x0), float(ys.max() + 1 - y0)]


def mask_bbox_xyxy(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight pixel box of a mask as (x0, y0, x1, y1), exclusive ends, as CRF windows and detectors take it; zeros if empty."""
    x, y, w, h = mask_bbox_xywh(mask)
    return x, y, x + w, y + h


def coco_dataset(images: list[dict], annotations: list[dict], description: str) -> dict[str, Any]:
    return {
        "info": {"description": description, "version": "1.0"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [dict(SALIENT_CATEGORY)],
    }


def segmentation_to_rle(segmentation: dict[str, Any] | list, height: int, width: int) -> dict[str, Any]:
    """Any COCO segmentation -> compressed RLE as pycocotools wants it (bytes counts)."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    rle = dict(segmentation)
    if isinstance(rle["counts"], str):
        rle["counts"] = rle["counts"].encode("ascii")
    return rle


def mask_iou_matrix(predicted: list[dict[str, Any]], truth: list[dict[str, Any]]) -> np.ndarray:
    """IoU between every predicted and every true RLE mask, shape (len(predicted), len(truth))."""
    if not predicted or not truth:
        return np.zeros((len(predicted), len(truth)))
    return np.asarray(mask_utils.iou(predicted, truth, [0] * len(truth)), dtype=float)
