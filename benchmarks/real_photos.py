"""A trained model on real photographs that `cgc sample` never uses: what a new user sees on a photo of their own.

scikit-image's wheel bundles a few photographs besides those the sample scenes are cut from
(`cgc.sample.photo`): a motorcycle in a garage, 24 coins on a dark table, a motion-blurred clock.
They have no instance masks, so this counts what the model predicts on each, at its calibrated
score threshold and at 0.5, beside the number of objects a viewer counts, and writes each
photo's overlays (NAME.jpg at the calibrated threshold, NAME-0.5.jpg) to --pictures for a look;
--figure puts them side by side in one picture (the calibrated threshold above, 0.5 below).
Prints a table and writes JSON.

    .venv/bin/python benchmarks/real_photos.py --checkpoint demo-output/run --figure docs/images/real-photos.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import cgc
from cgc.datasets.pictures import write_picture
from cgc.fileio import atomic_write_json
from cgc.inference import detect_batch, overlay_prediction
from cgc.sample.photo import TEXTURE_BACKGROUNDS, TEXTURE_PHOTOS, ZOOMED_BACKGROUNDS

PHOTOS = {"stereo_motorcycle": 1, "coins": 24, "clock": 1}  # skimage.data loader -> objects a viewer counts
assert not set(PHOTOS) & set(TEXTURE_PHOTOS + TEXTURE_BACKGROUNDS + ZOOMED_BACKGROUNDS), "a photo the scenes use"
LOW_THRESHOLD = 0.5
FIGURE_HEIGHT = 300  # pixels per row of --figure


def real_photo(name: str) -> np.ndarray:
    """The photograph as RGB uint8 (grey ones as three equal channels; of the stereo pair, the left view)."""
    import skimage.data

    picture = getattr(skimage.data, name)()
    picture = picture[0] if isinstance(picture, tuple) else picture
    return np.repeat(picture[..., None], 3, axis=2) if picture.ndim == 2 else np.ascontiguousarray(picture[..., :3])


def side_by_side(rows: list[list[np.ndarray]]) -> np.ndarray:
    """Rows of RGB pictures, each scaled to FIGURE_HEIGHT pixels high, one above the other (padded black)."""
    import cv2

    lines = [np.hstack([cv2.resize(picture, (round(picture.shape[1] * FIGURE_HEIGHT / picture.shape[0]), FIGURE_HEIGHT),
                                   interpolation=cv2.INTER_AREA) for picture in row]) for row in rows]
    width = max(line.shape[1] for line in lines)
    return np.vstack([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("demo-output/run"), help="a checkpoint or run folder")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--pictures", type=Path, default=Path("benchmarks/results/real-photos"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/real_photos.json"))
    parser.add_argument("--figure", type=Path, default=None, help="every overlay in one JPEG, rows of FIGURE_HEIGHT")
    args = parser.parse_args()

    model = cgc.load_model(args.checkpoint, device=args.device)
    args.pictures.mkdir(parents=True, exist_ok=True)
    rows, overlays = [], {"": [], f"-{LOW_THRESHOLD}": []}
    for name, objects in PHOTOS.items():
        rgb = real_photo(name)
        detections = detect_batch(model.loaded.model, [rgb], model.loaded.device)[0]  # one pass, every threshold
        found, loose = detections.instances(model.score_threshold), detections.instances(LOW_THRESHOLD)
        for suffix, prediction in (("", found), (f"-{LOW_THRESHOLD}", loose)):
            overlays[suffix].append(overlay_prediction(rgb, prediction))
            write_picture(args.pictures / f"{name}{suffix}.jpg", overlays[suffix][-1], jpeg_quality=90)
        rows.append({"photo": name, "size": f"{rgb.shape[1]}x{rgb.shape[0]}", "objects": objects,
                     "instances": len(found.scores), f"instances_at_{LOW_THRESHOLD}": len(loose.scores),
                     "best_score": round(float(detections.scores.max()), 3) if len(detections.scores) else None})
    print(f"{args.checkpoint}, score threshold {model.score_threshold:.2f} (calibrated) and {LOW_THRESHOLD}")
    print(f"{'photo':<18}{'size':>9}{'objects':>9}{'found':>7}{'at ' + str(LOW_THRESHOLD):>8}{'best score':>12}")
    for row in rows:
        best = "-" if row["best_score"] is None else f"{row['best_score']:.3f}"
        print(f"{row['photo']:<18}{row['size']:>9}{row['objects']:>9}{row['instances']:>7}"
              f"{row[f'instances_at_{LOW_THRESHOLD}']:>8}{best:>12}")
    if args.figure is not None:
        write_picture(args.figure, side_by_side(list(overlays.values())), jpeg_quality=85)
    atomic_write_json(args.out, {"checkpoint": str(args.checkpoint), "score_threshold": model.score_threshold,
                                 "pictures": str(args.pictures), "photos": rows}, indent=1)
    print(f"wrote {args.out} and the overlays in {args.pictures}")


if __name__ == "__main__":
    main()
