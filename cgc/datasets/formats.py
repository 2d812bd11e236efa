"""One entry point that opens any supported instance dataset by format name (for the CLI)."""

from __future__ import annotations

from pathlib import Path

from cgc.datasets.coco_json import find_coco_json, read_coco_json
from cgc.datasets.ilso import ILSO_GT_SUBDIR, ILSO_IMAGES_SUBDIR, read_ilso
from cgc.datasets.instances import InstanceDataset
from cgc.datasets.soc import SOC_GT_SUBDIR, SOC_IMAGES_SUBDIR, read_soc
from cgc.errors import InputError

INSTANCE_FORMATS = ("ilso", "soc", "coco")


def open_instance_dataset(
    dataset_format: str,
    root: str | Path,
    images_subdir: str | None = None,
    gt_subdir: str | None = None,
    split: str | None = None,
) -> InstanceDataset:
    """Open `root` as an `ilso`, `soc` or `coco` instance dataset; None means the format's default.

    For `coco`, `root` is the JSON file or a folder holding exactly one; `gt_subdir` then names
    the JSON file inside `root`, and `images_subdir` (optional) the image folder beside it.
    """
    root = Path(root)
    if split is not None and dataset_format != "soc":
        raise InputError(f"--split applies only to the soc format, not {dataset_format}")
    if dataset_format == "ilso":
        return read_ilso(root, images_subdir or ILSO_IMAGES_SUBDIR, gt_subdir or ILSO_GT_SUBDIR)
    if dataset_format == "soc":
        return read_soc(root, split, images_subdir or SOC_IMAGES_SUBDIR, gt_subdir or SOC_GT_SUBDIR)
    if dataset_format == "coco":
        json_path = find_coco_json(root / gt_subdir if gt_subdir else root)
        base = root if root.is_dir() else root.parent
        return read_coco_json(json_path, base / images_subdir if images_subdir else None)
    raise InputError(f"unknown dataset format {dataset_format!r} (expected one of {', '.join(INSTANCE_FORMATS)})")
