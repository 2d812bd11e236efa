"""ILSO / Dataset1K: `imgs/<id>.jpg` with instance label maps `gt/<id>.png`.

The maps are indexed (palette or grayscale: 0 background, 1..K instances, 255 ignore) or, in
some copies, one RGB colour per instance; `cgc.datasets.label_maps` reads both.
"""

from __future__ import annotations

from pathlib import Path

from cgc.datasets.files import require_dir
from cgc.datasets.instances import InstanceDataset, label_map_dataset

ILSO_IMAGES_SUBDIR = "imgs"
ILSO_GT_SUBDIR = "gt"


def read_ilso(root: str | Path, images_subdir: str = ILSO_IMAGES_SUBDIR, gt_subdir: str = ILSO_GT_SUBDIR) -> InstanceDataset:
    """Open an ILSO-style dataset as a lazy InstanceDataset in sorted file order.

    Images without a map and maps without an image are skipped and reported in `warnings`.
    """
    root = require_dir(root, "ILSO dataset root")
    images_dir = require_dir(root / images_subdir, "image folder")
    maps_dir = require_dir(root / gt_subdir, "instance map folder")
    return label_map_dataset(images_dir, maps_dir, f"ILSO instances from {root}")
