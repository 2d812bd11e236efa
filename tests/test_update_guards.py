"""Each guard on hand-built C / R / R_f cases: it keeps a good label that plain Algorithm 1 would replace by a
worse map, and still replaces a bad label by a better one."""

from __future__ import annotations

import numpy as np

from cgc.refine.update_guards import UpdateGuards, guarded_label

SHAPE = (40, 60)
PLAIN = UpdateGuards()


def square(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[y0:y1, x0:x1] = True
    return mask


TRUTH = square(10, 10, 25, 30)  # the instance
NEIGHBOUR = square(25, 10, 45, 30)  # another instance touching it, with its own label
BOX = (10.0, 10.0, 25.0, 30.0)
NOTHING = np.zeros(SHAPE, bool)


def soft(mask: np.ndarray, inside: float = 0.95, outside: float = 0.02) -> np.ndarray:
    return np.where(mask, inside, outside).astype(np.float32)


def test_without_guards_the_map_replaces_the_label() -> None:
    bleeding = TRUTH | NEIGHBOUR
    label, why = guarded_label(TRUTH, soft(bleeding), soft(bleeding), NEIGHBOUR, BOX, PLAIN)
    assert why == "" and np.array_equal(label, bleeding)  # Algorithm 1: a good label made worse


def test_region_guard_keeps_the_map_off_other_instances_and_the_background() -> None:
    guards = UpdateGuards(region_margin=2)
    bleeding = TRUTH | NEIGHBOUR | square(0, 0, 60, 5)  # into the neighbour, and into the background
    assert guarded_label(TRUTH, soft(bleeding), soft(bleeding), NEIGHBOUR, BOX, guards) == (None, "unchanged under the guards")
    # A label that took a strip of its neighbour's pixels (shared pixels given to the wrong box) is repaired.
    strip = square(25, 10, 30, 30)
    label, _ = guarded_label(TRUTH | strip, soft(TRUTH), soft(TRUTH), NEIGHBOUR & ~strip, BOX, guards)
    assert np.array_equal(label, TRUTH)


def test_box_guard_keeps_the_map_in_the_grown_box() -> None:
    guards = UpdateGuards(box_margin=0.1)
    bleeding = TRUTH | square(25, 10, 60, 30)
    label, _ = guarded_label(TRUTH, soft(bleeding), soft(bleeding), NOTHING, BOX, guards)
    assert label[:, 28:].sum() == 0 and label[TRUTH].all()  # at most 0.1 x 15 = 1.5 px past the box's side
    shrunk = square(12, 12, 20, 25)
    label, _ = guarded_label(shrunk, soft(TRUTH), soft(TRUTH), NOTHING, BOX, guards)
    assert np.array_equal(label, TRUTH)


def test_quality_floor_refuses_a_far_map_and_accepts_a_near_one() -> None:
    guards = UpdateGuards(min_iou=0.5)
    elsewhere = square(40, 5, 58, 35)
    assert guarded_label(TRUTH, soft(elsewhere), soft(elsewhere), NOTHING, BOX, guards) == (None, "too far from the label")
    bad = square(10, 10, 25, 24)  # 70 % of the instance
    label, _ = guarded_label(bad, soft(TRUTH), soft(TRUTH), NOTHING, BOX, guards)
    assert np.array_equal(label, TRUTH)


def test_confidence_floor_refuses_a_diffuse_early_map() -> None:
    guards = UpdateGuards(min_confidence=0.2)
    diffuse = np.full(SHAPE, 0.55, np.float32)
    assert guarded_label(TRUTH, diffuse, soft(NEIGHBOUR), NOTHING, BOX, guards) == (None, "diffuse map")
    bad = square(10, 10, 25, 24)
    label, _ = guarded_label(bad, soft(TRUTH), soft(TRUTH), NOTHING, BOX, guards)
    assert np.array_equal(label, TRUTH)


def test_blending_changes_only_pixels_where_the_map_is_confident() -> None:
    guards = UpdateGuards(blend_confidence=0.3)
    r_f = soft(TRUTH)
    r_f[NEIGHBOUR] = 0.6  # unsure beyond the label: those pixels stay as C has them
    r_f[10:30, 10:12] = 0.45  # unsure inside: kept too
    assert guarded_label(TRUTH, r_f, r_f, NOTHING, BOX, guards) == (None, "unchanged under the guards")
    bad = square(10, 10, 25, 20)  # confident map of the full instance: the missing half is filled in
    label, _ = guarded_label(bad, soft(TRUTH), soft(TRUTH), NOTHING, BOX, guards)
    assert np.array_equal(label, TRUTH)


def test_shared_pixels_guard_changes_only_what_two_labels_claim() -> None:
    """Naive labels take every salient pixel in the box, the neighbour's too where the boxes overlap: the guard
    lets the map decide the pixels both labels claim, and keeps every pixel that one label holds alone."""
    guards = UpdateGuards(shared_only=True)
    box = (10.0, 10.0, 30.0, 30.0)  # overlaps the neighbour's box (22, 10, 45, 30) in columns 22-30
    naive, naive_neighbour = square(10, 10, 30, 30), square(22, 10, 45, 30)  # both claim columns 22-30
    label, _ = guarded_label(naive, soft(TRUTH), soft(TRUTH), naive_neighbour, box, guards)
    assert np.array_equal(label, TRUTH)  # the shared strip is decided: columns 22-25 kept, 25-30 given up
    worse = TRUTH & ~square(10, 10, 16, 30) | NEIGHBOUR | square(0, 0, 60, 5)  # drops the left, takes the rest
    plain, _ = guarded_label(TRUTH, soft(worse), soft(worse), NEIGHBOUR, BOX, PLAIN)
    assert np.array_equal(plain, worse)  # Algorithm 1 takes the worse map
    # labels that do not overlap (the priors'): nothing to decide, and no other label: the label stays
    assert guarded_label(TRUTH, soft(worse), soft(worse), NEIGHBOUR, BOX, guards) == (None, "unchanged under the guards")
    assert guarded_label(naive, soft(TRUTH), soft(TRUTH), NOTHING, box, guards) == (None, "unchanged under the guards")
