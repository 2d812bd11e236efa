"""The weak-label rules, and the one entry point that applies the chosen one to a picture's boxes.

`all-in-box` (every salient pixel in the box: the naive baseline), `largest-region` (the paper's
priors read literally), `resolve-shared` (`priors.py`: shared pixels to the box they reach most
cheaply) and `appearance` (the same seeds, then colour models and a graph cut: `appearance.py`),
the default: it measured best on both styles of sample scene and on real photographs
(docs/method/weak-labels.md). This module sits above both, so neither imports the other's caller.
"""

from __future__ import annotations

import numpy as np

from cgc.weaklabels.appearance import resolve_by_appearance
from cgc.weaklabels.priors import PriorSettings, box_masks, largest_component, resolve_shared_pixels

RULES = ("resolve-shared", "appearance", "largest-region", "all-in-box")


def instance_masks_from_boxes(salient: np.ndarray, boxes: np.ndarray, image: np.ndarray | None = None, settings: PriorSettings = PriorSettings()) -> list[np.ndarray]:
    """One boolean mask per box (x1, y1, x2, y2 pixels), under the chosen rule; empty if nothing fits."""
    if settings.rule not in RULES:
        raise ValueError(f"unknown rule {settings.rule!r}; expected one of {', '.join(RULES)}")
    salient = salient.astype(bool)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    height, width = salient.shape
    if settings.rule == "resolve-shared":
        return resolve_shared_pixels(salient, boxes, image, settings)
    if settings.rule == "appearance":
        return resolve_by_appearance(salient, boxes, image, settings)
    inside = [salient & box for box in box_masks(boxes, height, width)]
    if settings.rule == "largest-region":
        return [largest_component(mask) for mask in inside]
    return inside
