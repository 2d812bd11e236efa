"""COCO-style instance JSON (how RDPNet, OQTR and others ship SIS datasets).

Every category is read as "salient" (salient instance segmentation is class-agnostic).
Crowd annotations (`iscrowd: 1`) are skipped with a warning, because an InstanceImage has no
notion of ignore regions.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from cgc.coco import decode_mask
from cgc.coco_files import read_instance_file
from cgc.datasets.pictures import image_size
from cgc.datasets.instances import InstanceDataset, InstanceImage
from cgc.errors import InputError


def find_coco_json(root: str | Path) -> Path:
    """The annotation file: `root` itself, or the only *.json in `root` or `root/annotations`."""
    root = Path(root)
    if root.is_file():
        return root
    if not root.is_dir():
        raise InputError("COCO JSON file or folder not found", root)
    for folder in (root, root / "annotations"):
        candidates = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            names = ", ".join(path.name for path in candidates)
            raise InputError(f"several JSON files ({names}): pass the one to use", folder)
    raise InputError("no COCO JSON file found (looked in the folder and its annotations/)", root)


def _load_coco_image(
    json_path: Path, image: dict[str, Any], image_path: Path | None, annotations: list[dict[str, Any]]
) -> InstanceImage:
    height, width = image["height"], image["width"]
    if image_path is not None:
        actual = image_size(image_path)
        if actual != (width, height):
            raise InputError(
                f"image is {actual[0]}x{actual[1]} but {json_path} says {width}x{height}", image_path
            )
    masks = [decode_mask(annotation["segmentation"], height, width) for annotation in annotations]
    return InstanceImage(image["file_name"], image_path, height, width, masks)


def read_coco_json(path: str | Path, images_dir: str | Path | None = None) -> InstanceDataset:
    """Open a COCO instance JSON as a lazy InstanceDataset sorted by file name.

    With `images_dir`, each image's size is checked against its file (header only) and images
    missing from the folder are reported in `warnings` (and kept, with `image_path=None`).
    """
    path = Path(path)
    coco = read_instance_file(path, "COCO JSON file")
    images_dir = Path(images_dir) if images_dir is not None else None
    if images_dir is not None and not images_dir.is_dir():
        raise InputError("image folder not found", images_dir)
    dataset = InstanceDataset(f"COCO instances from {path}", [])
    by_image = coco.annotations_by_image()
    for image_id, items in by_image.items():
        dataset.warnings.extend(f"{path}: annotation {item['id']} is a crowd region; skipped"
                                for item in items if item.get("iscrowd", 0))
        by_image[image_id] = [item for item in items if not item.get("iscrowd", 0)]
    for image in sorted(coco.images, key=lambda entry: entry["file_name"]):
        image_path = None
        if images_dir is not None:
            image_path = images_dir / image["file_name"]
            if not image_path.is_file():
                dataset.warnings.append(f"{image_path}: image listed in {path.name} not found")
                image_path = None
        dataset.loaders.append(functools.partial(_load_coco_image, path, image, image_path, by_image[image["id"]]))
    return dataset
