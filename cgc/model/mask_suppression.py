"""Mask-level duplicate suppression after the detector's box NMS.

Box NMS keeps two boxes of one object when they differ enough (a box of the whole object and one
of its larger part), and their masks then cover the same pixels. Suppressing on *mask* IoU
removes those duplicates whatever their boxes look like. Three ways are offered, all on the
binary masks (probability >= 0.5) of one image's detections, taken as RLE from their windows
(``cgc.model.box_masks``), so that no picture-sized map per detection is ever made:

- ``"greedy"``: mask NMS. Walk the detections by decreasing score; drop every later one whose
  mask IoU with a kept one exceeds ``iou_threshold``.
- ``"matrix"``: Matrix NMS (SOLOv2, Wang et al. 2020, eq. 4 with the Gaussian kernel). Every
  score is decayed by its overlap with higher-scored masks, compensated by how much those masks
  were themselves suppressed; nothing is dropped, the score threshold then does the cutting.
- ``"overlap"``: the test Mask2Former's panoptic inference applies before pasting a mask. Walk
  by decreasing score; drop a detection when more than ``max_covered`` of its mask lies under
  the masks already kept. Unlike IoU it also catches a detection of a *part* of an object (a
  small mask inside a kept large one has a small IoU with it, but is wholly covered), which would
  otherwise survive as a fragment once every pixel goes to one instance.

Before suppressing, ``rescore="maskness"`` multiplies each score by its mask's *maskness*, the
mean probability over the pixels the mask claims (SOLOv2, Wang et al. 2020). The box head
scores a box, not its mask: a loose box around two overlapping objects can outscore the tight
box of one of them, and then suppresses it. A mask that is sure of its pixels ranks higher.

The benchmark ``benchmarks/postprocess.py`` measures them (docs/method/evaluation.md, "Predictions").
"""

from __future__ import annotations

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import Tensor

from cgc.model.box_masks import BoxMasks
from cgc.network_settings import MASK_THRESHOLD, NETWORK, SuppressionSpec


def mask_iou_matrix(masks: BoxMasks, threshold: float = MASK_THRESHOLD) -> Tensor:
    """(n, n) IoU of the binary masks (probability >= threshold), from their RLEs."""
    rles = masks.rles(threshold)
    if not rles:
        return torch.zeros((0, 0))
    return torch.as_tensor(np.asarray(mask_utils.iou(rles, rles, [0] * len(rles)), np.float32)).reshape(len(rles), -1)


def maskness(masks: BoxMasks, threshold: float = MASK_THRESHOLD) -> Tensor:
    """(n,) the mean probability over the pixels each mask claims (``masks >= threshold``); 0 for an empty mask."""
    return masks.maskness(threshold)


def greedy_mask_nms(ious: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices kept by greedy NMS on a precomputed mask IoU matrix, by decreasing score."""
    order = torch.argsort(scores, descending=True, stable=True)
    suppressed = torch.zeros(len(scores), dtype=torch.bool, device=scores.device)
    keep = []
    for index in order.tolist():
        if suppressed[index]:
            continue
        keep.append(index)
        suppressed |= ious[index] > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=scores.device)


def matrix_nms_scores(ious: Tensor, scores: Tensor, sigma: float = 2.0) -> Tensor:
    """SOLOv2's Matrix NMS (Gaussian kernel): every score decayed by its overlaps with higher-scored masks."""
    if len(scores) == 0:
        return scores
    order = torch.argsort(scores, descending=True, stable=True)
    sorted_ious = ious[order][:, order].triu(diagonal=1)  # [i, j]: i scored higher than j
    compensation = sorted_ious.max(dim=0).values  # how much each mask is itself overlapped from above
    decay = torch.exp(-sigma * (sorted_ious**2 - compensation[:, None] ** 2)).min(dim=0).values
    decayed = torch.empty_like(scores)
    decayed[order] = scores[order] * decay
    return decayed


def covered_mask_nms(masks: BoxMasks, scores: Tensor, max_covered: float, threshold: float = MASK_THRESHOLD) -> Tensor:
    """Indices kept, by decreasing score, when a mask more than ``max_covered`` under kept masks is dropped.

    An empty mask is dropped too: it is no instance.
    """
    rles = masks.rles(threshold)
    claimed = None
    keep = []
    for index in torch.argsort(scores, descending=True, stable=True).tolist():
        area = int(mask_utils.area(rles[index]))
        if area == 0:
            continue
        covered = 0 if claimed is None else int(mask_utils.area(mask_utils.merge([rles[index], claimed], intersect=True)))
        if covered > max_covered * area:
            continue
        keep.append(index)
        claimed = rles[index] if claimed is None else mask_utils.merge([claimed, rles[index]])
    return torch.tensor(keep, dtype=torch.long, device=scores.device)


class MaskSuppression:
    """One image's detections -> the indices to keep and their (maybe decayed) scores, as ``spec`` says."""

    def __init__(self, spec: SuppressionSpec = NETWORK.suppression) -> None:
        self.spec = spec

    def __call__(self, masks: BoxMasks, scores: Tensor) -> tuple[Tensor, Tensor]:
        """One image's masks and ``scores`` (n,) -> (kept indices by decreasing score, their scores)."""
        spec = self.spec
        if spec.rescore == "maskness" and len(scores):
            scores = scores * maskness(masks).to(scores.device)
        if spec.method == "none" or len(scores) <= 1:
            keep = torch.argsort(scores, descending=True, stable=True)  # rescored: best first again
            return keep, scores[keep]
        if spec.method == "overlap":
            keep = covered_mask_nms(masks, scores, spec.iou_threshold)
            return keep, scores[keep]
        ious = mask_iou_matrix(masks).to(scores.device)
        if spec.method == "greedy":
            keep = greedy_mask_nms(ious, scores, spec.iou_threshold)
            return keep, scores[keep]
        decayed = matrix_nms_scores(ious, scores, spec.matrix_sigma)
        keep = torch.argsort(decayed, descending=True, stable=True)
        keep = keep[decayed[keep] >= spec.matrix_min_score]
        return keep, decayed[keep]
