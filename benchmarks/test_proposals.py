"""How many RPN proposals inference needs: one trained model scored with 150 to 2000 test proposals per image.

The box head scores every proposal the RPN keeps, so at 1000 (torchvision's and the paper's value) it
is the largest cost of inference on CPU after the mask head (README, "Where the time goes"). One run is
trained (the cpu preset, GFR, 250 iterations, or --checkpoint), then rebuilt with each number of test
proposals from its own weights: only inference differs between rows, so the differences are not
training noise. Seconds are the wall time of predicting the held-out scenes.

    .venv/bin/python benchmarks/test_proposals.py --reuse --style photo
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from experiments import add_run_arguments, prepare_sample_split, save_results, score_predictions, train_and_score

from cgc.inference import load_model, predict_for_ground_truth
from cgc.train.model_factory import model_from_config

PROPOSALS = (150, 300, 600, 1000, 2000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, "test_proposals", iterations=250)
    parser.add_argument("--checkpoint", type=Path, default=None, help="score this run instead of training one")
    parser.add_argument("--score-thr", type=float, default=0.5)
    parser.add_argument("--proposals", type=int, nargs="+", default=list(PROPOSALS))
    args = parser.parse_args()

    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed, args.style)
    run = args.checkpoint
    if run is None:
        run = args.work / "run"
        train_and_score(split, split.weak_labels, run, args.iterations, args.seed, reuse=args.reuse)
    loaded = load_model(run, "cpu")
    weights = loaded.model.state_dict()
    rows = []
    for proposals in args.proposals:
        model = model_from_config(dataclasses.replace(loaded.config, rpn_test_proposals=proposals),
                                  load_backbone_weights=False)
        model.load_state_dict(weights)
        variant = dataclasses.replace(loaded, model=model.eval())
        start = time.perf_counter()
        predictions = predict_for_ground_truth(variant, split.test_truth, split.test_images, args.score_thr,
                                               progress=False)
        seconds = time.perf_counter() - start
        rows.append({"test_proposals": proposals, **score_predictions(split, predictions, args.score_thr),
                     "seconds": round(seconds, 1)})
        save_results(args, run=str(run), rows=rows)
    print(f"Test proposals, one model ({run}); score threshold {args.score_thr:g}, {args.test_images} held-out "
          f"{args.style} scenes")
    print(f"{'proposals':>9}{'COCO AP':>8}{'AP^r0.7':>8}{'AP':>7}{'prec.':>7}{'recall':>7}{'per inst.':>10}"
          f"{'boxes COCO':>11}{'seconds':>8}")
    for row in rows:
        print(f"{row['test_proposals']:>9}{row['coco_mask_AP']:>8.2f}{row['AP_r70']:>8.2f}{row['AP']:>7.2f}"
              f"{row['precision']:>7.1f}{row['recall']:>7.1f}{row['per_instance']:>10.2f}{row['boxes_coco_AP']:>11.2f}"
              f"{row['seconds']:>8.1f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
