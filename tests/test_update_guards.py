"""The shared-pixels guard on hand-built C / R_f cases: it keeps a good label that plain Algorithm 1 would replace
by a worse map, and still lets the map decide the pixels two labels claim."""

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
NOTHING = np.zeros(SHAPE, bool)


def soft(mask: np.ndarray, inside: float = 0.95, outside: float = 0.02) -> np.ndarray:
    return np.where(mask, inside, outside).astype(np.float32)


def test_without_guards_the_map_replaces_the_label() -> None:
    bleeding = TRUTH | NEIGHBOUR
    label, why = guarded_label(TRUTH, soft(bleeding), NEIGHBOUR, PLAIN)
    assert why == "" and np.array_equal(label, bleeding)  # Algorithm 1: a good label made worse
    assert guarded_label(TRUTH, soft(NOTHING), NEIGHBOUR, PLAIN) == (None, "empty after the guards")


def test_shared_pixels_guard_changes_only_what_two_labels_claim() -> None:
    """Naive labels take every salient pixel in the box, the neighbour's too where the boxes overlap: the guard
    lets the map decide the pixels both labels claim, and keeps every pixel that one label holds alone."""
    guards = UpdateGuards(shared_only=True)
    naive, naive_neighbour = square(10, 10, 30, 30), square(22, 10, 45, 30)  # both claim columns 22-30
    label, _ = guarded_label(naive, soft(TRUTH), naive_neighbour, guards)
    assert np.array_equal(label, TRUTH)  # the shared strip is decided: columns 22-25 kept, 25-30 given up
    worse = TRUTH & ~square(10, 10, 16, 30) | NEIGHBOUR | square(0, 0, 60, 5)  # drops the left, takes the rest
    plain, _ = guarded_label(TRUTH, soft(worse), NEIGHBOUR, PLAIN)
    assert np.array_equal(plain, worse)  # Algorithm 1 takes the worse map
    # labels that do not overlap (the priors'): nothing to decide, and no other label: the label stays
    assert guarded_label(TRUTH, soft(worse), NEIGHBOUR, guards) == (None, "unchanged under the guards")
    assert guarded_label(naive, soft(TRUTH), NOTHING, guards) == (None, "unchanged under the guards")
