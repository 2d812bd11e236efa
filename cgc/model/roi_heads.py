"""CGCNet's second stage: torchvision's box machinery with a pluggable mask head.

``CGCRoIHeads`` keeps ``RoIHeads``' proposal sampling (``select_training_samples``), Fast R-CNN
loss and ``postprocess_detections`` (score threshold, NMS, top-k) and replaces Mask R-CNN's mask
branch by any ``MaskHead`` (GFR, LFR, RoIAlign, RoIMasking).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss

from cgc.model.mask_heads import MaskHead


class CGCRoIHeads(RoIHeads):
    """Box head + mask head for the class-agnostic (background / salient) network.

    Training: the mask head sees the positive sampled proposals of each image (ground-truth boxes
    included, as torchvision adds them to the proposals) with their matched (weak) masks, capped
    at ``mask_proposals_per_image`` by a random subset drawn from the torch RNG (seedable). For
    GFR, the "other proposals" suppressed for proposal i are exactly these proposals of the image.
    Inference: the top ``detections_per_img`` detections after NMS (the paper's 80) go through
    the mask head; detections carry "mask_logits", turned into image masks by ``CGCNet``.
    """

    def __init__(
        self,
        box_roi_pool: nn.Module,
        box_head: nn.Module,
        box_predictor: nn.Module,
        mask_head: Optional[MaskHead],
        fg_iou_thresh: float = 0.5,
        bg_iou_thresh: float = 0.5,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        bbox_reg_weights: Optional[tuple[float, float, float, float]] = None,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.7,
        detections_per_img: int = 80,
        mask_proposals_per_image: int = 16,
    ) -> None:
        super().__init__(
            box_roi_pool,
            box_head,
            box_predictor,
            fg_iou_thresh,
            bg_iou_thresh,
            batch_size_per_image,
            positive_fraction,
            bbox_reg_weights,
            score_thresh,
            nms_thresh,
            detections_per_img,
        )
        self.mask_head = mask_head
        self.mask_proposals_per_image = mask_proposals_per_image

    def has_mask(self) -> bool:
        return self.mask_head is not None

    def select_mask_samples(
        self,
        proposals: list[Tensor],
        matched_idxs: list[Tensor],
        labels: list[Tensor],
        targets: list[dict[str, Tensor]],
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Positive proposals (at most ``mask_proposals_per_image``) and their matched gt masks."""
        boxes, masks = [], []
        for image_proposals, image_matched, image_labels, target in zip(proposals, matched_idxs, labels, targets):
            positive = torch.where(image_labels > 0)[0]
            if positive.numel() > self.mask_proposals_per_image:
                chosen = torch.randperm(positive.numel(), device=positive.device)[: self.mask_proposals_per_image]
                positive = positive[chosen]
            boxes.append(image_proposals[positive])
            masks.append(target["masks"][image_matched[positive]])
        return boxes, masks

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: Optional[list[dict[str, Tensor]]] = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Losses in training; in eval, per-image boxes / scores / labels (+ mask_logits)."""
        if self.training:
            if targets is None:
                raise ValueError("targets are needed in training mode")
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)

        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
            if self.mask_head is not None:
                mask_boxes, mask_targets = self.select_mask_samples(proposals, matched_idxs, labels, targets)
                mask_logits = self.mask_head(features, mask_boxes, image_shapes)
                losses["loss_mask"] = self.mask_head.loss(mask_logits, mask_boxes, mask_targets)
            return [], losses

        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
        result = [{"boxes": b, "labels": l, "scores": s} for b, l, s in zip(boxes, labels, scores)]
        if self.mask_head is not None:
            for detection, logits in zip(result, self.mask_head(features, boxes, image_shapes)):
                detection["mask_logits"] = logits
        return result, {}
