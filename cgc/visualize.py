"""Overlay pictures: each instance filled in its own colour, outlined, with its box."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np


def instance_colours(count: int) -> list[tuple[int, int, int]]:
    """Well-separated BGR colours (golden-ratio hue steps), the same for the same index everywhere."""
    colours = []
    for index in range(count):
        r, g, b = colorsys.hsv_to_rgb((index * 0.618033988749895) % 1.0, 0.85, 1.0)
        colours.append((int(b * 255), int(g * 255), int(r * 255)))
    return colours


def overlay_instances(
    image: np.ndarray,
    masks: Sequence[np.ndarray],
    boxes: Sequence[Sequence[float]] | None = None,
    alpha: float = 0.45,
) -> np.ndarray:
    """Blend instance masks onto a BGR (or grey) image; boxes are x1, y1, x2, y2 pixels."""
    canvas = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    canvas = canvas.astype(np.float32)
    colours = instance_colours(max(len(masks), len(boxes or [])))
    for mask, colour in zip(masks, colours):
        canvas[mask] = canvas[mask] * (1 - alpha) + np.array(colour, np.float32) * alpha
    out = canvas.astype(np.uint8)
    for mask, colour in zip(masks, colours):
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, colour, 2)
    for box, colour in zip(boxes or [], colours):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), colour, 1, lineType=cv2.LINE_AA)
    return out
