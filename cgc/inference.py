"""Running a trained CGCNet on pictures: loading a checkpoint, predicting, writing results."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from pycocotools import mask as mask_utils

from cgc.checkpoint import latest_checkpoint, load_checkpoint
from cgc.coco import SALIENT_CATEGORY_ID, encode_mask, rle_as_text
from cgc.coco_files import write_prediction_folder
from cgc.config import TrainConfig, config_from_values
from cgc.datasets.files import IMAGE_SUFFIXES, files_by_stem, picture_in_folder
from cgc.datasets.label_maps import write_instance_label_map
from cgc.datasets.pictures import check_picture, read_rgb, write_picture
from cgc.devices import pick_device
from cgc.errors import InputError
from cgc.model.box_masks import BoxMasks
from cgc.model.cgcnet import CGCNet
from cgc.model.factory import model_from_config
from cgc.network_settings import MASK_THRESHOLD
from cgc.visualize import overlay_instances


@dataclass
class Detections:
    """Everything the network found in one image, best score first: boxes x1, y1, x2, y2 pixels,
    scores, and each detection's mask probabilities (``BoxMasks``: held on the network's grid, never as a
    picture-sized float map per detection)."""

    boxes: np.ndarray
    scores: np.ndarray
    masks: BoxMasks

    def instances(self, score_threshold: float) -> "Prediction":
        """The detections with at least ``score_threshold``, one instance per pixel (see ``exclusive_labels``);
        a detection left without any pixel is dropped."""
        keep = np.flatnonzero(self.scores >= score_threshold)
        labels = exclusive_labels(self.masks.select(keep.tolist()))
        nonempty = np.bincount(labels.ravel(), minlength=len(keep) + 1)[1:] > 0
        renumbered = np.zeros(len(keep) + 1, LABEL_TYPE)
        renumbered[1:][nonempty] = np.arange(1, int(nonempty.sum()) + 1)
        return Prediction(self.boxes[keep][nonempty], self.scores[keep][nonempty], renumbered[labels])

    def binary_masks(self, index: Sequence[int]) -> list[dict]:
        """The binary masks (probability >= 0.5) of the detections ``index``, each on its own, as COCO RLE."""
        return self.masks.select(list(index)).rles(MASK_THRESHOLD)


LABEL_TYPE = np.uint16  # up to 65535 instances in one picture's label map


@dataclass
class Prediction:
    """One image's instances, best score first: boxes x1, y1, x2, y2 pixels, and a label map (H x W: 0 background,
    k for the k-th instance), since the instances do not overlap (what `cgc predict` writes). One picture-sized map
    for all instances: `mask(i)` or `masks` give boolean masks when asked."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray  # H x W, LABEL_TYPE

    def __len__(self) -> int:
        return len(self.scores)

    def mask(self, index: int) -> np.ndarray:
        """Instance ``index``'s boolean H x W mask (0-based, best score first)."""
        return self.labels == index + 1

    @property
    def masks(self) -> np.ndarray:
        """(N, H, W) bool, every instance's mask: N picture-sized arrays, so prefer `mask(i)` on large pictures."""
        return np.stack([self.mask(i) for i in range(len(self))]) if len(self) else \
            np.zeros((0, *self.labels.shape), bool)

    @classmethod
    def from_masks(cls, boxes: np.ndarray, scores: np.ndarray, masks: np.ndarray) -> "Prediction":
        """A prediction from non-overlapping (N, H, W) boolean masks."""
        labels = np.zeros(masks.shape[1:], LABEL_TYPE)
        for number, mask in enumerate(masks, start=1):
            labels[mask] = number
        return cls(boxes, scores, labels)


class InstanceMasks(Sequence):
    """A prediction's masks as a sequence made one mask at a time (for drawing), not all at once."""

    def __init__(self, prediction: Prediction) -> None:
        self.prediction = prediction

    def __len__(self) -> int:
        return len(self.prediction)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self.prediction.mask(index)


def exclusive_labels(masks: BoxMasks, threshold: float = MASK_THRESHOLD) -> np.ndarray:
    """(H, W) label map: each pixel goes to the instance (1-based) with the highest probability there, if that
    probability reaches ``threshold`` (else 0); ties go to the earlier (higher-scored) instance.

    One picture-sized map of the best probability so far and one of its owner, updated window by window:
    memory grows with the picture once, not once per detection."""
    height, width = masks.image_size
    best = np.zeros((height, width), np.float32)
    owner = np.zeros((height, width), LABEL_TYPE)
    for index in range(len(masks)):
        x0, y0, x1, y1 = masks.window(index)
        probabilities = masks.probabilities(index).cpu().numpy()
        region = best[y0:y1, x0:x1]
        wins = probabilities > region  # strictly: a tie stays with the earlier instance
        region[wins] = probabilities[wins]
        owner[y0:y1, x0:x1][wins] = index + 1
    owner[best < threshold] = 0
    return owner


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder (its newest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise InputError("no checkpoint in this run folder", path)
        return found
    return path


@dataclass
class LoadedModel:
    """A checkpoint's network in eval mode, its settings, its device and its calibrated score threshold."""

    model: CGCNet
    config: TrainConfig
    device: torch.device
    checkpoint: Path
    score_threshold: float | None  # recorded by `cgc calibrate`; None: never calibrated


def load_model(checkpoint: str | Path, device: str = "auto") -> LoadedModel:
    """The network of a checkpoint (file, or a run folder's newest), in eval mode, on the chosen device."""
    path = resolve_checkpoint(checkpoint)
    state = load_checkpoint(path)
    config = config_from_values(state["config"], path)
    model = model_from_config(config, load_backbone_weights=False)
    model.load_state_dict(state["model"])
    target = pick_device(device)
    recorded = state.get("score_threshold")
    threshold = float(recorded["threshold"]) if isinstance(recorded, dict) and "threshold" in recorded else None
    return LoadedModel(model.to(target).eval(), config, target, path, threshold)


def detect(model: CGCNet, rgb: np.ndarray, device: torch.device) -> Detections:
    """All the network's detections in one RGB picture (uint8 H x W x 3)."""
    return detect_batch(model, [rgb], device)[0]


@torch.inference_mode()
def detect_batch(model: CGCNet, pictures: Sequence[np.ndarray], device: torch.device) -> list[Detections]:
    """`detect` for several pictures in one forward pass (any sizes: the network batches them itself)."""
    tensors = [torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255).to(device) for rgb in pictures]
    return [Detections(output["boxes"].cpu().numpy(), output["scores"].cpu().numpy(), output["masks"].to("cpu"))
            for output in model(tensors)]


def list_images(source: str | Path) -> list[Path]:
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise InputError("image file or folder not found", source)
    found = sorted(files_by_stem(source, IMAGE_SUFFIXES).values())  # a.jpg beside a.png would share masks/a.png
    if not found:
        raise InputError("no images in this folder", source)
    return found


def usable_images(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """The pictures that can be read, and a reason for each one that cannot (checked from headers, before any
    model runs), so that one bad file among thousands is reported and the rest goes on."""
    usable, skipped = [], []
    for path in paths:
        try:
            check_picture(path)
            usable.append(path)
        except InputError as exc:
            skipped.append(str(exc))
    if not usable:
        raise InputError(skipped[0] if len(skipped) == 1 else f"none of the {len(skipped)} pictures can be read "
                         f"(first: {skipped[0]})")
    return usable, skipped


def detect_images(model: CGCNet, device: torch.device, paths: Sequence[Path], progress: bool = True,
                  skip_unreadable: Callable[[str], None] | None = None) -> Iterator[tuple[Path, np.ndarray, Detections]]:
    """Detections picture by picture. A picture whose header was fine can still fail to decode: with
    ``skip_unreadable`` it is passed the reason and the picture is left out, otherwise the InputError stops the
    loop (scoring must not lose a picture of its ground truth silently)."""
    for path in tqdm(paths, desc="predict", unit="img", disable=None if progress else True):
        try:
            rgb = read_rgb(path)
        except InputError as exc:
            if skip_unreadable is None:
                raise
            skip_unreadable(str(exc))
            continue
        yield path, rgb, detect(model, rgb, device)


def reported_score(score: float) -> float:
    """A detection's score as cgc writes it (results.json, Label Studio predictions): 5 decimals."""
    return round(float(score), 5)


def result_entry(image_id: int, rle: dict, score: float) -> dict:
    """One COCO results entry (what COCO.loadRes and `cgc eval --predictions` take) for a mask's RLE."""
    return {"image_id": image_id, "category_id": SALIENT_CATEGORY_ID, "segmentation": rle_as_text(rle),
            "bbox": [float(v) for v in mask_utils.toBbox(rle)], "score": reported_score(score)}


def coco_results(image_id: int, prediction: Prediction) -> list[dict]:
    """The COCO results entries of a prediction's instances, one picture-sized mask at a time."""
    return [result_entry(image_id, encode_mask(prediction.mask(index)), score)
            for index, score in enumerate(prediction.scores)]


def instance_map(prediction: Prediction) -> np.ndarray:
    """ILSO-style 8-bit label map: 0 background, 1..K by descending score (the masks do not overlap)."""
    if len(prediction) > 255:
        raise InputError(f"{len(prediction)} instances do not fit an 8-bit label map; raise --score-thr")
    return prediction.labels.astype(np.uint8)


def overlay_prediction(rgb: np.ndarray, prediction: Prediction) -> np.ndarray:
    return overlay_instances(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), InstanceMasks(prediction),
                             [list(box) for box in prediction.boxes])


def gt_image_paths(ground_truth: str | Path, images: list[dict], images_dir: str | Path) -> list[tuple[Any, Path]]:
    """(image id, picture) for every image a ground-truth file lists, found by file name in ``images_dir``."""
    images_dir = Path(images_dir)
    try:
        entries = [(image["id"], picture_in_folder(images_dir, image["file_name"], ground_truth)) for image in images]
    except (KeyError, TypeError) as exc:
        raise InputError(f"not a COCO file (missing {exc})", ground_truth) from None
    missing = [path for _, path in entries if not path.is_file()]
    if missing:
        raise InputError(f"{len(missing)} images of the ground truth are missing (first: {missing[0].name})", images_dir)
    return entries


def predict_for_ground_truth(loaded: LoadedModel, ground_truth: str | Path, images_dir: str | Path,
                             score_threshold: float, progress: bool = True) -> list[dict]:
    """COCO results for every image a ground-truth file lists, found by file name in `images_dir`.

    The detections at or above ``score_threshold`` are exactly what `cgc predict` writes (one
    instance per pixel); those below it follow with their own masks, so that COCO AP still sees
    the whole ranking.
    """
    from cgc.evaluation import load_ground_truth  # the one reader of ground-truth files, as `cgc calibrate` uses

    entries = gt_image_paths(ground_truth, load_ground_truth(ground_truth)["images"], images_dir)
    ids = {path: image_id for image_id, path in entries}
    results: list[dict] = []
    for path, _rgb, detections in detect_images(loaded.model, loaded.device, [path for _, path in entries], progress):
        below = np.flatnonzero(detections.scores < score_threshold)
        tail = [result_entry(ids[path], rle, score)
                for rle, score in zip(detections.binary_masks(below), detections.scores[below])]
        results += coco_results(ids[path], detections.instances(score_threshold)) + tail
    return results


@dataclass(frozen=True)
class WrittenPredictions:
    instances: int
    images: int


def write_predictions(loaded: LoadedModel, paths: Sequence[Path], folder: Path, score_threshold: float,
                      skip_unreadable: Callable[[str], None]) -> WrittenPredictions:
    """What `cgc predict` writes into a fresh prediction folder: per picture masks/NAME.png (indexed, one instance
    per pixel) and overlays/NAME.jpg, then results.json and images.json holding the same instances.

    A picture that fails to decode goes to ``skip_unreadable``; if none decodes, an InputError.
    """
    (folder / "masks").mkdir()
    (folder / "overlays").mkdir()
    results, files, skipped = [], [], []

    def skip(reason: str) -> None:
        skipped.append(reason)
        skip_unreadable(reason)

    for image_id, (path, rgb, detections) in enumerate(
            detect_images(loaded.model, loaded.device, paths, skip_unreadable=skip), start=1):
        kept = detections.instances(score_threshold)
        write_instance_label_map(folder / "masks" / f"{path.stem}.png", instance_map(kept))
        write_picture(folder / "overlays" / f"{path.stem}.jpg", overlay_prediction(rgb, kept))
        results += coco_results(image_id, kept)
        files.append({"id": image_id, "file_name": path.name, "height": rgb.shape[0], "width": rgb.shape[1]})
    if not files:
        raise InputError(f"none of the {len(skipped)} pictures could be decoded (first: {skipped[0]})")
    write_prediction_folder(folder, results, files)
    return WrittenPredictions(len(results), len(files))
