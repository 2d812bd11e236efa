"""Algorithm 1 for one instance, as a CRF worker runs it: R_f = CRF(R), K1, K2, keep or replace.

A job carries everything the worker needs (no tensors, picklable), and a decision everything the
trainer applies at the next round boundary; see `cgc.training.label_update` for how jobs are chosen
and rounds written. Numpy and OpenCV only: no torch is loaded in a worker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from cgc.coco import binary_mask_iou, decode_mask, encode_mask, mask_bbox_xyxy
from cgc.datasets.pictures import read_rgb
from cgc.refine.crf import CRFParams, refine_instance
from cgc.refine.update_guards import UpdateGuards, guarded_label
from cgc.refine.update_rule import DEFAULT_PHI, DEFAULT_SIGMA, k1, k2, should_replace


@dataclass(frozen=True)
class UpdateJob:
    """Everything a worker needs to decide one instance's label (picklable, no tensors)."""

    round: int  # the round this job's decision belongs to
    slot: int  # global batch slot of the sighting (iteration * batch_size + position): the order key
    iteration: int
    image_id: int
    annotation_id: int
    picture: str  # the RGB picture's path
    probabilities: np.ndarray  # R, float16 (h, w) at logit resolution of the resized (maybe flipped) image
    stride: int  # resized-image pixels per cell
    resized_size: tuple[int, int]  # (h, w) of the resized image
    flipped: bool  # the training sample was mirrored: R is too
    label: Any  # the current label C (COCO segmentation)
    params: CRFParams = field(default_factory=CRFParams)
    phi: float = DEFAULT_PHI
    sigma: float = DEFAULT_SIGMA
    guards: UpdateGuards = field(default_factory=UpdateGuards)
    others: list[Any] = field(default_factory=list)  # the image's other labels (COCO segmentations), for the guards


@dataclass(frozen=True)
class UpdateDecision:
    """Algorithm 1 for one instance: what the worker found, and C_next if it replaces C."""

    round: int
    slot: int
    iteration: int
    image_id: int
    annotation_id: int
    k1: float  # K1(R, C)
    k2: float  # K2(R_f, C): Algorithm 1 replaces C when k2 - k1 < phi
    replaced: bool
    refined_empty: bool  # R_f >= 0.5 has no pixel: C is kept whatever K1 / K2 say (an empty label breaks the box)
    iou_label_refined: float  # IoU(C, R_f >= 0.5): how much C would change (1 = not at all)
    area_before: int
    area_after: int
    k2_next: float  # K2(R_f, C_next): L_upd's K2 term for this instance from the next round on
    segmentation: dict[str, Any] | None  # C_next (R_f >= 0.5, under the guards) as COCO RLE, when replaced
    refused_by: str = ""  # the guard that kept C although Algorithm 1 would have replaced it

    @property
    def changed(self) -> bool:
        """Replaced by a different mask: R_f >= 0.5 can equal C (C came from the previous round's R_f)."""
        return self.replaced and self.iou_label_refined < 1.0

    def log_entry(self) -> dict[str, Any]:
        entry = {key: value for key, value in asdict(self).items() if key not in ("segmentation", "round", "slot")}
        return entry | {"k2_minus_k1": self.k2 - self.k1, "iou_old_new": self.iou_label_refined if self.replaced else 1.0}


def map_to_image(probabilities: np.ndarray, stride: int, resized_size: tuple[int, int], flipped: bool,
                 image_size: tuple[int, int]) -> np.ndarray:
    """R at logit resolution -> (H, W) float32 probabilities on the original picture (as ``to_image_masks``)."""
    prob = np.asarray(probabilities, dtype=np.float32)
    cells_h, cells_w = prob.shape
    if stride > 1:
        prob = cv2.resize(prob, (cells_w * stride, cells_h * stride), interpolation=cv2.INTER_LINEAR)
    prob = prob[: resized_size[0], : resized_size[1]]
    if flipped:
        prob = prob[:, ::-1]
    height, width = image_size
    prob = cv2.resize(np.ascontiguousarray(prob), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(prob, 0.0, 1.0)


def label_window_core(label: np.ndarray) -> tuple[float, float, float, float] | None:
    """The CRF window's core for a label update: the box of the current label C (None if C is empty).

    Not R's support: early in training R is diffuse (> 0.05 nearly everywhere), which would make
    the window nearly the whole image and the CRF several times dearer; and the box prior says the instance
    lies in its box, so the CRF has nothing to decide far outside it (R_f = R there).
    """
    return mask_bbox_xyxy(label) if label.any() else None


def decide_instance(job: UpdateJob) -> UpdateDecision:
    """The worker's part: R_f = CRF(R), K1, K2 and keep-or-replace for one instance."""
    rgb = read_rgb(job.picture)
    height, width = rgb.shape[:2]
    r = map_to_image(job.probabilities, job.stride, job.resized_size, job.flipped, (height, width))
    c = decode_mask(job.label, height, width)
    c_soft = c.astype(np.float32)
    r_f = refine_instance(r, rgb, job.params, box=label_window_core(c))
    refined = r_f >= 0.5
    k1_value, k2_value = k1(r, c_soft, job.sigma), k2(r_f, c_soft, job.sigma)
    empty = not bool(refined.any())
    replaced = should_replace(k1_value, k2_value, job.phi) and not empty
    refused_by = ""
    if replaced and job.guards.any:
        others = np.zeros((height, width), bool)
        for segmentation in job.others:
            others |= decode_mask(segmentation, height, width)
        guarded, refused_by = guarded_label(c, r_f, others, job.guards)
        replaced = guarded is not None
        refined = guarded if guarded is not None else refined
    return UpdateDecision(
        round=job.round, slot=job.slot, iteration=job.iteration, image_id=job.image_id, annotation_id=job.annotation_id,
        k1=k1_value, k2=k2_value, replaced=replaced, refined_empty=empty, iou_label_refined=binary_mask_iou(c, refined),
        area_before=int(c.sum()), area_after=int(refined.sum()) if replaced else int(c.sum()),
        k2_next=k2(r_f, refined.astype(np.float32), job.sigma) if replaced else k2_value,
        segmentation=encode_mask(refined) if replaced else None, refused_by=refused_by,
    )


def latest_decisions(decisions: list[UpdateDecision]) -> list[UpdateDecision]:
    """One decision per instance (the latest sighting wins), in sighting order."""
    by_instance = {decision.annotation_id: decision for decision in sorted(decisions, key=lambda d: d.slot)}
    return sorted(by_instance.values(), key=lambda d: d.slot)
