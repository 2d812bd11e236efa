"""The documentation's pictures of label rounds: the naive labels, then the third round of each run named.

Reads the folders `benchmarks/noisy_label_update.py --style photo` leaves (its --work), and draws the
first overlapping training scenes, one row each: the picture, then each label set, one colour per
instance, outlined (overlapping labels mix their colours).

    .venv/bin/python docs/label_rounds_picture.py --work benchmarks/results/noisy-label-update-photo
    .venv/bin/python docs/label_rounds_picture.py --runs shared-pixels shared-pixels-phi-0.15 --out ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from cgc.coco import decode_mask
from cgc.coco_files import read_instance_file
from cgc.datasets.pictures import read_bgr, write_picture
from cgc.training.label_rounds import round_paths
from cgc.visualize import overlay_instances

def labels_by_file(path: Path) -> dict[str, list[dict]]:
    return read_instance_file(path, "label file").masks_by_file_name()


def painted(picture: np.ndarray, masks: list[dict]) -> np.ndarray:
    height, width = picture.shape[:2]
    return overlay_instances(picture, [decode_mask(rle, height, width) for rle in masks], alpha=0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/noisy-label-update-photo"))
    parser.add_argument("--scenes", type=int, default=5)
    parser.add_argument("--runs", nargs="+", default=["label-rounds", "shared-pixels"],
                        help="run folders (without run-) whose third round is drawn")
    parser.add_argument("--out", type=Path, default=Path("docs/images/label-rounds.jpg"))
    args = parser.parse_args()

    sets = [labels_by_file(args.work / "naive" / "annotations.json")]
    sets += [labels_by_file(round_paths(args.work / f"run-{run}", 3)[0]) for run in args.runs]
    scenes = json.loads((args.work / "train" / "scenes.json").read_text())
    names = [scene["file_name"] for scene in scenes if scene["kind"] == "overlapping"][:args.scenes]
    if not names:
        raise SystemExit(f"{args.work / 'train' / 'scenes.json'}: no overlapping scene (photo-style scenes have them)")
    rows = []
    for name in names:
        picture = read_bgr(args.work / "train" / "imgs" / name)
        rows.append(np.hstack([picture] + [painted(picture, labels.get(name, [])) for labels in sets]))
    grid = np.vstack(rows)
    write_picture(args.out, cv2.resize(grid, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), jpeg_quality=85)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
