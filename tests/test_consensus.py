"""Matching boxes across annotators and reducing clusters to consensus boxes."""

from __future__ import annotations

import random

import pytest

from cgc.annotate.consensus import (
    average_annotator_boxes,
    build_consensus_boxes,
    majority_quorum,
    match_boxes_across_annotators,
)
from cgc.annotate.geometry import Box, box_iou

ANNOTATORS = ["a", "b", "c", "d", "e"]
# Per-annotator jitter: mean 4, median 2, so mean and median differ.
JITTER = [0.0, 1.0, 2.0, 3.0, 14.0]
INSTANCE_A = Box(100.0, 100.0, 300.0, 300.0)
INSTANCE_B = Box(400.0, 50.0, 550.0, 250.0)


def shifted(box: Box, d: float) -> Box:
    return Box(box.x1 + d, box.y1 + d, box.x2 + d, box.y2 + d)


def five_annotators(*instances: Box) -> dict[str, list[Box]]:
    return {name: [shifted(inst, d) for inst in instances] for name, d in zip(ANNOTATORS, JITTER)}


def corners(box: Box) -> list[float]:
    return [box.x1, box.y1, box.x2, box.y2]


def test_majority_quorum():
    assert [majority_quorum(n) for n in range(1, 7)] == [1, 2, 2, 3, 3, 4]


def test_average_annotator_boxes_mean_and_median():
    boxes = [shifted(INSTANCE_A, d) for d in JITTER]
    assert corners(average_annotator_boxes(boxes, "mean")) == pytest.approx([104, 104, 304, 304])
    assert corners(average_annotator_boxes(boxes, "median")) == pytest.approx([102, 102, 302, 302])
    with pytest.raises(ValueError):
        average_annotator_boxes([])


@pytest.mark.parametrize(("reduce", "offset"), [("mean", 4.0), ("median", 2.0)])
def test_five_jittered_annotators_give_one_box_per_instance(reduce, offset):
    result = build_consensus_boxes(five_annotators(INSTANCE_A, INSTANCE_B), reduce=reduce)
    assert result.dropped == []
    assert result.min_annotators == 3
    assert len(result.kept) == 2
    by_x = sorted(result.kept, key=lambda c: c.box.x1)
    assert corners(by_x[0].box) == pytest.approx(corners(shifted(INSTANCE_A, offset)))
    assert corners(by_x[1].box) == pytest.approx(corners(shifted(INSTANCE_B, offset)))
    for kept in result.kept:
        assert kept.annotators == ANNOTATORS
        assert kept.num_annotators == 5
        assert kept.missed_by == []
        assert 0.8 < kept.agreement < 1.0


def test_missed_box_still_passes_the_majority():
    boxes = five_annotators(INSTANCE_A, INSTANCE_B)
    boxes["c"] = [shifted(INSTANCE_A, 2.0)]  # c missed instance B
    result = build_consensus_boxes(boxes)
    assert len(result.kept) == 2
    b = max(result.kept, key=lambda c: c.box.x1)
    assert b.annotators == ["a", "b", "d", "e"]
    assert b.missed_by == ["c"]
    # Mean of the four who drew it: jitters 0, 1, 3, 14 -> 4.5.
    assert corners(b.box) == pytest.approx(corners(shifted(INSTANCE_B, 4.5)))


def test_one_annotators_extra_box_is_dropped_by_quorum():
    boxes = five_annotators(INSTANCE_A)
    boxes["d"].append(Box(600.0, 300.0, 700.0, 400.0))
    result = build_consensus_boxes(boxes)
    assert len(result.kept) == 1
    assert len(result.dropped) == 1
    assert result.dropped[0].annotators == ["d"]
    assert result.dropped[0].missed_by == ["a", "b", "c", "e"]


def test_annotators_without_boxes_count_against_every_cluster():
    boxes = {"a": [INSTANCE_A], "b": [INSTANCE_A], "c": [], "d": [], "e": []}
    result = build_consensus_boxes(boxes)
    assert result.min_annotators == 3
    assert result.kept == []
    assert result.dropped[0].missed_by == ["c", "d", "e"]
    assert build_consensus_boxes(boxes, min_annotators=2).kept[0].annotators == ["a", "b"]


def test_two_close_instances_are_not_merged():
    left, right = Box(100.0, 100.0, 200.0, 300.0), Box(160.0, 100.0, 260.0, 300.0)
    assert 0.2 < box_iou(left, right) < 0.5
    result = build_consensus_boxes(five_annotators(left, right))
    assert len(result.kept) == 2
    assert all(kept.num_annotators == 5 for kept in result.kept)
    assert sorted(kept.box.x1 for kept in result.kept) == pytest.approx([104.0, 164.0])


def test_a_cluster_never_holds_two_boxes_of_one_annotator():
    boxes = five_annotators(INSTANCE_A)
    boxes["e"] = [shifted(INSTANCE_A, 1.0), shifted(INSTANCE_A, 5.0)]  # e drew the same object twice
    clusters = match_boxes_across_annotators(boxes)
    # Every box lands in exactly one cluster: none were merged away under one annotator key.
    members = sorted((name, box) for cluster in clusters for name, box in cluster.items())
    assert members == sorted((name, box) for name, bs in boxes.items() for box in bs)
    assert len(clusters) == 2
    assert sorted(len(cluster) for cluster in clusters) == [1, 5]
    result = build_consensus_boxes(boxes)
    assert len(result.kept) == 1 and len(result.dropped) == 1
    assert result.dropped[0].annotators == ["e"]


def test_hungarian_assignment_beats_greedy_best_match():
    # b1 overlaps a1 best (0.82 vs 0.67 with a2); greedy would pair them and strand b2, which
    # only overlaps a1 (0.67; 0.33 with a2). The assignment maximising total IoU pairs both.
    a1, a2 = Box(0.0, 0.0, 100.0, 100.0), Box(30.0, 0.0, 130.0, 100.0)
    b1, b2 = Box(10.0, 0.0, 110.0, 100.0), Box(-20.0, 0.0, 80.0, 100.0)
    assert box_iou(b1, a1) > box_iou(b1, a2) > 0.5 > box_iou(b2, a2)
    boxes = {"a": [a1, a2], "b": [b1, b2]}
    clusters = match_boxes_across_annotators(boxes)
    assert len(clusters) == 2
    assert sorted(sorted(cluster.values()) for cluster in clusters) == sorted([sorted([a1, b2]), sorted([a2, b1])])


@pytest.mark.parametrize("seed", range(8))
def test_result_does_not_depend_on_annotation_order(seed):
    rng = random.Random(seed)
    boxes = five_annotators(INSTANCE_A, INSTANCE_B, Box(120.0, 150.0, 220.0, 320.0))
    boxes["b"].append(Box(700.0, 10.0, 760.0, 90.0))
    boxes["e"].append(shifted(INSTANCE_B, 20.0))
    boxes["f"] = []
    reference = build_consensus_boxes(boxes)
    names = list(boxes)
    rng.shuffle(names)
    shuffled = {}
    for name in names:
        own = list(boxes[name])
        rng.shuffle(own)
        shuffled[name] = own
    assert build_consensus_boxes(shuffled) == reference


def test_agreement_is_mean_iou_to_the_consensus_box():
    a, b = Box(0.0, 0.0, 10.0, 10.0), Box(0.0, 0.0, 10.0, 18.0)
    result = build_consensus_boxes({"a": [a], "b": [b]})
    (kept,) = result.kept
    assert corners(kept.box) == pytest.approx([0, 0, 10, 14])
    # IoU(a, mean) = 100/140, IoU(b, mean) = 140/180.
    assert kept.agreement == pytest.approx((100 / 140 + 140 / 180) / 2)


def test_match_iou_threshold_decides_what_is_the_same_instance():
    boxes = {"a": [Box(0.0, 0.0, 100.0, 100.0)], "b": [Box(40.0, 0.0, 140.0, 100.0)]}  # IoU = 0.4286
    assert len(match_boxes_across_annotators(boxes, match_iou=0.5)) == 2
    assert len(match_boxes_across_annotators(boxes, match_iou=0.4)) == 1


def test_nobody_drew_anything():
    result = build_consensus_boxes({"a": [], "b": []})
    assert result.kept == [] and result.dropped == []
