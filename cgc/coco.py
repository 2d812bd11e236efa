"""COCO conventions shared by every stage: one class "salient", RLE masks, ids from 1.

The dataset stays plain COCO JSON on disk so that torchvision, detectron2 and mmdetection can
read it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from cgc.errors import InputError

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


def binary_mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks of one size; 1.0 when both are empty (nothing differs)."""
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def mask_bbox_xyxy(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight pixel box of a mask as (x0, y0, x1, y1), exclusive ends, as CRF windows and detectors take it; zeros if empty."""
    return bbox_xyxy(mask_bbox_xywh(mask))


def bbox_xyxy(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    """A COCO x, y, w, h box as x0, y0, x1, y1."""
    x, y, w, h = bbox
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


def checked_rle(segmentation: Any, image: Mapping[str, Any], source: str | Path, what: str) -> dict[str, Any]:
    """Any COCO segmentation -> RLE with str counts, checked against the image's height and width.

    Junk (bad counts, odd polygons, a mask of another size) raises an InputError naming `source`
    and `what`, here rather than deep inside pycocotools or a training step.
    """
    height, width = image["height"], image["width"]
    try:
        if isinstance(segmentation, Mapping) and list(segmentation.get("size", [])) != [height, width]:
            raise InputError(f"{what}: mask size {segmentation.get('size')} differs from image "
                             f"{image['id']!r} ({height}x{width})", source)
        rle = segmentation_to_rle(segmentation, height, width)
        if isinstance(rle, list):  # frPyObjects on an uncompressed-RLE list
            rle = mask_utils.merge(rle)
        rle = dict(rle)
        if isinstance(rle["counts"], bytes):
            rle["counts"] = rle["counts"].decode("ascii")
        mask_utils.area(rle)  # decodes the counts: fails here rather than inside COCOeval
    except InputError:
        raise
    except Exception as exc:  # pycocotools raises TypeError/ValueError/IndexError/... on junk
        raise InputError(f"{what}: unreadable segmentation ({type(exc).__name__}: {exc})", source) from None
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"]}
