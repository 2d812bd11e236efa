"""Build the network a TrainConfig describes (training, evaluation and prediction share it)."""

from __future__ import annotations

from dataclasses import replace

from cgc.config import TrainConfig
from cgc.model.cgcnet import CGCNet, build_cgcnet
from cgc.network_settings import NETWORK, NetworkSpec, SuppressionSpec, mask_head_spec


def network_spec(config: TrainConfig, load_backbone_weights: bool = True) -> NetworkSpec:
    """The network sections of a run's settings; every setting a run does not record keeps ``NETWORK``'s value.

    ``load_backbone_weights=False`` leaves out the ImageNet weights when a checkpoint will replace them anyway.
    """
    mask = mask_head_spec(config.mask_head, channels=config.mask_head_channels,
                          proposals_per_image=config.mask_proposals_per_image,
                          output_window_per_side=config.mask_window, output_stride=config.mask_output_stride,
                          box_coords=config.mask_box_coords, dilation=config.mask_dilation, others=config.mask_others)
    return NetworkSpec(
        backbone=config.backbone,
        backbone_weights=config.backbone_weights if load_backbone_weights else None,
        trainable_backbone_layers=config.trainable_backbone_layers,
        fpn_channels=config.fpn_channels,
        min_size=config.min_size,
        max_size=config.max_size,
        rpn=replace(NETWORK.rpn, anchor_sizes=config.anchor_sizes, batch_size_per_image=config.rpn_batch_size_per_image,
                    post_nms_top_n_test=config.rpn_test_proposals),
        box=replace(NETWORK.box, batch_size_per_image=config.box_batch_size_per_image, nms_thresh=config.box_nms_thresh),
        mask=mask,
        suppression=SuppressionSpec(config.mask_suppression, config.mask_suppression_iou, config.mask_rescore),
    )


def model_from_config(config: TrainConfig, load_backbone_weights: bool = True) -> CGCNet:
    """`load_backbone_weights=False` skips the ImageNet weights when a checkpoint will replace them anyway."""
    return build_cgcnet(network_spec(config, load_backbone_weights))
