"""Pixel boxes and the little geometry the annotation import needs.

Boxes are corner form `(x1, y1, x2, y2)` in pixels of the original image, because averaging
corners is what the paper does ("the average of five annotators' boxes", stored as
`[x1, y1, x2, y2]`); COCO's xywh is produced only when writing.
"""

from __future__ import annotations

from dataclasses import dataclass

import shapely.affinity
import shapely.geometry


@dataclass(frozen=True, order=True)
class Box:
    """An axis-aligned box in pixels; frozen and ordered so sorting makes runs deterministic."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def as_xywh(self) -> list[float]:
        """COCO's `bbox` field: top-left corner plus size."""
        return [self.x1, self.y1, self.width, self.height]

    def normalized(self, image_width: float, image_height: float) -> list[float]:
        """The paper's 4-D label: `[x1, y1, x2, y2]` divided by the image size (0..1)."""
        return [
            self.x1 / image_width,
            self.y1 / image_height,
            self.x2 / image_width,
            self.y2 / image_height,
        ]

    def clamped(self, image_width: float, image_height: float) -> Box:
        """The part of the box inside the image (annotators drag corners past the border)."""
        return Box(
            min(max(self.x1, 0.0), image_width),
            min(max(self.y1, 0.0), image_height),
            min(max(self.x2, 0.0), image_width),
            min(max(self.y2, 0.0), image_height),
        )


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union; 0 for disjoint or degenerate boxes (never divides by zero)."""
    inter_w = min(a.x2, b.x2) - max(a.x1, b.x1)
    inter_h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if inter_w <= 0 or inter_h <= 0:
        return 0.0
    inter = inter_w * inter_h
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def rotated_rect_envelope(x: float, y: float, width: float, height: float, rotation_deg: float) -> Box:
    """Axis-aligned envelope of a Label Studio rectangle rotated by `rotation_deg`.

    Label Studio stores the top-left corner (x, y) of the *unrotated* rectangle and rotates
    about that corner, clockwise on screen (image y axis points down). All arguments must be
    in pixels: percent axes have different scales, so rotating in percent would shear the box.
    """
    # shapely rotates counter-clockwise in y-up axes, which is clockwise on screen with y down.
    rotated = shapely.affinity.rotate(shapely.geometry.box(x, y, x + width, y + height), rotation_deg, origin=(x, y))
    return Box(*rotated.bounds)
