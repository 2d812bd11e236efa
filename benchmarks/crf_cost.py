"""Cost and answer of the dense CRF per instance: whole image vs windows around the instance.

Soft predictions are made from the sample scenes' true masks (eroded, dilated or left as they
are, then blurred), refined with the paper's CRF (w1=4, w2=3, theta 70/13/1, 10 iterations)
three ways -- on the whole image, on the map's support box enlarged by a margin, and on the
label's box enlarged by a margin (what a label update does) -- one process, one instance at a
time. Each map is also tried "diffuse", with a floor far from the instance as early in training,
where the support window grows to most of the image. Prints a table and writes JSON.

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
from cgc.refine.crf import CRFParams, WindowSettings, refine_instance
from cgc.sample import generate_scene
from cgc.refine.instance_update import label_window_core


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


def diffuse(soft: np.ndarray, floor: float) -> np.ndarray:
    """An early-training map: the same shape over a floor, so that far more than the instance is above 0.05."""
    return floor + (1.0 - 2.0 * floor) * soft


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


def timed(function, *args, **kwargs) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


WINDOWS = ("support", "label_box")  # the window's core: the map's support (> 0.05), or the label's box (label updates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--height", type=int, default=300)
    parser.add_argument("--width", type=int, default=400)
    parser.add_argument("--floor", type=float, default=0.1, help="the diffuse maps' probability far from the instance")
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
            for kind, prediction in (("sharp", soft), ("diffuse", diffuse(soft, args.floor))):
                whole, whole_seconds = timed(refine_instance, prediction, rgb, params, windowed=False)
                row = {"map": kind, "instance_pixels": int(truth.sum()), "whole_seconds": whole_seconds,
                       "iou_truth_before": iou(prediction >= 0.5, truth), "iou_truth_whole": iou(whole >= 0.5, truth)}
                for name in WINDOWS:
                    box = label_window_core(truth) if name == "label_box" else None
                    refined, seconds = timed(refine_instance, prediction, rgb, params, box=box, window=window)
                    row |= {f"{name}_seconds": seconds, f"iou_whole_{name}": iou(whole >= 0.5, refined >= 0.5),
                            f"iou_truth_{name}": iou(refined >= 0.5, truth)}
                rows.append(row)

    summary = {}
    print(f"{len(rows) // 2} instances in {args.scenes} scenes of {args.width}x{args.height}, one process; "
          f"diffuse maps have a floor of {args.floor}")
    print(f"{'map':<9}{'CRF':<11}{'s/instance':>11}{'p90 s':>8}{'IoU to whole CRF':>18}{'min':>7}{'IoU to truth':>14}")
    for kind in ("sharp", "diffuse"):
        column = {key: np.array([row[key] for row in rows if row["map"] == kind]) for key in rows[0] if key != "map"}
        part = {"instances": len(column["whole_seconds"]), "iou_truth_before_mean": float(column["iou_truth_before"].mean())}
        for name in ("whole", *WINDOWS):
            seconds = column[f"{name}_seconds"]
            agreement = column[f"iou_whole_{name}"] if name != "whole" else np.ones_like(seconds)
            part[name] = {"seconds_median": float(np.median(seconds)), "seconds_p90": float(np.percentile(seconds, 90)),
                          "iou_whole_mean": float(agreement.mean()), "iou_whole_min": float(agreement.min()),
                          "share_iou_whole_above_0.95": float((agreement > 0.95).mean()),
                          "iou_truth_mean": float(column[f"iou_truth_{name}"].mean())}
            print(f"{kind:<9}{name:<11}{part[name]['seconds_median']:>11.3f}{part[name]['seconds_p90']:>8.3f}"
                  f"{part[name]['iou_whole_mean']:>18.4f}{part[name]['iou_whole_min']:>7.3f}{part[name]['iou_truth_mean']:>14.4f}")
        summary[kind] = part
    atomic_write_json(args.out, {
        "summary": summary, "params": asdict(params), "window": asdict(window), "scenes": args.scenes, "seed": args.seed,
        "size": [args.height, args.width], "floor": args.floor,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "instances": rows,
    }, indent=1)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
