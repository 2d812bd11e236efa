"""torchvision's region proposal network, keeping each proposal's objectness for the box head.

torchvision's ``RegionProposalNetwork.forward`` computes every proposal's objectness (the RPN's
class-agnostic "is this an object" probability) and drops it. The RPN of a model trained on a few
kinds of object still proposes objects of kinds it never saw, where the box classifier calls them
background (docs/method/training.md, "Where the held-out kinds are lost"), so the box head may weigh
that objectness into its scores (``BoxHeadSpec.objectness_weight``).
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RegionProposalNetwork, concat_box_prediction_layers


class ScoredRegionProposalNetwork(RegionProposalNetwork):
    """``RegionProposalNetwork`` whose forward returns ``(boxes, objectness, losses)``: per image, the proposals,
    their objectness probabilities (sigmoid, in the same order) and, in training, the RPN losses."""

    def forward(  # type: ignore[override]
        self,
        images: ImageList,
        features: dict[str, Tensor],
        targets: Optional[list[dict[str, Tensor]]] = None,
    ) -> tuple[list[Tensor], list[Tensor], dict[str, Tensor]]:
        levels = list(features.values())
        objectness, deltas = self.head(levels)
        anchors = self.anchor_generator(images, levels)
        anchors_per_level = [int(o[0].shape[0] * o[0].shape[1] * o[0].shape[2]) for o in objectness]
        objectness, deltas = concat_box_prediction_layers(objectness, deltas)
        # detached as torchvision does: Faster R-CNN does not backpropagate through the proposals
        proposals = self.box_coder.decode(deltas.detach(), anchors).view(len(anchors), -1, 4)
        boxes, scores = self.filter_proposals(proposals, objectness, images.image_sizes, anchors_per_level)

        losses: dict[str, Tensor] = {}
        if self.training:
            if targets is None:
                raise ValueError("targets are needed in training mode")
            labels, matched_gt_boxes = self.assign_targets_to_anchors(anchors, targets)
            regression_targets = self.box_coder.encode(matched_gt_boxes, anchors)
            loss_objectness, loss_rpn_box_reg = self.compute_loss(objectness, deltas, labels, regression_targets)
            losses = {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_rpn_box_reg}
        return boxes, scores, losses
