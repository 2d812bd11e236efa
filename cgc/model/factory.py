"""Build the network a TrainConfig describes (training, evaluation and prediction share it)."""

from __future__ import annotations

from cgc.model.cgcnet import CGCNet, build_cgcnet
from cgc.config import TrainConfig


def model_from_config(config: TrainConfig, load_backbone_weights: bool = True) -> CGCNet:
    """`load_backbone_weights=False` skips the ImageNet weights when a checkpoint will replace them anyway."""
    return build_cgcnet(
        backbone=config.backbone,
        mask_head=config.mask_head,
        backbone_weights=config.backbone_weights if load_backbone_weights else None,
        trainable_backbone_layers=config.trainable_backbone_layers,
        fpn_channels=config.fpn_channels,
        min_size=config.min_size,
        max_size=config.max_size,
        anchor_sizes=config.anchor_sizes,
        rpn_batch_size_per_image=config.rpn_batch_size_per_image,
        rpn_post_nms_top_n_test=config.rpn_test_proposals,
        box_batch_size_per_image=config.box_batch_size_per_image,
        mask_head_channels=config.mask_head_channels,
        mask_proposals_per_image=config.mask_proposals_per_image,
        mask_output_window_per_side=config.mask_window,
        mask_output_stride=config.mask_output_stride,
        mask_box_coords=config.mask_box_coords,
        mask_dilation=config.mask_dilation,
        mask_others=config.mask_others,
        box_nms_thresh=config.box_nms_thresh,
        mask_suppression=config.mask_suppression,
        mask_suppression_iou=config.mask_suppression_iou,
        mask_rescore=config.mask_rescore,
    )
