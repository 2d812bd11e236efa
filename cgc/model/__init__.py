"""The CGCNet network: its spec (section by section), backbones, pretrained weights, mask heads, second stage and
the builder."""

from cgc.model.backbones import BACKBONES, build_backbone
from cgc.model.cgcnet import CGCNet, build_cgcnet
from cgc.model.mask_heads import (
    MASK_HEADS,
    GFRHead,
    LFRHead,
    MaskHead,
    RoIAlignHead,
    RoIMaskingHead,
    WholeImageMaskHead,
    build_mask_head,
    global_feature_refine,
    ternary_roi_mask,
)
from cgc.model.pretrained import deep_sort_mobilenet_v2_state_dict, imagenet_weights, load_backbone_weights
from cgc.model.roi_heads import CGCRoIHeads
from cgc.network_settings import (NETWORK, BoxHeadSpec, GFRSpec, LFRSpec, MaskHeadSpec, NetworkSpec, RoIAlignSpec,
                                  RoIMaskingSpec, RPNSpec, SuppressionSpec, WholeImageHeadSpec, changed, mask_head_spec)

__all__ = [
    "NETWORK",
    "BoxHeadSpec",
    "GFRSpec",
    "LFRSpec",
    "MaskHeadSpec",
    "NetworkSpec",
    "RPNSpec",
    "RoIAlignSpec",
    "RoIMaskingSpec",
    "SuppressionSpec",
    "WholeImageHeadSpec",
    "changed",
    "mask_head_spec",
    "BACKBONES",
    "MASK_HEADS",
    "CGCNet",
    "CGCRoIHeads",
    "GFRHead",
    "LFRHead",
    "MaskHead",
    "RoIAlignHead",
    "RoIMaskingHead",
    "WholeImageMaskHead",
    "build_backbone",
    "build_cgcnet",
    "build_mask_head",
    "deep_sort_mobilenet_v2_state_dict",
    "global_feature_refine",
    "imagenet_weights",
    "load_backbone_weights",
    "ternary_roi_mask",
]
