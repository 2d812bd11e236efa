"""Throughput and quality of `cgc weaklabels build`: the priors against the naive baseline.

Generates N sample images (kept under --data for reruns), averages the simulated annotators'
boxes once, then runs the real command line for every rule on the same data (and the default rule
without the SOD masks: boxes alone) and scores each result against the true instance masks, on
all scenes and on each kind of scene (photo style: isolated, overlapping, enclosed, resting-on,
low-contrast). Prints a table and writes JSON.

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

from cgc.datasets import instances_to_coco, read_ilso
from cgc.fileio import atomic_write_json
from cgc.sample import DEFAULT_STYLE, SCENE_STYLES, write_sample_dataset
from cgc.weaklabels.priors import RULES, PriorSettings
from cgc.coco_files import read_instance_file
from cgc.weaklabels.quality import label_quality

CGC = [sys.executable, "-m", "cgc.cli"]


def run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


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

    rows = []
    runs = [(rule, rule, ["--masks", str(sample / "masks")]) for rule in RULES]
    runs.append((f"{PriorSettings.rule}, boxes only", PriorSettings.rule, []))
    for run_name, rule, masks in runs:
        out = args.data / f"weaklabels-{tag}-{run_name.replace(', ', '-').replace(' ', '-')}"
        seconds = run(CGC + ["weaklabels", "build", "--images", str(sample / "imgs"), *masks, "--boxes", str(boxes),
                             "--out", str(out), "--rule", rule, "--workers", str(args.workers), "--overwrite"])
        labels = out / "annotations.json"
        weak = read_instance_file(labels, "weak-label file").masks_by_file_name()
        quality = label_quality(weak, truth_rles, labels, truth)
        by_kind = {kind: label_quality(weak, {name: truth_rles[name] for name in names}, labels, truth).mean_iou
                   for kind, names in sorted(kinds.items())}
        rows.append({"rule": run_name, "seconds": round(seconds, 2), "images_per_second": round(args.images / seconds, 1),
                     "mean_iou": quality.mean_iou, "instances": quality.true_instances, "mean_iou_by_kind": by_kind})

    print(f"{args.images} {args.style} images of 400x300, {args.workers} workers, wall time of the whole "
          f"`cgc weaklabels build` command; mean IoU per kind of scene ({', '.join(f'{k} {len(v)}' for k, v in sorted(kinds.items()))})")
    print(f"{'rule':<28}{'seconds':>9}{'images/s':>10}{'mean IoU':>10}" + "".join(f"{kind:>14}" for kind in sorted(kinds)))
    for row in rows:
        print(f"{row['rule']:<28}{row['seconds']:>9.2f}{row['images_per_second']:>10.1f}{row['mean_iou']:>10.4f}"
              + "".join(f"{row['mean_iou_by_kind'][kind]:>14.4f}" for kind in sorted(kinds)))
    result = {"images": args.images, "seed": args.seed, "style": args.style, "workers": args.workers,
              "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(), "scenes_per_kind":
              {kind: len(names) for kind, names in sorted(kinds.items())}, "rows": rows}
    atomic_write_json(args.out, result, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
