"""The one record type every instance-dataset reader yields, and the lazy dataset holding them.

Readers list and pair files up front (cheap, and it tells the caller how many images to expect
and which files lack a partner) but read label maps only while iterating, so a dataset of
thousands of images never holds all its masks in memory at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cgc.datasets.files import IMAGE_SUFFIXES, MASK_SUFFIXES, files_by_stem
from cgc.datasets.pictures import image_size
from cgc.datasets.label_maps import read_instance_label_map
from cgc.errors import InputError


@dataclass
class InstanceImage:
    """One image with its ground-truth salient instances (boolean HxW masks)."""

    file_name: str
    image_path: Path | None
    height: int
    width: int
    masks: list[np.ndarray]


@dataclass
class InstanceDataset:
    """A sized, lazily loaded sequence of InstanceImage plus the warnings met while reading.

    `warnings` grows during iteration too (readers may notice problems only when they load a
    file), so read it after iterating.
    """

    description: str
    loaders: list[Callable[[], InstanceImage]]
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.loaders)

    def __iter__(self) -> Iterator[InstanceImage]:
        for load in self.loaders:
            yield load()


def load_label_map_image(file_name: str, image_path: Path | None, map_path: Path) -> InstanceImage:
    """Read one label map and check it has the same size as its image (header only)."""
    masks, (height, width) = read_instance_label_map(map_path)
    if image_path is not None:
        image_width, image_height = image_size(image_path)
        if (image_width, image_height) != (width, height):
            raise InputError(
                f"image is {image_width}x{image_height} but its instance map {map_path} is {width}x{height}",
                image_path,
            )
    return InstanceImage(file_name, image_path, height, width, masks)


def empty_image(file_name: str, image_path: Path) -> InstanceImage:
    """An image with no salient instance, sized from its header."""
    width, height = image_size(image_path)
    return InstanceImage(file_name, image_path, height, width, [])


def label_map_dataset(
    images_dir: Path, maps_dir: Path, description: str, image_without_map_is_empty: bool = False
) -> InstanceDataset:
    """Pair `images_dir/<stem>.<img>` with `maps_dir/<stem>.png` into a lazy InstanceDataset.

    A map without an image is skipped with a warning. An image without a map is skipped with a
    warning too, unless `image_without_map_is_empty` (SOC ships no map for its images without
    a salient object): then it is kept with no instances, still with a warning, since a
    genuinely missing map looks the same.
    """
    images = files_by_stem(images_dir, IMAGE_SUFFIXES)
    maps = files_by_stem(maps_dir, MASK_SUFFIXES)
    if not images:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found", images_dir)
    dataset = InstanceDataset(description, [])
    for stem in sorted(set(images) | set(maps)):
        image_path, map_path = images.get(stem), maps.get(stem)
        if image_path is None:
            dataset.warnings.append(f"{map_path}: instance map has no image in {images_dir}; skipped")
        elif map_path is not None:
            dataset.loaders.append(functools.partial(load_label_map_image, image_path.name, image_path, map_path))
        elif image_without_map_is_empty:
            dataset.warnings.append(f"{image_path}: no instance map; exported as an image with no salient object")
            dataset.loaders.append(functools.partial(empty_image, image_path.name, image_path))
        else:
            dataset.warnings.append(f"{image_path}: no instance map in {maps_dir}; skipped")
    return dataset
