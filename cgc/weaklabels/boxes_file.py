"""Reading the consensus-box file (`cgc annotate import` output, COCO detection JSON)."""

from __future__ import annotations

import math

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cgc.errors import InputError
from cgc.fileio import read_json


@dataclass
class ImageBoxes:
    """One image of the box file and its consensus boxes (x1, y1, x2, y2 pixels)."""

    image_id: int
    file_name: str
    width: int | None
    height: int | None
    box_ids: list[int] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)


def read_box_file(path: str | Path) -> list[ImageBoxes]:
    """Parse and check the box file; a malformed file is an InputError naming what is wrong."""
    data = read_json(path, "box file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise InputError("not a COCO box file: expected an object with 'images' and 'annotations' lists", path)
    images: dict[int, ImageBoxes] = {}
    for position, image in enumerate(data["images"]):
        try:
            record = ImageBoxes(
                image_id=int(image["id"]),
                file_name=str(image["file_name"]),
                width=optional_int(image.get("width")),
                height=optional_int(image.get("height")),
            )
        except (KeyError, TypeError, ValueError):
            raise InputError(f"images[{position}] needs an integer 'id' and a 'file_name'", path) from None
        if record.image_id in images:
            raise InputError(f"image id {record.image_id} appears twice", path)
        images[record.image_id] = record
    for position, annotation in enumerate(data["annotations"]):
        try:
            image_id = int(annotation["image_id"])
            x, y, w, h = (float(v) for v in annotation["bbox"])
            box_id = int(annotation.get("id", position + 1))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"annotations[{position}] needs an 'image_id' and a 4-number 'bbox'", path) from None
        if not all(math.isfinite(value) for value in (x, y, w, h)):
            raise InputError(f"annotations[{position}] has a bbox that is not a finite number: {annotation['bbox']}", path)
        if image_id not in images:
            raise InputError(f"annotations[{position}] refers to image id {image_id}, which is not in 'images'", path)
        images[image_id].box_ids.append(box_id)
        images[image_id].boxes.append((x, y, x + w, y + h))
    return sorted(images.values(), key=lambda record: record.image_id)


def optional_int(value: Any) -> int | None:
    return None if value in (None, 0) else int(value)
