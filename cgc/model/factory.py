"""Build the network a TrainConfig describes (training, evaluation and prediction share it)."""

from __future__ import annotations

from dataclasses import replace

from cgc.config import TrainConfig
from cgc.model.cgcnet import CGCNet, build_cgcnet


def model_from_config(config: TrainConfig, load_backbone_weights: bool = True) -> CGCNet:
    """`load_backbone_weights=False` skips the ImageNet weights when a checkpoint will replace them anyway."""
    network = config.network if load_backbone_weights else replace(config.network, backbone_weights=None)
    return build_cgcnet(network)
