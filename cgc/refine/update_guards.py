"""Guards on Algorithm 1's replacement of a weak label C by the CRF's map R_f, each off by default.

Algorithm 1 replaces C by R_f >= 0.5 whenever K2 - K1 < phi, which also replaces good labels by
worse maps (docs/method/crf.md). Each guard uses what is known to be true, or
what says the map is not ready, and each can be turned on alone to measure it:

- **region** (``region_margin``, pixels): the salient region is ground truth. The new label stays
  within the image's labelled salient pixels (the union of its instances' labels, which the
  builder cut from the SOD mask) grown by the margin, and takes no pixel another instance's label
  holds.
- **box** (``box_margin``, a fraction of the box side): the new label stays inside the
  instance's consensus box grown by that fraction per side.
- **quality floor** (``min_iou``, ``min_confidence``): R_f is refused when its mask overlaps C by
  less than ``min_iou``, or when the network's map R is diffuse: mean |R - 0.5| over C's box
  below ``min_confidence`` (early maps hover near 0.5).
- **blending** (``blend_confidence``): instead of replacing C wholesale, only the pixels where
  R_f and C disagree and R_f is confident (|R_f - 0.5| >= the value) change.
- **shared pixels only** (``shared_only``): only the pixels that C and another instance's label
  both claim may change; the rest of C stays as it is. Those are the pixels the weak labels left
  undecided (the naive rule gives every salient pixel in two boxes to both). Pixels the labels
  already gave to one instance stay with it: the priors' builder decides shared pixels with colour
  models and a graph cut, and the maps of a short training decide them worse (docs/method/crf.md, "Dense CRF
  and label updates"), so its labels, which never overlap, are left as they are.

Pure numpy, for the CRF workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cgc.coco import binary_mask_iou, mask_bbox_xyxy
from cgc.settings import option
from cgc.weaklabels.priors import box_region


@dataclass(frozen=True)
class UpdateGuards:
    """Which guards are on (None / 0: off, Algorithm 1 as written); see the module docstring."""

    region_margin: int | None = option(
        None, "A refined label stays within the image's labelled salient pixels grown by this many pixels, and off "
        "other instances' labels.", minimum=0, default_text="off", experimental=True)
    box_margin: float | None = option(
        None, "A refined label stays inside its consensus box grown by this fraction of its side.", minimum=0,
        default_text="off", experimental=True)
    min_iou: float = option(0.0, "Refuse a refined label whose IoU with the current one is below this (0: off).",
                            minimum=0, maximum=1, experimental=True)
    min_confidence: float = option(
        0.0, "Refuse the update while the network's map is diffuse, mean |R - 0.5| over the label's box below this "
        "(0: off).", minimum=0, maximum=0.5, experimental=True)
    blend_confidence: float | None = option(
        None, "Change only the pixels where the refined map disagrees with the label and |R_f - 0.5| is at least "
        "this, instead of replacing the label.", minimum=0, maximum=0.5, default_text="off", experimental=True)
    shared_only: bool = option(
        False, "Change only the pixels that another instance's label claims too, which the weak labels left "
        "undecided; every other pixel keeps its label. Measured best with label_update.phi 0.15 (docs/method/crf.md).",
        advanced=True)

    @property
    def any(self) -> bool:
        return (self.region_margin is not None or self.box_margin is not None or self.min_iou > 0
                or self.min_confidence > 0 or self.blend_confidence is not None or self.shared_only)


def salient_region(label: np.ndarray, others: np.ndarray, margin: int) -> np.ndarray:
    """(H, W) bool: the image's labelled salient pixels grown by ``margin`` pixels, less the other instances' own."""
    salient = (label | others).astype(np.uint8)
    if margin > 0:
        salient = cv2.dilate(salient, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)))
    return salient.astype(bool) & ~(others & ~label)


def shared_pixels(label: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels this label and another instance's label both claim."""
    return label & others


def guarded_label(label: np.ndarray, r: np.ndarray, r_f: np.ndarray, others: np.ndarray,
                  box: tuple[float, float, float, float], guards: UpdateGuards) -> tuple[np.ndarray | None, str]:
    """The label Algorithm 1's replacement gives under ``guards``: (C_next, "") or (None, why C stays).

    ``label`` C and ``others`` (the union of the image's other labels) are bool (H, W); ``r`` and ``r_f`` the
    network's and the CRF's maps; ``box`` the instance's consensus box, x1, y1, x2, y2.
    """
    if guards.min_confidence > 0:
        x0, y0, x1, y1 = (int(v) for v in mask_bbox_xyxy(label)) if label.any() else (0, 0, *label.shape[::-1])
        window = r[y0:y1, x0:x1]
        if window.size and float(np.mean(np.abs(window - 0.5))) < guards.min_confidence:
            return None, "diffuse map"
    proposal = r_f >= 0.5
    if guards.region_margin is not None:
        proposal &= salient_region(label, others, guards.region_margin)
    if guards.box_margin is not None:
        proposal &= box_region(box, guards.box_margin, label.shape)
    if guards.blend_confidence is not None:
        confident = np.abs(r_f - 0.5) >= guards.blend_confidence
        proposal = np.where(confident, proposal, label)
    if guards.shared_only:
        proposal = np.where(shared_pixels(label, others), proposal, label)
    if not proposal.any():
        return None, "empty after the guards"
    if np.array_equal(proposal, label):
        return None, "unchanged under the guards"
    if guards.min_iou > 0 and binary_mask_iou(proposal, label) < guards.min_iou:
        return None, "too far from the label"
    return proposal, ""
