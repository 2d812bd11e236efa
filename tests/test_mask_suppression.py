"""Duplicate suppression on hand-built overlapping detections, and the network applying it."""

from __future__ import annotations

import pytest
import torch

from cgc.errors import InputError
from cgc.model.box_masks import BoxMasks
from cgc.model.mask_suppression import MaskSuppression, greedy_mask_nms, mask_iou_matrix, maskness, matrix_nms_scores
from cgc.network_settings import SuppressionSpec


def box_mask(x0: int, y0: int, x1: int, y1: int, probability: float = 0.9) -> torch.Tensor:
    mask = torch.zeros(1, 40, 40)
    mask[0, y0:y1, x0:x1] = probability
    return mask


def stacked(masks: list[torch.Tensor]) -> BoxMasks:
    return BoxMasks.from_dense(torch.stack(masks))


# Two detections of one object (IoU 0.81), one of another object, and a third copy of the first
# object scored lower than the second object.
MASKS = stacked([box_mask(0, 0, 10, 10), box_mask(0, 1, 10, 10), box_mask(20, 20, 30, 30), box_mask(1, 0, 10, 10)])
SCORES = torch.tensor([0.95, 0.9, 0.8, 0.7])


def test_mask_iou_matrix_by_hand() -> None:
    ious = mask_iou_matrix(MASKS)
    assert ious[0, 1] == pytest.approx(90 / 100) and ious[0, 2] == 0.0
    assert ious[1, 3] == pytest.approx(81 / 99)
    assert torch.allclose(ious, ious.T) and torch.all(ious.diagonal() == 1)
    empty = mask_iou_matrix(BoxMasks.from_dense(torch.zeros(2, 1, 4, 4)))
    assert torch.equal(empty, torch.zeros(2, 2))  # no pixel at all: IoU 0, not NaN


def test_greedy_keeps_one_detection_per_object() -> None:
    suppress = MaskSuppression(SuppressionSpec(method="greedy", iou_threshold=0.5, rescore="none"))
    keep, scores = suppress(MASKS, SCORES)
    assert keep.tolist() == [0, 2] and scores.tolist() == pytest.approx([0.95, 0.8])
    # A looser threshold keeps the duplicates it does not reach.
    keep, _ = MaskSuppression(SuppressionSpec(method="greedy", iou_threshold=0.95))(MASKS, SCORES)
    assert keep.tolist() == [0, 1, 2, 3]


def test_greedy_walks_by_score_not_by_index() -> None:
    ious = mask_iou_matrix(MASKS)
    keep = greedy_mask_nms(ious, torch.tensor([0.1, 0.9, 0.5, 0.2]), 0.5)
    assert keep.tolist() == [1, 2]


def test_matrix_nms_decays_duplicates_below_the_distinct_object() -> None:
    decayed = matrix_nms_scores(mask_iou_matrix(MASKS), SCORES, sigma=2.0)
    assert decayed[0] == pytest.approx(0.95) and decayed[2] == pytest.approx(0.8)  # nothing above them overlaps
    assert decayed[1] < 0.5 and decayed[3] < 0.5  # the copies of object 0 fall below the usual threshold
    keep, scores = MaskSuppression(SuppressionSpec(method="matrix", matrix_min_score=0.5))(MASKS, SCORES)
    assert keep.tolist() == [0, 2] and torch.all(scores[:-1] >= scores[1:])


def test_overlap_drops_a_part_that_iou_keeps() -> None:
    """A detection of the left half of the first object: IoU 0.5 with it, but wholly under it."""
    masks = stacked([box_mask(0, 0, 10, 10), box_mask(0, 0, 5, 10), box_mask(8, 0, 14, 10)])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert MaskSuppression(SuppressionSpec(method="greedy", iou_threshold=0.5))(masks, scores)[0].tolist() == [0, 1, 2]
    keep, _ = MaskSuppression(SuppressionSpec(method="overlap", iou_threshold=0.5))(masks, scores)
    assert keep.tolist() == [0, 2]  # the third is a third covered (20 of 60 pixels): a neighbour, kept
    keep, _ = MaskSuppression(SuppressionSpec(method="overlap", iou_threshold=0.2))(masks, scores)
    assert keep.tolist() == [0]


def test_overlap_counts_the_union_of_kept_masks_and_drops_empty_ones() -> None:
    masks = stacked([box_mask(0, 0, 6, 10), box_mask(6, 0, 12, 10), box_mask(3, 0, 9, 10), box_mask(0, 0, 0, 0)])
    overlap = MaskSuppression(SuppressionSpec(method="overlap", iou_threshold=0.6))
    keep, _ = overlap(masks, torch.tensor([0.9, 0.8, 0.7, 0.95]))
    assert keep.tolist() == [0, 1]  # the third lies half under each kept mask: wholly covered together


def test_none_and_single_detections_pass_through() -> None:
    keep, scores = MaskSuppression(SuppressionSpec(method="none", rescore="none"))(MASKS, SCORES)
    assert keep.tolist() == [0, 1, 2, 3] and torch.equal(scores, SCORES)
    keep, _ = MaskSuppression(SuppressionSpec(method="greedy"))(MASKS.select([0]), SCORES[:1])
    assert keep.tolist() == [0]
    keep, _ = MaskSuppression(SuppressionSpec(method="matrix"))(MASKS.select([]), SCORES[:0])
    assert keep.tolist() == []


def test_maskness_lets_a_sure_mask_outrank_a_loose_box_s() -> None:
    """A loose box around two objects, scored highest, with an unsure mask over both, and the tight box of one
    object with a sure mask: by box score the loose one suppresses the object; by score x maskness it is the
    other way round, and the second object's own detection is kept too."""
    loose = box_mask(0, 0, 20, 10, probability=0.6)
    masks = stacked([loose, box_mask(0, 0, 10, 10, probability=0.95), box_mask(12, 0, 20, 10, probability=0.9)])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert maskness(masks).tolist() == pytest.approx([0.6, 0.95, 0.9])
    assert maskness(BoxMasks.from_dense(torch.zeros(1, 1, 4, 4))).tolist() == [0.0]  # an empty mask: nothing to be sure of
    plain = MaskSuppression(SuppressionSpec(method="greedy", iou_threshold=0.3, rescore="none"))
    assert plain(masks, scores)[0].tolist() == [0]
    keep, rescored = MaskSuppression(SuppressionSpec(method="greedy", iou_threshold=0.3))(masks, scores)  # the default
    assert keep.tolist() == [1, 2] and rescored.tolist() == pytest.approx([0.8 * 0.95, 0.7 * 0.9])
    keep, rescored = MaskSuppression(SuppressionSpec(method="none", rescore="maskness"))(masks, scores)
    assert keep.tolist() == [1, 2, 0] and torch.all(rescored[:-1] >= rescored[1:])  # best first, as promised


def test_unknown_method_is_an_input_error() -> None:
    with pytest.raises(InputError, match="greedy, matrix, overlap, none"):
        MaskSuppression(SuppressionSpec(method="soft"))
    with pytest.raises(InputError, match="none, maskness"):
        MaskSuppression(SuppressionSpec(method="greedy", rescore="solo"))


def test_network_output_has_no_duplicate_masks() -> None:
    """CGCNet.postprocess applies the suppression to what the mask head returns."""
    from test_cgcnet import tiny_cgcnet

    torch.manual_seed(0)
    model = tiny_cgcnet("gfr", box={"score_thresh": 0.0}).eval()
    with torch.no_grad():
        model.roi_heads.mask_head.predictor.mask_fcn_logits.bias.fill_(5.0)  # every window is "salient"
        images = [torch.rand(3, 96, 128)]
        plain = model.mask_suppression
        model.mask_suppression = None
        raw = model(images)[0]
        model.mask_suppression = plain
        kept = model(images)[0]
    assert len(raw["scores"]) > len(kept["scores"]) > 0
    ious = mask_iou_matrix(kept["masks"])
    assert torch.all(ious.triu(diagonal=1) <= plain.spec.iou_threshold)
    assert torch.all(kept["scores"][:-1] >= kept["scores"][1:])
    assert kept["boxes"].shape[0] == len(kept["masks"]) == kept["labels"].shape[0]


def test_selected_masks_keep_the_rles_already_made() -> None:
    """Suppression makes every mask's RLE; the masks it keeps carry them on (eval's tail reuses them), and they are
    what making them again gives."""
    made = MASKS.rles()
    kept = MASKS.select([2, 0])
    assert kept._rles and kept.rles() == [made[2], made[0]]
    assert BoxMasks(kept.masks, kept.image_size).rles() == [made[2], made[0]]
