"""COCO conventions shared by every stage: one class "salient", RLE masks, ids from 1.

The dataset stays plain COCO JSON on disk so that torchvision, detectron2 and mmdetection can
read it too.
"""

from __future__ import annotations

import math
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


def rle_as_text(rle: dict[str, Any]) -> dict[str, Any]:
    """pycocotools' RLE (bytes counts) as JSON can hold it (str counts)."""
    counts = rle["counts"]
    return {"size": [int(v) for v in rle["size"]], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


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


MAX_RUN_CHARACTERS = 7  # 7 x 5 bits hold any run of a picture within the size limit (2^32 pixels)


def compressed_rle_runs(counts: str) -> np.ndarray | None:
    """The run lengths of pycocotools' compressed RLE string (its rleFrString, vectorised), or None where the string
    is not one: a character outside '0'..'o', a run cut off at the end, or a run longer than 7 characters.

    pycocotools itself trusts the string: a run cut off makes it read past the end, and runs that do not add up
    to height x width make its decoder write past the mask or its IoU loop without end."""
    codes = np.frombuffer(counts.encode("latin-1"), np.uint8).astype(np.int64) - 48
    if len(codes) == 0:
        return np.zeros(0, np.int64)
    if codes.min() < 0 or codes.max() > 63 or codes[-1] & 0x20:
        return None
    ends = np.flatnonzero((codes & 0x20) == 0)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > MAX_RUN_CHARACTERS:
        return None
    group = np.repeat(np.arange(len(ends)), lengths)
    position = np.arange(len(codes)) - starts[group]
    values = np.bincount(group, weights=(codes & 0x1f) << (5 * position), minlength=len(ends)).astype(np.int64)
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * lengths[negative])
    runs = values.copy()  # from the third run on, each is stored as its difference to the run two before
    runs[3::2] = np.cumsum(values[1::2])[1:] if len(values) > 3 else runs[3::2]
    runs[4::2] = values[2] + np.cumsum(values[4::2]) if len(values) > 4 else runs[4::2]
    return runs


def segmentation_problem(segmentation: Any, pixels: int) -> str | None:
    """What is wrong with a COCO segmentation of a `pixels`-pixel picture, or None: RLE runs that are negative or do
    not add up to the picture, polygons of an odd or too small number of coordinates, or numbers that are not finite."""
    if isinstance(segmentation, Mapping):
        counts = segmentation.get("counts")
        if isinstance(counts, list):
            if not all(isinstance(run, int) and not isinstance(run, bool) for run in counts):
                return "RLE counts that are not integers"
            runs = np.asarray(counts, dtype=object)
        elif isinstance(counts, (str, bytes)):
            try:
                text = counts.decode("ascii") if isinstance(counts, bytes) else counts
                runs = compressed_rle_runs(text)
            except (UnicodeError, ValueError):
                runs = None
            if runs is None:
                return "RLE counts that are not pycocotools' compressed string"
        else:
            return "RLE without counts"
        if any(run < 0 for run in runs):
            return "an RLE run of negative length"
        total = int(sum(int(run) for run in runs))
        if total != pixels:
            return f"RLE runs add up to {total} pixels, not the picture's {pixels}"
        return None
    if isinstance(segmentation, list):
        if not segmentation:
            return "no polygon"
        for polygon in segmentation:
            if not isinstance(polygon, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in polygon):
                return "a polygon that is not a list of numbers"
            if len(polygon) % 2 or len(polygon) < 6:
                return f"a polygon of {len(polygon)} numbers (x, y pairs, at least three points)"
            if not all(math.isfinite(v) for v in polygon):
                return "a polygon with a coordinate that is not a finite number"
        return None
    return f"a {type(segmentation).__name__}, neither RLE nor polygons"


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
        problem = segmentation_problem(segmentation, height * width)
        if problem:
            raise InputError(f"{what}: unreadable segmentation ({problem})", source)
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
