"""Weak-label COCO files as training samples, in an order fixed by (seed, iteration).

Which images make up iteration t, and whether each is flipped, depends only on the seed and t.
So a run resumed from a checkpoint sees exactly the batches it would have seen, and DDP
processes split the same global batch without talking to each other. The same fact lets the
label update know in advance when an image is seen for the last time before a round ends
(`last_slots`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torch.utils.data import Dataset, Sampler

from cgc.coco import bbox_xyxy, decode_mask
from cgc.coco_files import CocoFile, read_instance_file
from cgc.datasets.files import IMAGE_SUFFIXES, files_by_stem, picture_in_folder, require_dir
from cgc.datasets.pictures import check_picture, read_rgb
from cgc.errors import InputError


def check_picture_size(image: dict[str, Any], path: Path, annotations: str | Path) -> None:
    """Before any model is built: the picture has the size its labels were made at (a resized copy would train on
    shifted masks)."""
    width, height = check_picture(path)
    if (image["height"], image["width"]) != (height, width):
        raise InputError(f"picture is {width}x{height} but {Path(annotations).name} labels it at "
                         f"{image['width']}x{image['height']} (width x height)", path)


@dataclass(frozen=True)
class SampleRequest:
    """One slot of a batch: which image, whether to mirror it, the slot's place in the whole run (iteration
    x batch size + position), which the label update needs to know when an image is seen last, and the colour
    change to apply (brightness, contrast and saturation factors, hue shift), if any."""

    index: int
    flip: bool
    slot: int = -1
    colour: tuple[float, float, float, float] | None = None


def jittered_colours(picture: torch.Tensor, colour: tuple[float, float, float, float]) -> torch.Tensor:
    """A (3, H, W) float picture in [0, 1] with its brightness, contrast and saturation scaled and its hue shifted,
    in that order (torchvision's ColorJitter with the factors drawn by the caller)."""
    brightness, contrast, saturation, hue = colour
    picture = TF.adjust_brightness(picture, brightness)
    picture = TF.adjust_contrast(picture, contrast)
    picture = TF.adjust_saturation(picture, saturation)
    return TF.adjust_hue(picture, hue)


class WeakLabelDataset(Dataset):
    """Images with their instance (weak) masks and boxes, as torchvision detection targets.

    `replace_annotations` swaps in a new round of labels for the same images (the label update)
    without looking at the image folder again.
    """

    def __init__(self, annotations: str | Path, images_dir: str | Path) -> None:
        labels = read_instance_file(annotations, "weak-label file")
        self.source = Path(annotations)
        images_dir = require_dir(images_dir, "image folder")
        by_image = labels.annotations_by_image()
        images = sorted(labels.images, key=lambda image: image["id"])
        files = files_by_stem(images_dir, IMAGE_SUFFIXES)
        self.records: list[tuple[dict[str, Any], Path, list[dict[str, Any]]]] = []
        missing = []
        for image in images:
            instances = by_image[image["id"]]
            if not instances:
                continue
            path = picture_in_folder(images_dir, image["file_name"], annotations)
            if not path.is_file():
                path = files.get(Path(image["file_name"]).stem)
            if path is None:
                missing.append(image["file_name"])
                continue
            self.records.append((image, path, instances))
        if missing:
            raise InputError(f"{len(missing)} labelled images are not in {images_dir} (first: {missing[0]})", annotations)
        if not self.records:
            raise InputError("no image with at least one instance", annotations)
        for image, path, instances in self.records:
            check_picture_size(image, path, annotations)

    def __len__(self) -> int:
        return len(self.records)

    def replace_annotations(self, labels: CocoFile) -> None:
        """Train on `labels` (a new round of the same file) from now on; images stay as they are.

        Every image the dataset holds must keep at least one instance, and no annotation may name
        an image it does not hold (a round changes masks, never which images are used).
        """
        by_image = {image_id: items for image_id, items in labels.annotations_by_image().items() if items}
        known = {image["id"] for image, _, _ in self.records}
        if set(by_image) != known:
            raise InputError("the new labels do not cover the same images as the dataset", labels.source)
        self.records = [(image, path, by_image[image["id"]]) for image, path, _ in self.records]
        self.source = Path(labels.source)

    def __getitem__(self, request: SampleRequest) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image, path, instances = self.records[request.index]
        picture = read_rgb(path)
        height, width = picture.shape[:2]
        masks = np.stack([decode_mask(item["segmentation"], height, width) for item in instances])
        boxes = np.array([bbox_xyxy(item["bbox"]) for item in instances], np.float32)
        if request.flip:
            picture, masks = picture[:, ::-1], masks[:, :, ::-1]
            boxes = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
        tensor = torch.from_numpy(np.ascontiguousarray(picture)).permute(2, 0, 1).float().div_(255)
        if request.colour is not None:
            tensor = jittered_colours(tensor, request.colour)
        target = {
            "boxes": torch.from_numpy(boxes),
            "labels": torch.ones(len(instances), dtype=torch.int64),
            "masks": torch.from_numpy(np.ascontiguousarray(masks, dtype=np.uint8)),
            "image_id": torch.tensor(image["id"]),
            "annotation_ids": torch.tensor([item["id"] for item in instances]),
            "slot": torch.tensor(request.slot),
            "flipped": torch.tensor(request.flip),
        }
        return tensor, target


def epoch_order(size: int, seed: int, epoch: int) -> np.ndarray:
    """The image order of one epoch: a seeded permutation of range(size)."""
    return np.random.default_rng([seed, epoch]).permutation(size)


def batch_requests(size: int, seed: int, iteration: int, batch_size: int, hflip: float,
                   colour_jitter: float = 0.0) -> list[SampleRequest]:
    """The global batch of `iteration`: consecutive slots of seeded per-epoch permutations, each with its flip and
    colour change drawn from the slot's own generator (the flip first, so a colour jitter leaves the flips as they
    were without it)."""
    requests = []
    for slot in range(iteration * batch_size, (iteration + 1) * batch_size):
        epoch, position = divmod(slot, size)
        order = epoch_order(size, seed, epoch)
        draws = np.random.default_rng([seed, epoch, position])
        flip = draws.random() < hflip
        colour = None
        if colour_jitter:
            factors = 1.0 + colour_jitter * draws.uniform(-1.0, 1.0, 3)
            colour = (*(float(value) for value in factors), float(colour_jitter / 4 * draws.uniform(-1.0, 1.0)))
        requests.append(SampleRequest(int(order[position]), bool(flip), slot, colour))
    return requests


def last_slots(size: int, seed: int, batch_size: int, start: int, stop: int) -> dict[int, int]:
    """For each image index seen in iterations [start, stop), the global batch slot of its last sighting.

    Slot s is position s % batch_size of iteration s // batch_size, as in `batch_requests`.
    """
    last: dict[int, int] = {}
    orders: dict[int, np.ndarray] = {}
    for slot in range(start * batch_size, stop * batch_size):
        epoch, position = divmod(slot, size)
        if epoch not in orders:
            orders = {epoch: epoch_order(size, seed, epoch)}
        last[int(orders[epoch][position])] = slot
    return last


class IterationBatchSampler(Sampler[list[SampleRequest]]):
    """Yields this process's share of each global batch, from `start` to `stop` iterations."""

    def __init__(self, size: int, seed: int, batch_size: int, hflip: float, start: int, stop: int, rank: int = 0,
                 world_size: int = 1, colour_jitter: float = 0.0) -> None:
        if batch_size % world_size:
            raise InputError(f"batch size {batch_size} does not split evenly over {world_size} processes")
        self.size, self.seed, self.batch_size, self.hflip = size, seed, batch_size, hflip
        self.colour_jitter = colour_jitter
        self.start, self.stop, self.rank, self.world_size = start, stop, rank, world_size

    def __iter__(self) -> Iterator[list[SampleRequest]]:
        share = self.batch_size // self.world_size
        for iteration in range(self.start, self.stop):
            batch = batch_requests(self.size, self.seed, iteration, self.batch_size, self.hflip, self.colour_jitter)
            yield batch[self.rank * share : (self.rank + 1) * share]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def collate(batch: list[tuple[torch.Tensor, dict[str, torch.Tensor]]]) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images, targets = zip(*batch)
    return list(images), list(targets)
