"""What `cgc predict` writes from the network's detections: one instance per pixel, everywhere."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from cgc.inference import Detections, coco_results, exclusive_labels, instance_map
from cgc.model.box_masks import BoxMasks


def three_maps() -> np.ndarray:
    """Three detections' probabilities by decreasing score; the second overlaps the first, the third is weak."""
    probabilities = np.zeros((3, 10, 12), np.float32)
    probabilities[0, 0:6, 0:6] = 0.9
    probabilities[1, 2:8, 2:10] = 0.8
    probabilities[1, 2:4, 2:4] = 0.95  # the second is surer than the first here
    probabilities[2, 8:10, 0:3] = 0.7
    return probabilities


def detections(probabilities: np.ndarray | None = None) -> Detections:
    boxes = np.array([[0, 0, 6, 6], [2, 2, 10, 8], [0, 8, 3, 10]], np.float32)
    maps = three_maps() if probabilities is None else probabilities
    return Detections(boxes, np.array([0.9, 0.8, 0.3], np.float32), BoxMasks.from_dense(maps))


def one_mask_per_label(labels: np.ndarray, count: int) -> np.ndarray:
    return np.stack([labels == number for number in range(1, count + 1)]) if count else np.zeros((0, *labels.shape), bool)


def test_each_pixel_goes_to_the_most_probable_instance() -> None:
    masks = one_mask_per_label(exclusive_labels(BoxMasks.from_dense(three_maps())), 3)
    assert masks.sum(axis=0).max() == 1
    assert masks[1, 2:4, 2:4].all() and not masks[0, 2:4, 2:4].any()  # 0.95 beats 0.9
    assert masks[0, 4:6, 4:6].all() and not masks[1, 4:6, 4:6].any()  # 0.9 beats 0.8
    assert not masks[:, 9, 11].any()  # no probability reaches 0.5 there


def test_ties_go_to_the_higher_score_and_below_half_is_background() -> None:
    probabilities = np.full((2, 2, 2), 0.6, np.float32)
    probabilities[:, 1, 1] = 0.4
    masks = one_mask_per_label(exclusive_labels(BoxMasks.from_dense(probabilities)), 2)
    assert masks[0].sum() == 3 and not masks[1].any() and not masks[:, 1, 1].any()
    assert not exclusive_labels(BoxMasks.from_dense(np.zeros((0, 3, 4), np.float32))).any()


def test_score_threshold_drops_detections_before_pixels_are_shared() -> None:
    kept = detections().instances(0.5)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.8]) and len(kept.masks) == 2
    everything = detections().instances(0.0)
    assert len(everything.masks) == 3 and everything.masks[2].sum() == 6


def test_a_detection_left_without_pixels_is_dropped() -> None:
    maps = three_maps()
    maps[1] = np.where(maps[0] > 0, 0.6, 0.0)  # wholly under the first, less sure
    kept = detections(maps).instances(0.5)
    assert len(kept.masks) == 1 and len(kept.boxes) == 1 and kept.scores.tolist() == pytest.approx([0.9])


def test_indexed_png_and_results_json_agree() -> None:
    kept = detections().instances(0.0)
    labels = instance_map(kept)
    results = coco_results(7, kept)
    assert len(results) == len(np.unique(labels[labels > 0]))
    for number, entry in enumerate(results, start=1):
        assert entry["image_id"] == 7
        assert np.array_equal(mask_utils.decode(entry["segmentation"]).astype(bool), labels == number)


def test_no_detection_above_the_threshold_gives_an_empty_prediction() -> None:
    kept = detections().instances(0.99)
    assert kept.masks.shape == (0, 10, 12) and len(kept.boxes) == 0 and coco_results(1, kept) == []
    assert not instance_map(kept).any()


def test_the_tail_below_the_threshold_keeps_each_mask_whole() -> None:
    """The detections under the score threshold (what COCO AP still ranks) keep their own masks, overlaps and all."""
    rles = detections().binary_masks([1, 2])
    assert [int(mask_utils.area(rle)) for rle in rles] == [48, 6]
