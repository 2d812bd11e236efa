"""Where a trained model loses recall: each true held-out instance, traced back through the post-processing.

Recall at the score threshold says how many instances are missed, not where. For each true
instance this follows its detections from the detector's output (after the final box NMS) to
what `cgc predict` writes, and names the first step that lost it:

- found: a written instance covers it at mask IoU >= 0.5 (recall's test, without its one-to-one pairing);
- mask too poor: a written instance's box matches it (box IoU >= 0.5), but not its mask;
- scored below the threshold: a detection matches its box, but none scores high enough;
- removed by mask suppression: only detections that the mask-level suppression dropped match its box;
- never detected: no detection matches its box at any score.

Counts per kind of sample scene too, and for the camouflaged instances (low-contrast scenes: the one textured
from the background's own photograph, often all but invisible). One model: --checkpoint, or the cpu-preset run that
`benchmarks/postprocess.py` trains in the same --work folder (reused with --reuse).

    .venv/bin/python benchmarks/recall_losses.py --reuse --style photo --work benchmarks/results/postprocess-photo
    .venv/bin/python benchmarks/recall_losses.py --reuse --style photo --work benchmarks/results/postprocess-photo \
        --mask-rescore maskness --out benchmarks/results/recall_losses_photo_maskness.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import replace

import numpy as np
import torch
from torchvision.ops import box_iou

from experiments import add_one_model_arguments, one_trained_model, save_results

from cgc.coco import bbox_xyxy, binary_mask_iou, decode_mask
from cgc.coco_files import CocoFile
from cgc.evaluation import load_ground_truth
from cgc.inference import Detections, detect_images, gt_image_paths
from cgc.model.mask_suppression import MaskSuppression
from cgc.network_settings import MASK_RESCORE_METHODS, SuppressionSpec

OUTCOMES = ("found", "mask too poor", "scored below the threshold", "removed by mask suppression", "never detected")


def outcome(truth_mask: np.ndarray, truth_box: tuple[float, ...], raw: Detections, kept: Detections,
            score_threshold: float) -> str:
    """The first step of the post-processing that lost this true instance (one of OUTCOMES)."""
    written = kept.instances(score_threshold)
    if any(binary_mask_iou(mask, truth_mask) >= 0.5 for mask in written.masks):
        return "found"

    def matching(boxes: np.ndarray) -> np.ndarray:
        if len(boxes) == 0:
            return np.zeros(0, bool)
        return box_iou(torch.as_tensor(boxes).reshape(-1, 4), torch.tensor([truth_box]))[:, 0].numpy() >= 0.5

    if matching(written.boxes).any():
        return "mask too poor"
    if matching(kept.boxes).any():
        return "scored below the threshold"
    return "removed by mask suppression" if matching(raw.boxes).any() else "never detected"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_one_model_arguments(parser, "recall_losses")
    parser.add_argument("--mask-rescore", choices=MASK_RESCORE_METHODS, default=None,
                        help="score the model with this rescoring instead of the one its config records")
    args = parser.parse_args()
    split, run, loaded = one_trained_model(args)
    suppression, loaded.model.mask_suppression = loaded.model.mask_suppression, None  # applied below, by hand
    # a network built without any suppression: keep all
    suppress = suppression or MaskSuppression(SuppressionSpec(method="none", rescore="none"))
    if args.mask_rescore is not None:
        suppress = replace(suppress, rescore=args.mask_rescore)
    truth = load_ground_truth(split.test_truth)
    scenes = {scene["file_name"]: scene for scene in json.loads((split.test_images.parent / "scenes.json").read_text())}
    entries = gt_image_paths(split.test_truth, truth["images"], split.test_images)
    images = {image["id"]: image for image in truth["images"]}
    ids = {path: image_id for image_id, path in entries}
    by_image = CocoFile("ground truth", truth).annotations_by_image()  # in file order: the gt/ instance numbers
    counts: dict[str, Counter] = {"all": Counter()}
    for path, _rgb, raw in detect_images(loaded.model, loaded.device, [path for _, path in entries], progress=False):
        keep, scores = suppress(raw.masks, torch.from_numpy(raw.scores))
        kept = Detections(raw.boxes[keep.numpy()], scores.numpy(), raw.masks.select(keep))
        image = images[ids[path]]
        scene = scenes.get(image["file_name"], {})
        camouflaged = set(scene.get("camouflaged", []))  # instance numbers: the image's annotations in gt/ order
        for number, annotation in enumerate(by_image[image["id"]], start=1):
            found = outcome(decode_mask(annotation["segmentation"], image["height"], image["width"]),
                            bbox_xyxy(annotation["bbox"]), raw, kept, args.score_thr)
            for group in ("all", scene.get("kind", "-"), *(["camouflaged"] if number in camouflaged else [])):
                counts.setdefault(group, Counter())[found] += 1
    rows = [{"scenes": name, "instances": sum(counter.values()), **{key: counter[key] for key in OUTCOMES}}
            for name, counter in sorted(counts.items(), key=lambda item: (item[0] != "all", item[0] == "camouflaged"))]
    save_results(args, run=str(run), rows=rows)
    print(f"Where recall is lost ({run}); score threshold {args.score_thr:g}, {args.test_images} held-out scenes, "
          f"{suppress}")
    print(f"{'scenes':14s}{'instances':>10s}" + "".join(f"{key:>{max(len(key), 6) + 2}s}" for key in OUTCOMES))
    for row in rows:
        print(f"{row['scenes']:14s}{row['instances']:>10d}"
              + "".join(f"{row[key]:>{max(len(key), 6) + 2}d}" for key in OUTCOMES))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
