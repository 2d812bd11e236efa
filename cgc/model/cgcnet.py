"""CGCNet (paper III.B): transform -> FPN backbone -> RPN -> box + mask heads -> postprocess.

``CGCNet`` only wires modules it is given, like torchvision's ``GeneralizedRCNN``;
``build_cgcnet`` assembles them with the paper's settings as signature defaults.
"""

from __future__ import annotations

from typing import Optional, Union

from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import MultiScaleRoIAlign

from cgc.model.backbones import build_backbone
from cgc.model.mask_heads import build_mask_head
from cgc.model.mask_suppression import MaskSuppression
from cgc.model.roi_heads import CGCRoIHeads, InstanceMap, LabelUpdateRequest
from cgc.model.transform import ScaleJitterTransform
from cgc.network_settings import NETWORK, NetworkSpec

NUM_CLASSES = 2  # background, salient (category id 1), as torchvision expects


class CGCNet(nn.Module):
    """Weakly supervised salient instance segmentation network.

    ``forward(images, targets)`` takes a list of (3, H, W) float images in [0, 1]; targets hold
    ``boxes`` (float (n, 4) x1y1x2y2 pixels), ``labels`` (int64, all 1) and ``masks`` (uint8
    (n, H, W) whole-image weak masks). Training returns the loss dict (``loss_objectness``,
    ``loss_rpn_box_reg``, ``loss_classifier``, ``loss_box_reg``, ``loss_mask``); eval returns per
    image ``boxes``, ``scores``, ``labels`` and ``masks`` (a ``BoxMasks``: each detection's
    probabilities in the original image, computed over its own window on demand, never as a
    picture-sized map per detection; ``.dense()`` gives (N, 1, H, W) for a small picture), after
    ``mask_suppression`` removed detections that repeat a better one's mask. A training forward given
    ``label_update`` (a ``LabelUpdateRequest``) returns ``(losses, instance_maps)``: what the label update
    asked for, in and out of the call, with nothing left on the model between calls.
    """

    def __init__(
        self,
        backbone: nn.Module,
        rpn: nn.Module,
        roi_heads: CGCRoIHeads,
        transform: nn.Module,
        mask_suppression: Optional[MaskSuppression] = None,
    ) -> None:
        super().__init__()
        self.transform = transform
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.mask_suppression = mask_suppression

    def forward(
        self, images: list[Tensor], targets: Optional[list[dict[str, Tensor]]] = None,
        label_update: Optional[LabelUpdateRequest] = None,
    ) -> Union[dict[str, Tensor], tuple[dict[str, Tensor], list[InstanceMap]], list[dict[str, Tensor]]]:
        if self.training and targets is None:
            raise ValueError("targets are needed in training mode")
        original_sizes = [(int(img.shape[-2]), int(img.shape[-1])) for img in images]
        batch, targets = self.transform(images, targets)
        if targets is not None:
            for index, target in enumerate(targets):
                boxes = target["boxes"]
                if boxes.ndim != 2 or boxes.shape[-1] != 4:
                    raise ValueError(f"target {index}: boxes must be (n, 4), got {tuple(boxes.shape)}")
                if (boxes[:, 2:] <= boxes[:, :2]).any():
                    raise ValueError(f"target {index}: every box needs a positive width and height")
        features = self.backbone(batch.tensors)
        proposals, proposal_losses = self.rpn(batch, features, targets)
        detections, detector_losses, instance_maps = self.roi_heads(features, proposals, batch.image_sizes, targets,
                                                                    label_update)
        if self.training:
            losses = {**proposal_losses, **detector_losses}
            return losses if label_update is None else (losses, instance_maps)
        return self.postprocess(detections, batch.image_sizes, original_sizes)

    def postprocess(
        self,
        detections: list[dict[str, Tensor]],
        image_sizes: list[tuple[int, int]],
        original_sizes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """Boxes back to original coordinates (torchvision's transform), mask logits to the original image's
        ``BoxMasks``, then mask-level duplicate suppression. Outputs are float32 even under autocast (mixed
        precision)."""
        detections = self.transform.postprocess(detections, image_sizes, original_sizes)
        mask_head = self.roi_heads.mask_head
        for detection, size, original in zip(detections, image_sizes, original_sizes):
            detection.update(boxes=detection["boxes"].float(), scores=detection["scores"].float())
            logits = detection.pop("mask_logits", None)
            if logits is None or mask_head is None:
                continue
            masks = mask_head.to_box_masks(logits.float(), detection["boxes"], size, original)
            if self.mask_suppression is not None:
                keep, scores = self.mask_suppression(masks, detection["scores"])
                detection.update({key: detection[key][keep] for key in ("boxes", "labels")}, scores=scores)
                masks = masks.select(keep)
            detection["masks"] = masks
        return detections


def build_cgcnet(spec: NetworkSpec = NETWORK) -> CGCNet:
    """CGCNet as `spec` describes it; its default is the paper's network (ResNet-101 FPN, RPN IoU 0.7/0.3
    and NMS 0.7, two 1024-d FC, the top 80 detections to the GFR mask head) with ImageNet weights.

    Not the paper's: the final (detection) NMS at torchvision's 0.5, where 0.7 left 6 detections
    per object; the whole-image heads' output window (``WholeImageHeadSpec.output_window_per_side``,
    see ``cgc.network_settings.OUTPUT_WINDOW_PER_SIDE``); and mask-level duplicate suppression
    (``cgc.model.mask_suppression``). ``spec.box.detections_per_image`` is also the number of
    detections returned, so every detection has a mask.
    """
    body = build_backbone(spec.backbone, weights=spec.backbone_weights, trainable_layers=spec.trainable_backbone_layers,
                          out_channels=spec.fpn_channels)
    channels = body.out_channels
    rpn_spec, box = spec.rpn, spec.box

    anchor_generator = AnchorGenerator(sizes=tuple((size,) for size in rpn_spec.anchor_sizes),
                                       aspect_ratios=(tuple(rpn_spec.aspect_ratios),) * len(rpn_spec.anchor_sizes))
    rpn = RegionProposalNetwork(
        anchor_generator,
        RPNHead(channels, anchor_generator.num_anchors_per_location()[0]),
        fg_iou_thresh=rpn_spec.fg_iou_thresh,
        bg_iou_thresh=rpn_spec.bg_iou_thresh,
        batch_size_per_image=rpn_spec.batch_size_per_image,
        positive_fraction=rpn_spec.positive_fraction,
        pre_nms_top_n={"training": rpn_spec.pre_nms_top_n_train, "testing": rpn_spec.pre_nms_top_n_test},
        post_nms_top_n={"training": rpn_spec.post_nms_top_n_train, "testing": rpn_spec.post_nms_top_n_test},
        nms_thresh=rpn_spec.nms_thresh,
    )

    box_roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7, sampling_ratio=2)
    resolution = box_roi_pool.output_size[0]
    roi_heads = CGCRoIHeads(
        box_roi_pool,
        TwoMLPHead(channels * resolution**2, box.representation_size),
        FastRCNNPredictor(box.representation_size, NUM_CLASSES),
        build_mask_head(spec.mask, in_channels=channels),
        box,
        spec.mask,
    )
    transform = ScaleJitterTransform(spec.min_size, spec.max_size, list(spec.image_mean), list(spec.image_std),
                                     spec.scale_jitter)
    return CGCNet(body, rpn, roi_heads, transform, MaskSuppression(spec.suppression))
