"""CGCNet's second stage: torchvision's box machinery with a pluggable mask head.

``CGCRoIHeads`` keeps ``RoIHeads``' proposal sampling (``select_training_samples``), Fast R-CNN
loss and ``postprocess_detections`` (score threshold, NMS, top-k) and replaces Mask R-CNN's mask
branch by any ``MaskHead`` (GFR, LFR, RoIAlign, RoIMasking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads, fastrcnn_loss

from cgc.model.mask_heads import MaskHead, WholeImageMaskHead, labels_at_logit_resolution
from cgc.network_settings import NETWORK, BoxHeadSpec, MaskHeadSpec


@dataclass
class InstanceMap:
    """The predicted map R of one ground-truth (weak) instance of a training batch, for the label update.

    ``probabilities`` is sigmoid(logits) of the instance's best sampled proposal, detached, on the
    CPU, float16, at the mask head's logit resolution: cell (y, x) covers pixels
    [y*stride, (y+1)*stride) x [x*stride, (x+1)*stride) of the resized (and maybe flipped) image of
    size ``image_size``; cells past it are padding. float16 rather than uint8: K1 takes log(R + sigma)
    with sigma = 1e-6, so a probability of 0.001 quantised to 0 would change a labelled pixel's term
    from 6.9 to 13.8 nats.
    """

    batch_index: int  # which image of the batch
    image_id: int
    annotation_id: int
    probabilities: Tensor  # (h, w) float16, CPU
    stride: int  # resized-image pixels per cell
    image_size: tuple[int, int]  # (h, w) of the resized image
    proposal: int  # index among the image's sampled mask proposals
    match_iou: float  # mask IoU (both at 0.5) between R and the instance's label C, at logit resolution


@dataclass
class LabelUpdateRequest:
    """What the label update asks of one training forward (see ``CGCRoIHeads``): each labelled instance's best
    map (``collect``), and the L_upd term with this sigma (``loss_sigma``; None: no term)."""

    collect: bool = False
    loss_sigma: Optional[float] = None


class CGCRoIHeads(RoIHeads):
    """Box head + mask head for the class-agnostic (background / salient) network.

    Training: the mask head sees the positive sampled proposals of each image (ground-truth boxes
    included, as torchvision adds them to the proposals) with their matched (weak) masks, capped
    at ``mask_proposals_per_image`` by a random subset drawn from the torch RNG (seedable). For
    GFR, the "other proposals" suppressed for proposal i are these proposals of the image, as in the paper.
    Inference: the top ``detections_per_img`` detections after NMS (the paper's 80) go through
    the mask head; detections carry "mask_logits", turned into image masks by ``CGCNet``.

    Label update (paper III.D, driven by ``cgc.training.label_update``; whole-image mask heads only):

    A training forward given a ``LabelUpdateRequest`` returns, beside the losses:

    - with ``collect``, the instance maps: one ``InstanceMap`` per ground-truth instance that has
      a sampled proposal: the proposal whose
      map (at 0.5) has the highest mask IoU with the instance's label (at 0.5), among the
      proposals matched to that instance. Mask IoU, not box IoU: where a small instance stands in
      front of a big one their boxes overlap heavily, and the update compares maps (ties: the
      lower index; an instance whose best IoU is 0 gets no map, and its label is kept). Targets
      must carry ``image_id`` and ``annotation_ids``.
    - with ``loss_sigma``, the losses include ``loss_upd`` = L_upd = K2 - K1 (eq. 9), see
      ``label_update_loss``; targets may carry ``label_k2`` (n,) with NaN where not known yet.
    """

    def __init__(
        self,
        box_roi_pool: nn.Module,
        box_head: nn.Module,
        box_predictor: nn.Module,
        mask_head: Optional[MaskHead],
        box: BoxHeadSpec = NETWORK.box,
        mask: MaskHeadSpec = NETWORK.mask,
    ) -> None:
        super().__init__(box_roi_pool, box_head, box_predictor, box.fg_iou_thresh, box.bg_iou_thresh,
                         box.batch_size_per_image, box.positive_fraction, None, box.score_thresh, box.nms_thresh,
                         box.detections_per_image)
        self.mask_head = mask_head
        self.mask_proposals_per_image = mask.proposals_per_image

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
        boxes, masks, _ = self.select_mask_samples_with_matches(proposals, matched_idxs, labels, targets)
        return boxes, masks

    def select_mask_samples_with_matches(
        self,
        proposals: list[Tensor],
        matched_idxs: list[Tensor],
        labels: list[Tensor],
        targets: list[dict[str, Tensor]],
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """``select_mask_samples`` plus, per image, the index of each proposal's ground-truth instance."""
        boxes, masks, matches = [], [], []
        for image_proposals, image_matched, image_labels, target in zip(proposals, matched_idxs, labels, targets):
            positive = torch.where(image_labels > 0)[0]
            if positive.numel() > self.mask_proposals_per_image:
                chosen = torch.randperm(positive.numel(), device=positive.device)[: self.mask_proposals_per_image]
                positive = positive[chosen]
            boxes.append(image_proposals[positive])
            matches.append(image_matched[positive])
            masks.append(target["masks"][matches[-1]])
        return boxes, masks, matches

    def best_instance_maps(
        self,
        logits: list[Tensor],
        cells: list[Tensor],
        matches: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]],
    ) -> list[InstanceMap]:
        """Per ground-truth instance with a sampled proposal, the best proposal's map R (see the class doc)."""
        found = []
        for batch_index, (image_logits, image_cells, image_matches, size, target) in enumerate(
            zip(logits, cells, matches, image_shapes, targets)
        ):
            if image_logits.shape[0] == 0:
                continue
            if "image_id" not in target or "annotation_ids" not in target:
                raise ValueError("collecting instance maps needs targets with image_id and annotation_ids")
            predicted = (image_logits.detach() >= 0).flatten(1)  # sigmoid >= 0.5
            labelled = (image_cells >= 0.5).flatten(1)
            inter = (predicted & labelled).sum(1).double()
            union = (predicted | labelled).sum(1).double()
            ious = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(union)).cpu()
            stride = WholeImageMaskHead.output_stride(target["masks"].shape[-2:], image_logits)
            instance_of = image_matches.cpu()
            for instance in sorted(set(instance_of.tolist())):
                candidates = torch.where(instance_of == instance)[0]
                best = int(candidates[torch.argmax(ious[candidates])])  # argmax: first of ties
                if ious[best] <= 0:
                    continue
                found.append(InstanceMap(
                    batch_index=batch_index,
                    image_id=int(target["image_id"]),
                    annotation_id=int(target["annotation_ids"][instance]),
                    probabilities=torch.sigmoid(image_logits[best, 0].detach().float()).to("cpu", torch.float16),
                    stride=int(stride),
                    image_size=(int(size[0]), int(size[1])),
                    proposal=best,
                    match_iou=float(ious[best]),
                ))
        return found

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: Optional[list[dict[str, Tensor]]] = None,
        label_update: Optional[LabelUpdateRequest] = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor], list[InstanceMap]]:
        """Losses in training (and the instance maps ``label_update`` asks for); in eval, per-image boxes / scores /
        labels (+ mask_logits)."""
        if self.training:
            if targets is None:
                raise ValueError("targets are needed in training mode")
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)

        if self.training:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels, regression_targets)
            losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
            instance_maps: list[InstanceMap] = []
            if self.mask_head is not None:
                mask_boxes, mask_targets, mask_matches = self.select_mask_samples_with_matches(
                    proposals, matched_idxs, labels, targets
                )
                mask_logits = self.mask_head(features, mask_boxes, image_shapes)
                losses["loss_mask"] = self.mask_head.loss(mask_logits, mask_boxes, mask_targets) + every_parameter_zero(
                    self.mask_head
                )
                if label_update is not None and (label_update.collect or label_update.loss_sigma is not None):
                    if not isinstance(self.mask_head, WholeImageMaskHead):
                        raise ValueError("the label update needs a whole-image mask head (gfr, lfr or roimasking)")
                    cells = [
                        labels_at_logit_resolution(image_logits, masks) if image_logits.shape[0] else image_logits.detach()
                        for image_logits, masks in zip(mask_logits, mask_targets)
                    ]
                    if label_update.collect:
                        instance_maps = self.best_instance_maps(mask_logits, cells, mask_matches, image_shapes, targets)
                    if label_update.loss_sigma is not None:
                        losses["loss_upd"] = label_update_loss(mask_logits, cells, mask_matches, targets,
                                                               label_update.loss_sigma)
            return [], losses, instance_maps

        boxes, scores, labels = self.postprocess_detections(class_logits, box_regression, proposals, image_shapes)
        result = [{"boxes": b, "labels": l, "scores": s} for b, l, s in zip(boxes, labels, scores)]
        if self.mask_head is not None:
            for detection, logits in zip(result, self.mask_head(features, boxes, image_shapes)):
                detection["mask_logits"] = logits
        return result, {}, []


def every_parameter_zero(module: nn.Module) -> Tensor:
    """0 that depends on every trainable parameter of ``module``.

    A batch without a positive proposal leaves the mask head out of the graph; added to its loss,
    this gives each parameter a (zero) gradient at every step, so DDP can run without
    ``find_unused_parameters`` and its extra pass over the graph.
    """
    return sum(p.sum() for p in module.parameters() if p.requires_grad) * 0.0


def label_update_loss(
    logits: list[Tensor], cells: list[Tensor], matches: list[Tensor], targets: list[dict[str, Tensor]], sigma: float
) -> Tensor:
    """L_upd = K2 - K1 (eq. 9) over the mask head's sampled positive proposals of a batch.

    K1 = mean over every logit cell of every proposal's map of C log(C / (R + sigma) + sigma), with
    R = sigmoid(logits) and C = the proposal's instance label at logit resolution (the same target
    as ``loss_mask``): ``cgc.refine.update_rule.k1``, with gradient.
    K2 = the same cell-weighted mean of a constant per instance, ``target["label_k2"]``: the
    K2(R_f, C) the CRF worker computed for that instance (NaN or absent: not known yet, counted as
    0). R_f is never needed here: the CRF is not differentiable, so K2 only shifts the value and
    the gradient is -dK1 whatever K2 is.

    What the gradient does: dK1/dR_i = -C_i^2 / ((R_i + sigma)(C_i + sigma (R_i + sigma))) <= 0, so
    dL/dR_i >= 0 and gradient descent *lowers* R wherever C > 0, i.e. it raises KL(C || R), the
    opposite of fitting C. Through the sigmoid the push on a logit is about C_i (1 - R_i) per
    pixel: strongest on labelled pixels the network is not yet sure of, vanishing where it is
    confident. It counters over-confidence on noisy positives; L_seg pulls the other way. This is
    the paper's loss as written; weigh it and measure its effect.
    """
    k1_sum = logits[0].new_zeros(()).float() if logits else torch.zeros(())
    k2_sum = torch.zeros((), dtype=torch.float64)
    count = 0
    for image_logits, image_cells, image_matches, target in zip(logits, cells, matches, targets):
        if image_logits.shape[0] == 0:
            continue
        probability = torch.sigmoid(image_logits.float())
        c = image_cells.detach().float()
        k1_sum = k1_sum + torch.sum(c * torch.log(c / (probability + sigma) + sigma))
        per_map = image_logits[0].numel()
        count += image_logits.shape[0] * per_map
        known = target.get("label_k2")
        if known is not None:
            k2_sum += torch.nan_to_num(known.detach().double()[image_matches].cpu(), nan=0.0).sum() * per_map
    if count == 0:
        return sum(l.sum() for l in logits) * 0.0  # no positive proposal in the batch
    return (k2_sum / count).to(k1_sum) - k1_sum / count
