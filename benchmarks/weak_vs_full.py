"""Weak against full supervision: the same network trained on weak labels and on true masks.

On generated sample data: the weak labels come from the simulated annotators' consensus boxes
and the binary masks (`cgc weaklabels build`), the full labels are the true instance masks of
the same images. Both runs use the same settings and seed; both are scored on held-out images.
Prints AP / AP^r0.5 / AP^r0.7 / COCO mask AP and writes JSON.

    .venv/bin/python benchmarks/weak_vs_full.py --train-images 200 --iterations 250
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CGC = [sys.executable, "-m", "cgc.cli"]


def cgc(*args: str) -> None:
    subprocess.run(CGC + [str(arg) for arg in args], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=200)
    parser.add_argument("--test-images", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=250)
    parser.add_argument("--mask-head", default="gfr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/weak-vs-full"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/weak_vs_full.json"))
    args = parser.parse_args()

    work = args.work
    cgc("sample", "--out", work / "train", "--images", args.train_images, "--seed", args.seed)
    cgc("sample", "--out", work / "test", "--images", args.test_images, "--seed", args.seed + 1000)
    cgc("annotate", "import", "--from-export", work / "train" / "labelstudio_export.json", "--out", work / "boxes.json")
    cgc("weaklabels", "build", "--images", work / "train" / "imgs", "--masks", work / "train" / "masks",
        "--boxes", work / "boxes.json", "--out", work / "weak")
    cgc("export", "coco", "--format", "ilso", "--root", work / "train", "--out", work / "full.json")
    cgc("export", "coco", "--format", "ilso", "--root", work / "test", "--out", work / "test.json")

    rows = []
    for supervision, labels in (("weak", work / "weak" / "annotations.json"), ("full", work / "full.json")):
        run = work / f"run-{supervision}"
        start = time.perf_counter()
        cgc("train", "--preset", "cpu", "--data", labels, "--images", work / "train" / "imgs", "--out", run,
            "--iterations", args.iterations, "--lr-steps", int(args.iterations * 0.75), "--mask-head", args.mask_head,
            "--seed", args.seed)
        seconds = time.perf_counter() - start
        cgc("eval", "--checkpoint", run, "--images", work / "test" / "imgs", "--data", work / "test.json",
            "--out", work / f"metrics-{supervision}.json")
        metrics = json.loads((work / f"metrics-{supervision}.json").read_text())
        rows.append({"supervision": supervision, "AP": metrics["AP"], "AP_r50": metrics["AP_r50"], "AP_r70": metrics["AP_r70"],
                     "coco_mask_AP": metrics["coco"]["AP"], "train_seconds": round(seconds, 1)})

    weak, full = rows
    ratio = weak["AP"] / full["AP"] if full["AP"] else float("nan")
    print(f"{args.train_images} training / {args.test_images} held-out sample images, cpu preset, {args.mask_head}, "
          f"{args.iterations} iterations, seed {args.seed}")
    print(f"{'supervision':<12}{'AP':>8}{'AP^r0.5':>9}{'AP^r0.7':>9}{'COCO AP':>9}{'train s':>9}")
    for row in rows:
        print(f"{row['supervision']:<12}{row['AP']:>8.2f}{row['AP_r50']:>9.2f}{row['AP_r70']:>9.2f}"
              f"{row['coco_mask_AP']:>9.2f}{row['train_seconds']:>9.0f}")
    print(f"weak / full AP: {ratio:.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                    "weak_over_full_AP": round(ratio, 4)}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
