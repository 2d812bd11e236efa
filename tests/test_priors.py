"""The priors on hand-built masks: every case the paper names, with and without image edges."""

from __future__ import annotations

import numpy as np
import pytest

from cgc.weaklabels import appearance
from cgc.weaklabels.priors import PriorSettings, largest_component
from cgc.weaklabels.rules import RULES, instance_masks_from_boxes
from helpers import iou, rectangle

SHAPE = (100, 160)


def paint(masks_and_colours: list[tuple[np.ndarray, tuple[int, int, int]]]) -> np.ndarray:
    image = np.full(SHAPE + (3,), 90, np.uint8)
    for mask, colour in masks_and_colours:
        image[mask] = colour
    return image


def test_two_boxes_sharing_a_region_split_at_the_image_edge() -> None:
    # Two touching objects whose boxes overlap by 20 px: the shared salient pixels must be split.
    left, right = rectangle(SHAPE, 20, 20, 80, 80), rectangle(SHAPE, 80, 30, 140, 70)
    salient = left | right
    boxes = [[20, 20, 100, 80], [60, 30, 140, 70]]  # sloppy boxes reaching into each other
    image = paint([(left, (200, 40, 40)), (right, (40, 40, 200))])
    masks = instance_masks_from_boxes(salient, boxes, image)
    assert iou(masks[0], left) > 0.97 and iou(masks[1], right) > 0.97
    assert not (masks[0] & masks[1]).any()
    naive = instance_masks_from_boxes(salient, boxes, image, PriorSettings(rule="all-in-box"))
    assert iou(naive[0], left) < 0.9  # the naive rule gives the shared pixels to both boxes
    assert (naive[0] & naive[1]).sum() > 0


def test_shared_region_without_image_goes_to_the_geodesically_nearer_box() -> None:
    left, right = rectangle(SHAPE, 10, 40, 80, 60), rectangle(SHAPE, 80, 40, 150, 60)
    salient = left | right
    boxes = [[10, 40, 100, 60], [60, 40, 150, 60]]
    masks = instance_masks_from_boxes(salient, boxes, None, PriorSettings(edge_weight=0))
    # the undecided strip x in [60, 100) is split in its middle, at x = 80
    assert masks[0][40:60, 10:79].all() and not masks[0][:, 81:].any()
    assert masks[1][40:60, 81:150].all() and not masks[1][:, :79].any()


def test_small_box_inside_a_large_one_keeps_its_own_instance() -> None:
    big = np.zeros(SHAPE, bool)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    big[(yy - 50) ** 2 / 40**2 + (xx - 80) ** 2 / 60**2 <= 1] = True
    small = rectangle(SHAPE, 60, 35, 80, 55)  # in front of the big object
    big_visible = big & ~small
    image = paint([(big, (40, 160, 40)), (small, (220, 220, 30))])
    boxes = [[20, 10, 140, 90], [60, 35, 80, 55]]
    masks = instance_masks_from_boxes(big | small, boxes, image)
    assert iou(masks[1], small) > 0.95
    assert iou(masks[0], big_visible) > 0.97
    literal = instance_masks_from_boxes(big | small, boxes, image, PriorSettings(rule="largest-region"))
    assert literal[0][small].all()  # read literally, the big box swallows the small instance


def test_small_enclosed_box_seeded_from_its_centre_without_edges() -> None:
    big = rectangle(SHAPE, 20, 20, 140, 80)
    boxes = [[20, 20, 140, 80], [70, 40, 90, 60]]
    masks = instance_masks_from_boxes(big, boxes, None, PriorSettings(edge_weight=0))
    assert masks[1][45:55, 75:85].all()  # its core is its own
    assert masks[0].sum() + masks[1].sum() == big.sum()
    assert not (masks[0] & masks[1]).any()


def test_box_with_two_blobs_keeps_both_and_the_papers_prior_the_largest() -> None:
    large, little = rectangle(SHAPE, 20, 20, 70, 80), rectangle(SHAPE, 100, 40, 120, 60)
    for rule in ("appearance", "resolve-shared"):
        masks = instance_masks_from_boxes(large | little, [[10, 10, 130, 90]], settings=PriorSettings(rule=rule))
        assert (masks[0] == (large | little)).all(), rule
    assert (instance_masks_from_boxes(large | little, [[10, 10, 130, 90]], settings=PriorSettings(rule="largest-region"))[0] == large).all()
    assert (instance_masks_from_boxes(large | little, [[10, 10, 130, 90]], settings=PriorSettings(rule="all-in-box"))[0] == (large | little)).all()


@pytest.mark.parametrize("rule", ["appearance", "resolve-shared"])
def test_an_instance_cut_in_two_by_one_in_front_keeps_both_pieces(rule: str) -> None:
    """A bar (a bicycle's frame, an oar) crossed by a post in front of it: its box owns the bar's two ends, the
    post's box owns the crossing, and the bar's label keeps both ends, not only the larger."""
    bar, post = rectangle(SHAPE, 10, 40, 150, 60), rectangle(SHAPE, 70, 10, 90, 90)
    image = np.zeros(SHAPE + (3,), np.uint8)
    image[bar] = (200, 40, 40)
    image[post] = (40, 40, 200)
    masks = instance_masks_from_boxes(bar | post, [[10, 40, 150, 60], [70, 10, 90, 90]], image, PriorSettings(rule=rule))
    assert (masks[1] == post).all()
    assert (masks[0] == (bar & ~post)).all()  # both ends, 60 and 60 pixels wide


def test_box_without_salient_pixels_gives_an_empty_mask() -> None:
    salient = rectangle(SHAPE, 10, 10, 40, 40)
    masks = instance_masks_from_boxes(salient, [[10, 10, 40, 40], [100, 50, 150, 90]])
    assert masks[0].sum() == 900 and masks[1].sum() == 0


def test_no_boxes_and_empty_mask() -> None:
    assert instance_masks_from_boxes(np.zeros(SHAPE, bool), np.zeros((0, 4))) == []
    masks = instance_masks_from_boxes(np.zeros(SHAPE, bool), [[0, 0, 10, 10], [5, 5, 20, 20]])
    assert all(mask.sum() == 0 for mask in masks)


def test_every_rule_keeps_pixels_inside_their_box() -> None:
    rng = np.random.default_rng(0)
    salient = rng.random(SHAPE) < 0.6
    boxes = [[5, 5, 90, 70], [50, 30, 150, 95], [60, 40, 80, 60]]
    image = (rng.random(SHAPE + (3,)) * 255).astype(np.uint8)
    for rule in RULES:
        for box, mask in zip(boxes, instance_masks_from_boxes(salient, boxes, image, PriorSettings(rule=rule))):
            assert not mask[: box[1]].any() and not mask[box[3] :].any()
            assert not mask[:, : box[0]].any() and not mask[:, box[2] :].any()
            assert not (mask & ~salient).any()


def test_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rule"):
        instance_masks_from_boxes(np.zeros(SHAPE, bool), [[0, 0, 5, 5]], settings=PriorSettings(rule="magic"))


def test_largest_component_uses_eight_connectivity() -> None:
    mask = np.zeros((5, 5), bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True  # a diagonal line is one region
    mask[4, 4] = True
    assert largest_component(mask).sum() == 3


def textured(mask_colours: list[tuple[np.ndarray, tuple[int, int, int]]], seed: int = 0) -> np.ndarray:
    """Objects whose texture is as strong inside as their boundary: edges alone cannot place the cut."""
    noise = np.random.default_rng(seed).integers(-70, 70, SHAPE + (1,))
    return np.clip(paint(mask_colours).astype(int) + noise, 0, 255).astype(np.uint8)


def test_appearance_settles_shared_pixels_by_colour_where_edges_and_geometry_do_not() -> None:
    """A red and a blue object, both noisy, in loose boxes: the shared strip is mostly red, but the blue box's
    own region is far nearer to much of it. Geometry splits it in the wrong place; the colour models do not."""
    red, blue = rectangle(SHAPE, 20, 20, 100, 80), rectangle(SHAPE, 100, 20, 130, 80)
    image = textured([(red, (60, 60, 190)), (blue, (190, 60, 60))])
    boxes = [[15, 15, 122, 85], [60, 15, 135, 85]]
    geometry = instance_masks_from_boxes(red | blue, boxes, image, PriorSettings(rule="resolve-shared"))
    colour = instance_masks_from_boxes(red | blue, boxes, image, PriorSettings(rule="appearance"))
    assert iou(geometry[0], red) < 0.9
    assert iou(colour[0], red) > 0.97 and iou(colour[1], blue) > 0.9
    assert not (colour[0] & colour[1]).any()


def crosses_every_line(mask: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    inside = mask[box[1]: box[3], box[0]: box[2]]
    return bool(inside.any(axis=0).all() and inside.any(axis=1).all())


def test_appearance_keeps_an_instance_crossing_every_row_and_column_of_its_box(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two instances of one texture, the front one reaching 20 px into the back one's box: colour cannot
    tell them apart, and the cheapest cut gives the back box the whole shared area. The tight-box prior
    (pinpointing) makes the front instance reach its box's far side again."""
    front_box, back_box = (20, 30, 80, 60), (60, 10, 140, 90)
    front = rectangle(SHAPE, *front_box)
    back = rectangle(SHAPE, *back_box) & ~front
    image = textured([(front | back, (150, 120, 90))], seed=2)
    masks = instance_masks_from_boxes(front | back, [front_box, back_box], image, PriorSettings(rule="appearance"))
    assert crosses_every_line(masks[0], front_box) and crosses_every_line(masks[1], back_box)
    assert iou(masks[0], front) > 0.85 and iou(masks[1], back) > 0.95
    monkeypatch.setattr(appearance, "PINPOINT_ROUNDS", 0)  # the cut alone
    plain = instance_masks_from_boxes(front | back, [front_box, back_box], image, PriorSettings(rule="appearance"))
    assert not crosses_every_line(plain[0], front_box) and iou(plain[0], front) < 0.75


def test_appearance_keeps_a_small_enclosed_instance_and_the_geometry_without_a_picture() -> None:
    big = np.zeros(SHAPE, bool)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    big[(yy - 50) ** 2 / 40**2 + (xx - 80) ** 2 / 60**2 <= 1] = True
    small = rectangle(SHAPE, 60, 35, 80, 55)
    image = textured([(big, (40, 160, 40)), (small, (220, 220, 30))], seed=1)
    boxes = [[20, 10, 140, 90], [60, 35, 80, 55]]
    masks = instance_masks_from_boxes(big | small, boxes, image, PriorSettings(rule="appearance"))
    assert iou(masks[1], small) > 0.9 and iou(masks[0], big & ~small) > 0.97
    blind = instance_masks_from_boxes(big | small, boxes, None, PriorSettings(rule="appearance", edge_weight=0))
    reference = instance_masks_from_boxes(big | small, boxes, None, PriorSettings(rule="resolve-shared", edge_weight=0))
    assert all((a == b).all() for a, b in zip(blind, reference))
