"""Instances -> standard COCO instance-segmentation JSON (one category: salient)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cgc.coco import SALIENT_CATEGORY_ID, coco_dataset, encode_mask, mask_bbox_xywh
from cgc.datasets.instances import InstanceImage


def instances_to_coco(images: Iterable[InstanceImage], description: str) -> dict[str, Any]:
    """Build a COCO dataset dict so evaluation sets load in pycocotools, torchvision, detectron2.

    Image and annotation ids start at 1 in iteration order; `area` is the mask's pixel count
    (COCOeval buckets small/medium/large by it); empty masks are skipped.
    """
    coco_images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, image in enumerate(images, start=1):
        coco_images.append({"id": image_id, "file_name": image.file_name, "width": image.width, "height": image.height})
        for mask in image.masks:
            area = int(mask.sum())
            if area == 0:
                continue
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": SALIENT_CATEGORY_ID,
                    "segmentation": encode_mask(mask),
                    "area": area,
                    "bbox": mask_bbox_xywh(mask),
                    "iscrowd": 0,
                }
            )
    return coco_dataset(coco_images, annotations, description)
