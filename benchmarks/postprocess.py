"""Duplicate suppression measured on one trained model: final box NMS x mask-level suppression (and rescoring).

One run is trained (the cpu preset and its head, the demo's 200 sample scenes and 250 iterations, or
--checkpoint), then every post-processing variant scores the same network on the held-out
scenes: COCO mask AP, the paper's AP^r0.7, precision and recall at the score threshold (IoU 0.5),
predictions per true instance, and COCO mask AP of the same detections as filled boxes. Only the
post-processing differs between rows, so the differences are not training noise.

    .venv/bin/python benchmarks/postprocess.py --reuse
"""

from __future__ import annotations

import argparse

from experiments import add_one_model_arguments, one_trained_model, print_score_rows, save_results, score_predictions

from cgc.inference import predict_for_ground_truth
from cgc.model.mask_suppression import MaskSuppression
from cgc.network_settings import SuppressionSpec

VARIANTS = (  # (final box NMS, mask suppression, its IoU, rescoring before it)
    (0.7, "none", None, "none"),  # the paper's NMS value, nothing else
    (0.5, "none", None, "none"),
    (0.3, "none", None, "none"),
    (0.5, "greedy", 0.7, "none"),
    (0.5, "greedy", 0.5, "none"),
    (0.5, "greedy", 0.4, "none"),
    (0.5, "greedy", 0.3, "none"),
    (0.5, "matrix", None, "none"),
    (0.5, "overlap", 0.5, "none"),
    (0.5, "overlap", 0.2, "none"),
    (0.7, "greedy", 0.5, "none"),
    (0.7, "matrix", None, "none"),
    (0.7, "overlap", 0.5, "none"),
    (0.5, "greedy", 0.5, "maskness"),
    (0.5, "greedy", 0.3, "maskness"),
    (0.5, "matrix", None, "maskness"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_one_model_arguments(parser, "postprocess")
    args = parser.parse_args()
    split, run, loaded = one_trained_model(args)
    model = loaded.model
    rows = []
    for box_nms, method, iou, rescore in VARIANTS:
        model.roi_heads.nms_thresh = box_nms
        model.mask_suppression = MaskSuppression(SuppressionSpec(method, iou if iou is not None else 0.5, rescore))
        predictions = predict_for_ground_truth(loaded, split.test_truth, split.test_images, args.score_thr,
                                               progress=False)
        name = method if iou is None else f"{method} {iou}"
        rows.append({"box_nms": box_nms, "mask_suppression": name if rescore == "none" else f"{rescore}, {name}",
                     **score_predictions(split, predictions, args.score_thr)})
        save_results(args, run=str(run), rows=rows)
    print_score_rows(f"Post-processing of one model ({run}); score threshold {args.score_thr:g}, "
                     f"{args.test_images} held-out sample scenes", rows,
                     [("box_nms", "box NMS", 8, ".1f"), ("mask_suppression", "mask suppression", -29, "")],
                     [("boxes_AP_r70", "boxes r0.7", 11, ".2f")])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
