"""Throughput and quality of `cgc weaklabels build`: the priors against the naive baseline.

Generates N sample images (kept under --data for reruns), averages the simulated annotators'
boxes once, then runs the real command line for every rule on the same data (and the default rule
without the SOD masks: boxes alone) and scores each result against the true instance masks, on
all scenes, on each kind of scene (photo style: isolated, overlapping, enclosed, resting-on,
low-contrast), and on the true instances whose consensus box overlaps another box against the rest
(`resolve-shared` and `appearance` differ only where two boxes hold a pixel). Prints a table and writes JSON.

The last row is a ceiling, not a rule: each true instance cut to the SOD mask and to its consensus
box, what a rule would give that assigned every shared pixel right and knew which salient pixels
are the mask's mistakes. The gap between a rule and the ceiling is what a better rule could gain.

    .venv/bin/python benchmarks/weaklabels.py --images 2000 --style flat --out benchmarks/results/weaklabels-flat.json
    .venv/bin/python benchmarks/weaklabels.py --images 2000 --out benchmarks/results/weaklabels-photo.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cgc.datasets import instances_to_coco, read_ilso
from cgc.fileio import atomic_write_json
from cgc.sample import DEFAULT_STYLE, SCENE_STYLES, write_sample_dataset
from cgc.weaklabels.priors import PriorSettings
from cgc.weaklabels.rules import RULES
from cgc.coco_files import read_instance_file
from cgc.weaklabels.quality import box_pairs, ceiling_labels, overlapping, paired_ious

CGC = [sys.executable, "-m", "cgc.cli"]
BOX_GROUPS = {"box overlaps another": True, "box apart": False}  # the true instances, by their consensus box


def run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def cell(value: float | None, width: int) -> str:
    """A mean IoU in the table; - where a group has no instance."""
    return f"{'-' if value is None else f'{value:.4f}':>{width}}"


def scored(labels: dict[str, list[dict]], truth_rles: dict[str, list[dict]], kinds: dict[str, list[str]],
           labels_path: str | Path, truth: Path, crowded: dict[str, np.ndarray]) -> dict:
    """Mean IoU of labels to the truth, over every scene, over each kind of scene, and over the true instances
    whose consensus box overlaps another box (`crowded`) and the rest: the rules differ only on the former. As in
    `label_quality`, only the pictures the labels list are scored; each is paired with its truth once."""
    ious = paired_ious(labels, truth_rles, labels_path, truth)

    def mean_iou(per_picture: list[np.ndarray]) -> float | None:
        scores = np.concatenate(per_picture) if per_picture else np.zeros(0)
        return round(float(scores.mean()), 4) if scores.size else None

    by_kind = {kind: mean_iou([ious[name] for name in names if name in ious]) for kind, names in sorted(kinds.items())}
    by_boxes = {group: mean_iou([scores[crowded[name] == wanted] for name, scores in ious.items()])
                for group, wanted in BOX_GROUPS.items()}
    return {"mean_iou": mean_iou(list(ious.values())), "instances": sum(len(scores) for scores in ious.values()),
            "mean_iou_by_kind": by_kind, "mean_iou_by_boxes": by_boxes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", choices=sorted(SCENE_STYLES), default=DEFAULT_STYLE)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--data", type=Path, default=Path("benchmarks/results/weaklabels-data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/weaklabels.json"))
    args = parser.parse_args()

    tag = f"{args.style}-{args.images}-{args.seed}"
    sample = args.data / f"sample-{tag}"
    if not (sample / "labelstudio_export.json").exists():
        write_sample_dataset(sample, args.images, seed=args.seed, workers=args.workers, style=args.style, overwrite=True)
    kinds: dict[str, list[str]] = {}
    for scene in json.loads((sample / "scenes.json").read_text()):
        kinds.setdefault(scene["kind"], []).append(scene["file_name"])
    boxes = args.data / f"boxes-{tag}.json"
    run(CGC + ["annotate", "import", "--from-export", str(sample / "labelstudio_export.json"), "--out", str(boxes)])
    truth = args.data / f"truth-{tag}.json"
    atomic_write_json(truth, instances_to_coco(read_ilso(sample), "sample truth"))
    truth_rles = read_instance_file(truth, "ground-truth file").masks_by_file_name()  # read once for every rule and kind

    pairs = box_pairs(boxes, truth_rles)
    crowded = {name: overlapping(pairs[name], len(rles)) for name, rles in truth_rles.items()}
    ceiling = ceiling_labels(pairs, truth_rles, sample / "masks")
    rows = []
    runs = [(rule, rule, ["--masks", str(sample / "masks")]) for rule in RULES]
    runs.append((f"{PriorSettings.rule}, boxes only", PriorSettings.rule, []))
    for run_name, rule, masks in runs:
        out = args.data / f"weaklabels-{tag}-{run_name.replace(', ', '-').replace(' ', '-')}"
        seconds = run(CGC + ["weaklabels", "build", "--images", str(sample / "imgs"), *masks, "--boxes", str(boxes),
                             "--out", str(out), "--rule", rule, "--workers", str(args.workers), "--overwrite"])
        labels = out / "annotations.json"
        weak = read_instance_file(labels, "weak-label file").masks_by_file_name()
        rows.append({"rule": run_name, "seconds": round(seconds, 2), "images_per_second": round(args.images / seconds, 1),
                     **scored(weak, truth_rles, kinds, labels, truth, crowded)})

    rows.append({"rule": "ceiling (truth in mask, box)", "seconds": None, "images_per_second": None,
                 **scored(ceiling, truth_rles, kinds, "ceiling", truth, crowded)})

    print(f"{args.images} {args.style} images of 400x300, {args.workers} workers, wall time of the whole "
          f"`cgc weaklabels build` command; mean IoU per kind of scene ({', '.join(f'{k} {len(v)}' for k, v in sorted(kinds.items()))})")
    print(f"{'rule':<28}{'seconds':>9}{'images/s':>10}{'mean IoU':>10}" + "".join(f"{kind:>14}" for kind in sorted(kinds))
          + "".join(f"{group:>22}" for group in BOX_GROUPS))
    for row in rows:
        timing = (f"{row['seconds']:>9.2f}{row['images_per_second']:>10.1f}" if row["seconds"] is not None
                  else f"{'-':>9}{'-':>10}")
        print(f"{row['rule']:<28}{timing}{row['mean_iou']:>10.4f}"
              + "".join(cell(row["mean_iou_by_kind"][kind], 14) for kind in sorted(kinds))
              + "".join(cell(value, 22) for value in row["mean_iou_by_boxes"].values()))
    result = {"images": args.images, "seed": args.seed, "style": args.style, "workers": args.workers,
              "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(), "scenes_per_kind":
              {kind: len(names) for kind, names in sorted(kinds.items())}, "rows": rows}
    atomic_write_json(args.out, result, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
