"""torchvision's resize-and-normalise transform, with scale jitter for training.

A model trained at one input size sees each object at one scale per picture; real photographs
show the same kind of object at many. Multi-scale training (detectron2's ResizeShortestEdge with
several sizes) is the cheapest remedy. The jitter scales both limits, the shorter side
(``min_size``) and the longer side (``max_size``), because for wide photographs the longer side is
the one that binds: jittering ``min_size`` alone would leave a 16:9 picture at one size.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torchvision.models.detection.transform import GeneralizedRCNNTransform, _resize_image_and_masks, resize_boxes


class ScaleJitterTransform(GeneralizedRCNNTransform):
    """In training, each picture is resized at ``min_size`` and ``max_size`` times a factor drawn uniformly from
    [1 - scale_jitter, 1 + scale_jitter]; in eval, and with ``scale_jitter`` 0, exactly torchvision's transform.

    The factor comes from torch's generator, which the trainer seeds per iteration, so a resumed run draws the
    same sizes.
    """

    def __init__(self, min_size: int, max_size: int, image_mean: list[float], image_std: list[float],
                 scale_jitter: float = 0.0) -> None:
        super().__init__(min_size, max_size, image_mean, image_std)
        if not 0 <= scale_jitter < 1:
            raise ValueError(f"scale_jitter must be in [0, 1), not {scale_jitter}")
        self.scale_jitter = scale_jitter

    def resize(self, image: Tensor, target: Optional[dict[str, Tensor]] = None) -> tuple[Tensor, Optional[dict[str, Tensor]]]:
        if not (self.training and self.scale_jitter):
            return super().resize(image, target)
        factor = 1.0 + self.scale_jitter * (2.0 * float(torch.rand(())) - 1.0)
        height, width = image.shape[-2:]
        image, target = _resize_image_and_masks(image, round(self.min_size[-1] * factor), round(self.max_size * factor),
                                                target, self.fixed_size)
        if target is not None:  # as torchvision's own resize (cgc's targets carry no keypoints)
            target["boxes"] = resize_boxes(target["boxes"], (height, width), image.shape[-2:])
        return image, target
