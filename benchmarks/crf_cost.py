"""Cost and answer of the dense CRF per instance: whole image vs the instance's enlarged box.

Soft predictions are made from the sample scenes' true masks (eroded, dilated or left as they
are, then blurred), refined with the paper's CRF (w1=4, w2=3, theta 70/13/1, 10 iterations)
both ways, one process, one instance at a time. Prints a table and writes JSON.

    .venv/bin/python benchmarks/crf_cost.py --scenes 30
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from cgc.fileio import atomic_write_json
from cgc.model.crf import CRFParams, WindowSettings, refine_instance
from cgc.sample import generate_scene


def soft_prediction(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A plausible network output: the truth shrunk, grown or kept (2-6 px), blurred (sigma 2-6 px)."""
    radius = int(rng.integers(2, 7))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    shape = mask.astype(np.uint8)
    kind = int(rng.integers(0, 3))
    if kind == 0:
        shape = cv2.erode(shape, kernel)
    elif kind == 1:
        shape = cv2.dilate(shape, kernel)
    return cv2.GaussianBlur(shape.astype(np.float32), (0, 0), float(rng.uniform(2, 6)))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def timed(function, *args, **kwargs) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--height", type=int, default=300)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--min-margin", type=int, default=WindowSettings.min_margin)
    parser.add_argument("--margin-fraction", type=float, default=WindowSettings.margin_fraction)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/crf_cost.json"))
    args = parser.parse_args()
    cv2.setNumThreads(1)

    params = CRFParams()
    window = WindowSettings(min_margin=args.min_margin, margin_fraction=args.margin_fraction)
    rows = []
    for index in range(args.scenes):
        scene = generate_scene(np.random.SeedSequence([args.seed, index]), height=args.height, width=args.width)
        rgb = np.ascontiguousarray(scene.image[..., ::-1])
        rng = np.random.default_rng(np.random.SeedSequence([args.seed, index, 2]))
        for truth in scene.instances:
            soft = soft_prediction(truth, rng)
            whole, whole_seconds = timed(refine_instance, soft, rgb, params, windowed=False)
            windowed, windowed_seconds = timed(refine_instance, soft, rgb, params, window=window)
            rows.append({"whole_seconds": whole_seconds, "windowed_seconds": windowed_seconds,
                         "iou_whole_windowed": iou(whole >= 0.5, windowed >= 0.5),
                         "iou_truth_before": iou(soft >= 0.5, truth), "iou_truth_whole": iou(whole >= 0.5, truth),
                         "iou_truth_windowed": iou(windowed >= 0.5, truth), "instance_pixels": int(truth.sum())})

    column = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    summary = {
        "instances": len(rows),
        "whole_seconds_median": float(np.median(column["whole_seconds"])),
        "windowed_seconds_median": float(np.median(column["windowed_seconds"])),
        "windowed_seconds_p90": float(np.percentile(column["windowed_seconds"], 90)),
        "iou_whole_windowed_mean": float(column["iou_whole_windowed"].mean()),
        "iou_whole_windowed_min": float(column["iou_whole_windowed"].min()),
        "share_iou_whole_windowed_above_0.95": float((column["iou_whole_windowed"] > 0.95).mean()),
        "iou_truth_before_mean": float(column["iou_truth_before"].mean()),
        "iou_truth_whole_mean": float(column["iou_truth_whole"].mean()),
        "iou_truth_windowed_mean": float(column["iou_truth_windowed"].mean()),
    }
    print(f"{len(rows)} instances in {args.scenes} scenes of {args.width}x{args.height}, one process")
    print(f"{'CRF':<10} {'s/instance (median)':>20} {'IoU to truth before':>20} {'after':>8}")
    print(f"{'whole':<10} {summary['whole_seconds_median']:>20.3f} {summary['iou_truth_before_mean']:>20.4f} "
          f"{summary['iou_truth_whole_mean']:>8.4f}")
    print(f"{'windowed':<10} {summary['windowed_seconds_median']:>20.3f} {summary['iou_truth_before_mean']:>20.4f} "
          f"{summary['iou_truth_windowed_mean']:>8.4f}")
    print(f"IoU(whole, windowed) at 0.5: mean {summary['iou_whole_windowed_mean']:.4f}, "
          f"min {summary['iou_whole_windowed_min']:.4f}, above 0.95 for "
          f"{summary['share_iou_whole_windowed_above_0.95']:.0%} of instances; speed-up {summary['whole_seconds_median'] / summary['windowed_seconds_median']:.1f}x")
    atomic_write_json(args.out, {
        "summary": summary, "params": asdict(params), "window": asdict(window), "scenes": args.scenes, "seed": args.seed,
        "size": [args.height, args.width], "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "instances": rows,
    }, indent=1)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
