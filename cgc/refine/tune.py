"""The dense CRF over whole prediction folders: refine every predicted instance, or search its parameters.

A prediction folder is what `cgc predict` writes: `results.json` (COCO results: image_id,
segmentation RLE, score, bbox) and `images.json` ([{id, file_name, height, width}, ...]).

The search is the paper's coarse-to-fine grid (Sec. III.D): w1 in [1:1:10], theta_alpha in
[50:5:100], theta_beta in [5:1:15], w2 = 3 and theta_gamma = 1 fixed, 10 mean-field iterations,
scored on about 100 validation images. Coarse pass: every other value of each range (5 x 6 x 6 =
180 settings); fine pass: every full-resolution setting within one step of the best coarse one
(up to 27, minus those already scored). A setting's score is the mean, over the subset's
predicted instances, of the IoU between the refined mask and its best-matching true instance.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from cgc.coco import decode_mask, encode_mask, mask_bbox_xywh, mask_bbox_xyxy
from cgc.datasets.files import picture_in_folder
from cgc.datasets.pictures import read_rgb
from cgc.errors import InputError
from cgc.fileio import atomic_directory, atomic_write_json, read_json, refuse_outputs_over_inputs
from cgc.refine.crf import HARD_MASK_CONFIDENCE, CRFParams, refine_instance, soft_from_binary
from cgc.parallel import map_in_processes
from cgc.coco_files import IMAGES_FILE, PREDICTIONS_KIND, prediction_files, read_prediction_folder, write_prediction_folder

PAPER_W1 = (1.0, 1.0, 10.0)  # start, step, stop (inclusive), the paper's [1:1:10]
PAPER_THETA_ALPHA = (50.0, 5.0, 100.0)
PAPER_THETA_BETA = (5.0, 1.0, 15.0)


@dataclass
class ImageJob:
    """One picture and its predicted (and, for tuning, true) instances, as plain picklable data."""

    file_name: str
    path: str
    height: int
    width: int
    predictions: list[dict[str, Any]]
    truth: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# Reading inputs


def _picture_path(images_dir: Path, file_name: str, predictions_dir: str | Path) -> Path:
    path = picture_in_folder(images_dir, file_name, Path(predictions_dir) / IMAGES_FILE)
    if not path.is_file():
        raise InputError("image named in images.json not found", path)
    return path


def read_picture(path: str | Path, height: int, width: int) -> np.ndarray:
    """The picture as RGB uint8, checked against the size the predictions were made at."""
    picture = read_rgb(path)
    if picture.shape[:2] != (height, width):
        raise InputError(f"image is {picture.shape[0]}x{picture.shape[1]} but the predictions are for "
                         f"{height}x{width}", path)
    return picture


def refine_mask(mask: np.ndarray, rgb: np.ndarray, params: CRFParams, confidence: float = HARD_MASK_CONFIDENCE,
                windowed: bool = True) -> np.ndarray:
    """A hard predicted mask refined by the CRF (as a `confidence` soft map, windowed on its box), thresholded at 0.5."""
    if not mask.any():
        return mask.copy()
    refined = refine_instance(soft_from_binary(mask, confidence), rgb, params, box=mask_bbox_xyxy(mask), windowed=windowed)
    return refined >= 0.5


# ---------------------------------------------------------------------------------------------
# crf refine


def refine_image(job: ImageJob, params: CRFParams, confidence: float, windowed: bool) -> tuple[list[dict[str, Any]], int]:
    """Refined results entries of one image, and how many instances the CRF emptied (kept as predicted)."""
    rgb = read_picture(job.path, job.height, job.width)
    out, emptied = [], 0
    for result in job.predictions:
        mask = decode_mask(result["segmentation"], job.height, job.width)
        refined = refine_mask(mask, rgb, params, confidence, windowed)
        if not refined.any() and mask.any():
            refined, emptied = mask, emptied + 1
        out.append({**result, "segmentation": encode_mask(refined), "bbox": mask_bbox_xywh(refined)})
    return out, emptied


@dataclass
class RefineSummary:
    images: int
    instances: int
    emptied: int  # instances the CRF would have erased entirely; their predicted mask is kept


def refine_prediction_folder(predictions_dir: str | Path, images_dir: str | Path, out_dir: str | Path,
                             params: CRFParams = CRFParams(), confidence: float = HARD_MASK_CONFIDENCE,
                             windowed: bool = True, workers: int = 1, progress: bool = True,
                             overwrite: bool = False) -> RefineSummary:
    """Write the prediction folder OUT (replaced as a whole, plus crf.json): every predicted mask refined by the
    dense CRF."""
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    if not images_dir.is_dir():
        raise InputError("image folder not found", images_dir)
    refuse_outputs_over_inputs({"--out": out_dir}, {"--images": images_dir, **prediction_files(predictions_dir)})
    with atomic_directory(out_dir, PREDICTIONS_KIND, overwrite) as folder:  # checked and writable before the work
        images, grouped = read_prediction_folder(predictions_dir)
        jobs = [ImageJob(entry["file_name"], str(_picture_path(images_dir, entry["file_name"], predictions_dir)),
                         int(entry["height"]), int(entry["width"]), grouped[entry["id"]], [])
                for entry in images if grouped[entry["id"]]]
        work = partial(refine_image, params=params, confidence=confidence, windowed=windowed)
        refined = map_in_processes(work, jobs, workers, "crf refine", progress)
        by_name = {job.file_name: results for job, (results, _emptied) in zip(jobs, refined)}
        results = [result for entry in images for result in by_name.get(entry["file_name"], [])]
        write_prediction_folder(folder, results, images)
        atomic_write_json(folder / "crf.json", {"params": asdict(params), "confidence": confidence, "windowed": windowed})
    return RefineSummary(len(images), len(results), sum(emptied for _results, emptied in refined))


# ---------------------------------------------------------------------------------------------
# crf tune


MAX_COARSE_SETTINGS = 2000  # the paper's grid has 180 in its coarse pass; each costs a CRF per instance and picture


def parse_range(text: str) -> tuple[float, float, float]:
    """'start:step:stop' (MATLAB-style, as the paper writes [1:1:10]; stop inclusive) -> a tuple; 'v' alone -> (v, 1, v)."""
    try:
        parts = [float(part) for part in text.split(":")]
    except ValueError:
        raise ValueError(f"not start:step:stop numbers: {text!r}") from None
    if len(parts) == 1:
        parts = [parts[0], 1.0, parts[0]]
    if len(parts) != 3 or not all(np.isfinite(parts)):
        raise ValueError(f"need three finite numbers start:step:stop: {text!r}")
    if parts[1] <= 0 or parts[2] < parts[0]:
        raise ValueError(f"need start:step:stop with step > 0 and stop >= start: {text!r}")
    return parts[0], parts[1], parts[2]


def range_count(spec: tuple[float, float, float]) -> int:
    start, step, stop = spec
    return int(np.floor((stop - start) / step + 1e-9)) + 1


def range_values(spec: tuple[float, float, float]) -> list[float]:
    start, step, _stop = spec
    return [round(start + index * step, 6) for index in range(range_count(spec))]


def coarse_settings(ranges: Sequence[tuple[float, float, float]], coarse_stride: int) -> int:
    """How many settings the coarse pass scores (every `coarse_stride`-th value of each range)."""
    return int(np.prod([-(-range_count(spec) // coarse_stride) for spec in ranges], dtype=object))


@dataclass
class TuneResult:
    best: dict[str, Any]  # the best setting's CRFParams fields plus mean_iou
    baseline_mean_iou: float  # the predictions without CRF
    evaluated: list[dict[str, Any]]  # every setting: CRFParams fields, mean_iou, stage
    images: int
    instances: int


TUNED_FIELDS = ("w1", "w2", "theta_alpha", "theta_beta", "theta_gamma", "iterations")


def write_tune_result(path: str | Path, result: TuneResult, **provenance: Any) -> None:
    """The JSON `cgc crf tune` writes: the result, then what it was tuned on and with."""
    atomic_write_json(path, {**asdict(result), **provenance}, indent=1)


def read_tuned_params(path: str | Path, defaults: CRFParams) -> CRFParams:
    """The best setting of a `cgc crf tune` JSON, over ``defaults`` for fields it lacks."""
    tuned = read_json(path, "CRF tuning JSON")
    best = tuned.get("best") if isinstance(tuned, dict) else None
    if not isinstance(best, dict):
        raise InputError("no 'best' setting (expected the JSON written by `cgc crf tune`)", path)
    try:
        return replace(defaults, **{key: best[key] for key in TUNED_FIELDS if key in best})
    except InputError as exc:
        raise InputError(f"its 'best' setting: {exc}", path) from None


def score_image(job: ImageJob, settings: Sequence[CRFParams], confidence: float) -> tuple[np.ndarray, float, int]:
    """Sum over the image's predicted instances of the IoU to the best true instance, per setting; plus unrefined."""
    rgb = read_picture(job.path, job.height, job.width)
    truth = [decode_mask(t["segmentation"], job.height, job.width).reshape(-1) for t in job.truth]
    truth_matrix = np.stack(truth).astype(np.float32) if truth else np.zeros((0, job.height * job.width), np.float32)
    truth_area = truth_matrix.sum(1)

    def best_iou(mask: np.ndarray) -> float:
        if not len(truth):
            return 0.0
        flat = mask.reshape(-1).astype(np.float32)
        inter = truth_matrix @ flat
        union = truth_area + flat.sum() - inter
        return float(np.max(np.where(union > 0, inter / np.maximum(union, 1), 0.0)))

    sums = np.zeros(len(settings))
    baseline = 0.0
    for prediction in job.predictions:
        mask = decode_mask(prediction["segmentation"], job.height, job.width)
        baseline += best_iou(mask)
        for index, params in enumerate(settings):
            sums[index] += best_iou(refine_mask(mask, rgb, params, confidence))
    return sums, baseline, len(job.predictions)


def _grid(w1: Sequence[float], theta_alpha: Sequence[float], theta_beta: Sequence[float], base: CRFParams) -> list[CRFParams]:
    return [replace(base, w1=a, theta_alpha=b, theta_beta=c) for a, b, c in itertools.product(w1, theta_alpha, theta_beta)]


def _neighbours(values: list[float], best: float) -> list[float]:
    index = values.index(best)
    return values[max(0, index - 1):index + 2]


def tuning_jobs(predictions_dir: str | Path, gt_path: str | Path, images_dir: str | Path, subset: int) -> list[ImageJob]:
    """The first `subset` images (by file name) that have ground truth, with their predictions and true instances."""
    from cgc.evaluation import load_ground_truth

    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise InputError("image folder not found", images_dir)
    images, grouped = read_prediction_folder(predictions_dir)
    gt = load_ground_truth(gt_path)
    gt_by_name = {image["file_name"]: image for image in gt["images"] if "file_name" in image}
    truth: dict[Any, list[dict[str, Any]]] = {image["id"]: [] for image in gt["images"]}
    for annotation in gt["annotations"]:
        truth[annotation["image_id"]].append(annotation)
    jobs = []
    for entry in sorted(images, key=lambda e: e["file_name"]):
        gt_image = gt_by_name.get(entry["file_name"])
        if gt_image is None:
            continue
        if (int(gt_image["height"]), int(gt_image["width"])) != (int(entry["height"]), int(entry["width"])):
            raise InputError(f"{entry['file_name']} is {gt_image['height']}x{gt_image['width']} in the ground truth "
                             f"but {entry['height']}x{entry['width']} in images.json", gt_path)
        jobs.append(ImageJob(entry["file_name"], str(_picture_path(images_dir, entry["file_name"], predictions_dir)),
                             int(entry["height"]), int(entry["width"]), grouped[entry["id"]], truth[gt_image["id"]]))
        if len(jobs) == subset:
            break
    if not jobs:
        raise InputError("no image of images.json has ground truth (matched by file_name)", gt_path)
    if not any(job.predictions for job in jobs):
        raise InputError("the validation images have no predicted instances", Path(predictions_dir) / "results.json")
    return jobs


def tune_crf(predictions_dir: str | Path, gt_path: str | Path, images_dir: str | Path, subset: int = 100,
             w1: tuple[float, float, float] = PAPER_W1, theta_alpha: tuple[float, float, float] = PAPER_THETA_ALPHA,
             theta_beta: tuple[float, float, float] = PAPER_THETA_BETA, base: CRFParams = CRFParams(),
             coarse_stride: int = 2, confidence: float = HARD_MASK_CONFIDENCE, workers: int = 1,
             progress: bool = True) -> TuneResult:
    """The paper's coarse-to-fine grid search for (w1, theta_alpha, theta_beta), w2/theta_gamma/iterations from `base`.

    Deterministic: the subset is the first images by file name, ties go to the earlier setting.
    """
    coarse = coarse_settings((w1, theta_alpha, theta_beta), coarse_stride)
    if coarse > MAX_COARSE_SETTINGS:
        raise InputError(f"the ranges make {coarse} settings for the coarse pass, more than {MAX_COARSE_SETTINGS}: "
                         f"narrow them, take larger steps or raise --coarse-stride")
    jobs = tuning_jobs(predictions_dir, gt_path, images_dir, subset)
    axes = [range_values(w1), range_values(theta_alpha), range_values(theta_beta)]
    scores: dict[CRFParams, tuple[float, str]] = {}
    instances, baseline = sum(len(job.predictions) for job in jobs), 0.0

    def run(settings: list[CRFParams], stage: str) -> None:
        nonlocal baseline
        settings = [s for s in settings if s not in scores]
        if not settings:
            return
        work = partial(score_image, settings=settings, confidence=confidence)
        per_image = map_in_processes(work, jobs, workers, f"crf tune {stage} ({len(settings)} settings)", progress)
        totals = np.sum([sums for sums, _base, _count in per_image], axis=0)
        baseline = sum(base_sum for _sums, base_sum, _count in per_image) / instances
        for params, total in zip(settings, totals):
            scores[params] = (float(total) / instances, stage)

    run(_grid(*(values[::coarse_stride] for values in axes), base), "coarse")
    best_coarse = max(scores, key=lambda p: scores[p][0])  # max keeps the first of equal scores
    run(_grid(_neighbours(axes[0], best_coarse.w1), _neighbours(axes[1], best_coarse.theta_alpha),
              _neighbours(axes[2], best_coarse.theta_beta), base), "fine")
    best = max(scores, key=lambda p: scores[p][0])
    evaluated = [{**asdict(p), "mean_iou": score, "stage": stage} for p, (score, stage) in scores.items()]
    return TuneResult({**asdict(best), "mean_iou": scores[best][0]}, baseline, evaluated, len(jobs), instances)
