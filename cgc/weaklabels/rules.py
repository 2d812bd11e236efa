"""The weak-label rules, by name, and the one entry point that applies the chosen one to a picture's boxes.

`all-in-box` (every salient pixel in the box: the naive baseline), `largest-region` (the paper's
priors read literally), `resolve-shared` (`priors.py`: shared pixels to the box they reach most
cheaply) and `appearance` (the same seeds, then colour models and a graph cut: `appearance.py`),
the default: it measured best on both styles of sample scene and on real photographs
(docs/method/weak-labels.md). The registry sits above the modules that implement the rules, so none
of them imports another's caller, and a new rule is one function and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cgc.weaklabels.appearance import resolve_by_appearance
from cgc.weaklabels.priors import PriorSettings, box_masks, largest_component, resolve_shared_pixels

Rule = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", PriorSettings], list[np.ndarray]]


def all_in_box(salient: np.ndarray, boxes: np.ndarray, image: np.ndarray | None, settings: PriorSettings) -> list[np.ndarray]:
    """Every salient pixel inside the box, shared pixels to every box that holds them (the naive baseline)."""
    return [salient & box for box in box_masks(boxes, *salient.shape)]


def largest_region(salient: np.ndarray, boxes: np.ndarray, image: np.ndarray | None, settings: PriorSettings) -> list[np.ndarray]:
    """The largest connected salient area inside each box (the paper's priors read literally)."""
    return [largest_component(mask) for mask in all_in_box(salient, boxes, image, settings)]


RULE_FUNCTIONS: dict[str, Rule] = {
    "resolve-shared": resolve_shared_pixels,
    "appearance": resolve_by_appearance,
    "largest-region": largest_region,
    "all-in-box": all_in_box,
}
RULES = tuple(RULE_FUNCTIONS)


def instance_masks_from_boxes(salient: np.ndarray, boxes: np.ndarray, image: np.ndarray | None = None, settings: PriorSettings = PriorSettings()) -> list[np.ndarray]:
    """One boolean mask per box (x1, y1, x2, y2 pixels), under the chosen rule; empty if nothing fits."""
    if settings.rule not in RULE_FUNCTIONS:
        raise ValueError(f"unknown rule {settings.rule!r}; expected one of {', '.join(RULES)}")
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    return RULE_FUNCTIONS[settings.rule](salient.astype(bool), boxes, image, settings)
