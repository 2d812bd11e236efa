"""CGCNet (paper III.B): transform -> FPN backbone -> RPN -> box + mask heads -> postprocess.

``CGCNet`` only wires modules it is given, like torchvision's ``GeneralizedRCNN``;
``build_cgcnet`` assembles them with the paper's settings as signature defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from cgc.model.backbones import build_backbone
from cgc.model.mask_heads import build_mask_head
from cgc.model.mask_suppression import MaskSuppression
from cgc.model.roi_heads import CGCRoIHeads
from cgc.network_settings import FPN_CHANNELS, NETWORK, OUTPUT_WINDOW_PER_SIDE

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
    ``mask_suppression`` removed detections that repeat a better one's mask.
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
        self, images: list[Tensor], targets: Optional[list[dict[str, Tensor]]] = None
    ) -> Union[dict[str, Tensor], list[dict[str, Tensor]]]:
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
        detections, detector_losses = self.roi_heads(features, proposals, batch.image_sizes, targets)
        if self.training:
            return {**proposal_losses, **detector_losses}
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


def build_cgcnet(
    backbone: str = NETWORK.backbone,
    mask_head: str = NETWORK.mask_head,
    backbone_weights: Optional[Union[str, Path]] = None,
    trainable_backbone_layers: Optional[int] = None,
    fpn_channels: int = FPN_CHANNELS,
    # input transform
    min_size: int = NETWORK.min_size,
    max_size: int = NETWORK.max_size,
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406),
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225),
    # RPN
    anchor_sizes: tuple[int, ...] = NETWORK.anchor_sizes,
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0),
    rpn_fg_iou_thresh: float = 0.7,
    rpn_bg_iou_thresh: float = 0.3,
    rpn_batch_size_per_image: int = NETWORK.rpn_batch_size_per_image,
    rpn_positive_fraction: float = 0.5,
    rpn_pre_nms_top_n_train: int = 2000,
    rpn_pre_nms_top_n_test: int = 1000,
    rpn_post_nms_top_n_train: int = 2000,
    rpn_post_nms_top_n_test: int = NETWORK.rpn_test_proposals,
    rpn_nms_thresh: float = 0.7,
    # box head
    box_representation_size: int = 1024,
    box_fg_iou_thresh: float = 0.5,
    box_bg_iou_thresh: float = 0.5,
    box_batch_size_per_image: int = NETWORK.box_batch_size_per_image,
    box_positive_fraction: float = 0.25,
    box_score_thresh: float = 0.05,
    box_nms_thresh: float = NETWORK.box_nms_thresh,
    # mask head
    mask_detections_per_image: int = 80,
    mask_proposals_per_image: int = NETWORK.mask_proposals_per_image,
    mask_head_channels: int = NETWORK.mask_head_channels,
    mask_featmap_name: str = "0",
    mask_chunk_size: int = 8,
    lfr_window_per_side: float = 0.1,
    roi_masking_ring_per_side: float = 1 / 3,
    mask_output_window_per_side: Optional[float] = OUTPUT_WINDOW_PER_SIDE,
    mask_output_stride: int = NETWORK.mask_output_stride,
    mask_box_coords: bool = NETWORK.mask_box_coords,
    mask_dilation: int = NETWORK.mask_dilation,
    mask_others: str = NETWORK.mask_others,
    # duplicate suppression
    mask_suppression: str = NETWORK.mask_suppression,
    mask_suppression_iou: float = NETWORK.mask_suppression_iou,
    mask_rescore: str = NETWORK.mask_rescore,
) -> CGCNet:
    """CGCNet with the paper's settings: ResNet-101 FPN, RPN IoU 0.7/0.3 and NMS 0.7, two 1024-d FC,
    top 80 detections to the GFR mask head.

    Not the paper's: the final (detection) NMS at torchvision's 0.5, where 0.7 left 6 detections
    per object; the whole-image heads' output window (``mask_output_window_per_side``, see
    ``cgc.model.mask_heads.OUTPUT_WINDOW_PER_SIDE``); and mask-level duplicate suppression
    (``cgc.model.mask_suppression``).

    ``trainable_backbone_layers=None`` means 0 (whole body frozen, FPN trained: the paper keeps
    the backbone unchanged) when ``backbone_weights`` are given, and 5 (all trainable) for a
    randomly initialised body, which would otherwise never learn. ``mask_detections_per_image``
    is also the number of detections returned, so every detection has a mask.
    """
    if trainable_backbone_layers is None:
        trainable_backbone_layers = 5 if backbone_weights is None else 0
    body = build_backbone(backbone, weights=backbone_weights, trainable_layers=trainable_backbone_layers,
                          out_channels=fpn_channels)
    channels = body.out_channels

    anchor_generator = AnchorGenerator(
        sizes=tuple((size,) for size in anchor_sizes), aspect_ratios=(tuple(aspect_ratios),) * len(anchor_sizes)
    )
    rpn = RegionProposalNetwork(
        anchor_generator,
        RPNHead(channels, anchor_generator.num_anchors_per_location()[0]),
        fg_iou_thresh=rpn_fg_iou_thresh,
        bg_iou_thresh=rpn_bg_iou_thresh,
        batch_size_per_image=rpn_batch_size_per_image,
        positive_fraction=rpn_positive_fraction,
        pre_nms_top_n={"training": rpn_pre_nms_top_n_train, "testing": rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": rpn_post_nms_top_n_train, "testing": rpn_post_nms_top_n_test},
        nms_thresh=rpn_nms_thresh,
    )

    box_roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7, sampling_ratio=2)
    resolution = box_roi_pool.output_size[0]
    roi_heads = CGCRoIHeads(
        box_roi_pool,
        TwoMLPHead(channels * resolution**2, box_representation_size),
        FastRCNNPredictor(box_representation_size, NUM_CLASSES),
        build_mask_head(
            mask_head,
            in_channels=channels,
            channels=mask_head_channels,
            featmap_name=mask_featmap_name,
            chunk_size=mask_chunk_size,
            lfr_window_per_side=lfr_window_per_side,
            roi_masking_ring_per_side=roi_masking_ring_per_side,
            output_window_per_side=mask_output_window_per_side,
            output_stride=mask_output_stride,
            box_coords=mask_box_coords,
            dilation=mask_dilation,
        ),
        fg_iou_thresh=box_fg_iou_thresh,
        bg_iou_thresh=box_bg_iou_thresh,
        batch_size_per_image=box_batch_size_per_image,
        positive_fraction=box_positive_fraction,
        score_thresh=box_score_thresh,
        nms_thresh=box_nms_thresh,
        detections_per_img=mask_detections_per_image,
        mask_proposals_per_image=mask_proposals_per_image,
        mask_others=mask_others,
    )
    transform = GeneralizedRCNNTransform(min_size, max_size, list(image_mean), list(image_std))
    suppression = MaskSuppression(mask_suppression, mask_suppression_iou, rescore=mask_rescore)
    return CGCNet(body, rpn, roi_heads, transform, suppression)
