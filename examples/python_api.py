"""cgc from Python: load a trained model, predict one picture, save its overlay, score a folder.

    .venv/bin/python examples/python_api.py --checkpoint RUN --images test/imgs --truth test.json --out api-out

RUN is a `cgc train` run folder (or one checkpoint file); --truth is the pictures' true instances as
COCO JSON (e.g. from `cgc export coco`). `make demo` leaves all three in demo-output/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

import cgc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="run folder or checkpoint file")
    parser.add_argument("--images", type=Path, required=True, help="folder of pictures with ground truth")
    parser.add_argument("--truth", type=Path, required=True, help="their true instances, COCO JSON")
    parser.add_argument("--out", type=Path, required=True, help="folder for the overlay")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    model = cgc.load_model(args.checkpoint, device=args.device)
    picture = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[0]
    prediction = model.predict(picture)
    print(f"{picture.name}: {len(prediction.scores)} salient instances at score >= {model.score_threshold:.2f}")
    for box, score, mask in zip(prediction.boxes, prediction.scores, prediction.masks):
        print(f"  score {score:.2f}  box {[round(float(v)) for v in box]}  {int(mask.sum())} pixels")

    args.out.mkdir(parents=True, exist_ok=True)
    overlay = model.overlay(picture, prediction)
    cv2.imwrite(str(args.out / f"{picture.stem}-overlay.png"), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out / (picture.stem + '-overlay.png')}")

    metrics = cgc.evaluate(args.truth, checkpoint=args.checkpoint, images=args.images, device=args.device,
                           progress=False)
    boxes = metrics["boxes_as_masks"]
    print(f"{args.images}: COCO mask AP {metrics['coco']['AP']:.2f} (boxes as masks {boxes['coco']['AP']:.2f}), "
          f"AP^r0.5 {metrics['AP_r50']:.2f}, AP^r0.7 {metrics['AP_r70']:.2f}, "
          f"{metrics['at_score_threshold']['predictions_per_instance']:.2f} predictions per true instance")


if __name__ == "__main__":
    main()
