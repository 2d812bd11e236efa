"""A weak-label case from fully labelled pictures: what an SOD dataset and annotators would give, to score rules on.

A user with a small fully labelled subset of their own pictures can ask which rule and settings suit
them: `write_weak_label_case` turns COCO instance annotations into the two inputs of `cgc weaklabels
build`, made the way real ones are made, and `cgc weaklabels compare` scores what a rule builds from
them against the annotations.

- The salient-region mask is the union of the true instances: an SOD dataset's binary mask marks
  every salient pixel and says nothing of instances. With `defects`, it is degraded as real SOD
  masks are (edges eroded or dilated by a few pixels, holes, a salient object missed), so that a
  rule can be judged on the masks it will really get.
- The boxes are simulated annotators' (`cgc.sample.annotators`: each with a habit of drawing loose
  or tight, per-box jitter, missed instances, spurious boxes), written as a Label Studio export and
  averaged into consensus boxes by `cgc annotate import`, as the user's own boxes will be.

Everything is drawn from one seed per picture (the seed and the file name), so a case is the same
on every run and does not change when pictures are added.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from cgc.annotate.boxes_dataset import ImportOptions, import_labelstudio_boxes
from cgc.coco import decode_mask
from cgc.coco_files import read_instance_file
from cgc.datasets.files import picture_in_folder
from cgc.datasets.pictures import image_size
from cgc.errors import InputError
from cgc.fileio import atomic_directory, refuse_outputs_over_inputs
from cgc.sample.annotators import AnnotatorHabits, label_studio_task

CASE_KIND = "weak-label case"
EXPORT_FILE = "labelstudio_export.json"
BOXES_FILE = "boxes.json"


@dataclass(frozen=True)
class MaskDefects:
    """How a salient-region mask is degraded, per picture, as SOD datasets' masks differ from the truth."""

    edge_shift: int = 3  # edges moved by up to this many pixels, in or out (one draw per picture)
    holes: int = 2  # up to this many holes inside the mask
    hole_fraction: float = 0.03  # each hole's radius, as a fraction of the mask's larger side
    miss_rate: float = 0.2  # chance that one salient object (of a picture with several) is left out of the mask

    def apply(self, instances: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """The union of `instances`, degraded."""
        height, width = instances[0].shape
        kept = list(instances)
        if len(kept) > 1 and rng.random() < self.miss_rate:
            kept.pop(int(rng.integers(len(kept))))
        mask = np.any(kept, axis=0).astype(np.uint8)
        shift = int(rng.integers(-self.edge_shift, self.edge_shift + 1)) if self.edge_shift else 0
        if shift:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(shift) + 1, 2 * abs(shift) + 1))
            mask = cv2.dilate(mask, kernel) if shift > 0 else cv2.erode(mask, kernel)
        ys, xs = np.nonzero(mask)
        for _ in range(int(rng.integers(0, self.holes + 1)) if len(xs) else 0):
            centre = int(rng.integers(len(xs)))
            radius = max(1, int(round(self.hole_fraction * max(height, width))))
            cv2.circle(mask, (int(xs[centre]), int(ys[centre])), radius, 0, -1)
        return mask.astype(bool)


@dataclass(frozen=True)
class CaseSummary:
    pictures: int
    instances: int
    boxes: int
    skipped: list[str]


def picture_seed(seed: int, file_name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{file_name}".encode()).digest()[:8], "little")


def write_weak_label_case(truth_path: str | Path, images_dir: str | Path, out: str | Path, seed: int = 0,
                          defects: MaskDefects | None = None, habits: AnnotatorHabits = AnnotatorHabits(),
                          overwrite: bool = False, progress: bool = True) -> CaseSummary:
    """Write OUT/masks/NAME.png (the salient-region masks), OUT/labelstudio_export.json (the simulated annotators)
    and OUT/boxes.json with its report (their consensus), for the pictures of `truth_path` found in `images_dir`."""
    images_dir, out = Path(images_dir), Path(out)
    refuse_outputs_over_inputs({"--out": out}, {"--truth": truth_path, "--images": images_dir})
    truth = read_instance_file(truth_path, "ground-truth file")
    by_image = truth.annotations_by_image()
    tasks, skipped, instances = [], [], 0
    with atomic_directory(out, CASE_KIND, overwrite) as folder:
        (folder / "masks").mkdir()
        for image in tqdm(truth.images, desc="case", unit="img", disable=None if progress else True):
            name, height, width = image["file_name"], int(image["height"]), int(image["width"])
            picture = picture_in_folder(images_dir, name, truth_path)
            try:
                shown = image_size(picture)
            except InputError as exc:
                skipped.append(str(exc))
                continue
            if shown != (width, height):
                skipped.append(f"{picture}: the picture is {shown[0]}x{shown[1]}, the annotations say {width}x{height}")
                continue
            masks = [decode_mask(item["segmentation"], height, width) for item in by_image[image["id"]]]
            masks = [mask for mask in masks if mask.any()]
            rng = np.random.default_rng(picture_seed(seed, name))
            union = np.zeros((height, width), bool) if not masks else (
                defects.apply(masks, rng) if defects is not None else np.any(masks, axis=0))
            if not cv2.imwrite(str(folder / "masks" / f"{Path(name).stem}.png"), union.astype(np.uint8) * 255):
                raise InputError("cannot write the mask here (read-only or full disk?)", folder / "masks")
            biases = rng.normal(0, habits.bias, habits.annotators)
            if masks:
                tasks.append(label_studio_task(rng, len(tasks) + 1, Path(name).name, masks, habits, biases))
            else:  # nothing salient: every annotator submits no box
                tasks.append(empty_task(len(tasks) + 1, Path(name).name, habits.annotators))
            instances += len(masks)
        if not tasks:
            raise InputError(f"none of the {len(truth.images)} pictures could be used (first: "
                             f"{skipped[0] if skipped else 'none listed'})", truth_path)
        (folder / EXPORT_FILE).write_text(json.dumps(tasks), encoding="utf-8")
        report = import_labelstudio_boxes(folder / EXPORT_FILE, folder / BOXES_FILE, None,
                                          ImportOptions(image_dir=images_dir))
    return CaseSummary(len(tasks), instances, int(report["counts"]["consensus_boxes_kept"]), skipped)


def empty_task(task_id: int, file_name: str, annotators: int) -> dict:
    """A Label Studio export task in which every annotator found nothing to box."""
    task = label_studio_task(np.random.default_rng(0), task_id, file_name, [], AnnotatorHabits(annotators, extra_box_rate=0,
                                                                                               cancel_rate=0), np.zeros(annotators))
    return task
