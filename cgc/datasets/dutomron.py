"""DUT-OMRON: images with binary salient-region masks (not instances).

Layout: `<root>/DUT-OMRON-image/*.jpg` and `<root>/pixelwiseGT-new-PNG/*.png`, same stem.
The same reader serves any "image folder + binary mask folder" dataset (DUTS, ECSSD, SOC's
`gt/`) through explicit `image_dir` / `mask_dir`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cgc.datasets.files import IMAGE_SUFFIXES, MASK_SUFFIXES, files_by_stem, require_dir
from cgc.errors import InputError

DUTOMRON_IMAGE_SUBDIR = "DUT-OMRON-image"
DUTOMRON_MASK_SUBDIR = "pixelwiseGT-new-PNG"


@dataclass(frozen=True)
class SalientRegionRecord:
    """An image and its binary salient-region mask (None when the dataset has no mask for it)."""

    name: str
    image_path: Path
    mask_path: Path | None


def read_dutomron(
    root: str | Path | None = None,
    image_dir: str | Path | None = None,
    mask_dir: str | Path | None = None,
) -> list[SalientRegionRecord]:
    """Pair images with binary masks by file stem, sorted by name.

    Give `root` (the default DUT-OMRON subfolder names are used beneath it) or explicit
    `image_dir` and `mask_dir` (either overrides the default under `root`). Images without a
    mask get `mask_path=None` so the caller decides whether that matters; masks without an
    image are of no use and are left out.
    """
    if root is None and (image_dir is None or mask_dir is None):
        raise InputError("give a dataset root, or both an image folder and a mask folder")
    images = require_dir(image_dir if image_dir is not None else Path(root) / DUTOMRON_IMAGE_SUBDIR, "image folder")
    masks_dir = require_dir(mask_dir if mask_dir is not None else Path(root) / DUTOMRON_MASK_SUBDIR, "mask folder")
    image_files = files_by_stem(images, IMAGE_SUFFIXES)
    if not image_files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found", images)
    mask_files = files_by_stem(masks_dir, MASK_SUFFIXES)
    return [SalientRegionRecord(stem, image_files[stem], mask_files.get(stem)) for stem in sorted(image_files)]
