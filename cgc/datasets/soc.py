"""SOC (Salient Objects in Clutter): `{TrainSet,ValSet,TestSet}/Imgs/*.jpg` per split.

Instance maps are RGB (one colour per instance) in `<split>/Instance gt/gt/*.png`; the binary
salient-region maps in `<split>/gt/` are not used here. SOC deliberately includes images with
no salient object: their instance maps are all black, or missing altogether. Such images are
kept with no instances, because an evaluation set needs them to count false positives.

Attribute lists (SOC-Attr: per-attribute subsets such as AC, BO, CL, HO, MB, OC, OV, SC, SO)
are not read yet.
"""

from __future__ import annotations

from pathlib import Path

from cgc.datasets.files import require_dir
from cgc.datasets.instances import InstanceDataset, label_map_dataset
from cgc.errors import InputError

SOC_SPLITS = ("TrainSet", "ValSet", "TestSet")
SOC_IMAGES_SUBDIR = "Imgs"
SOC_GT_SUBDIR = "Instance gt/gt"


def read_soc(
    root: str | Path,
    split: str | None = None,
    images_subdir: str = SOC_IMAGES_SUBDIR,
    gt_subdir: str = SOC_GT_SUBDIR,
) -> InstanceDataset:
    """Open one SOC split as a lazy InstanceDataset in sorted file order.

    `root` is the split folder (the one holding `Imgs/`), or the dataset root when `split`
    names the split folder beneath it. Images without an instance map are kept with no
    instances (with a warning); maps without an image are skipped (with a warning).
    """
    root = require_dir(root, "SOC dataset root")
    split_dir = require_dir(root / split, "SOC split folder") if split else root
    images_dir = split_dir / images_subdir
    if not images_dir.is_dir() and split is None:
        present = [name for name in SOC_SPLITS if (root / name).is_dir()]
        if present:
            raise InputError(f"this is a SOC root holding {', '.join(present)}: choose one with --split", root)
    require_dir(images_dir, "image folder")
    maps_dir = split_dir / gt_subdir
    if not maps_dir.is_dir():
        raise InputError(f"instance map folder not found (expected {gt_subdir!r} beside {images_subdir!r})", maps_dir)
    return label_map_dataset(
        images_dir, maps_dir, f"SOC instances from {split_dir}", image_without_map_is_empty=True
    )
