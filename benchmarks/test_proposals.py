"""How many RPN proposals inference needs: one trained model scored with 150 to 2000 test proposals per image.

The box head scores every proposal the RPN keeps, so at 1000 (torchvision's and the paper's value) it
is the largest cost of inference on CPU after the mask head (FLOP counts in docs/method/training.md). One run is
trained (the cpu preset and its head, 250 iterations, or --checkpoint), then rebuilt with each number of test
proposals from its own weights: only inference differs between rows, so the differences are not
training noise. Seconds are the wall time of predicting the held-out scenes.

    .venv/bin/python benchmarks/test_proposals.py --reuse --style photo
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from experiments import add_one_model_arguments, one_trained_model, print_score_rows, save_results, score_predictions

from cgc.inference import predict_for_ground_truth
from cgc.model.factory import model_from_config

PROPOSALS = (150, 300, 600, 1000, 2000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_one_model_arguments(parser, "test_proposals")
    parser.add_argument("--proposals", type=int, nargs="+", default=list(PROPOSALS))
    args = parser.parse_args()
    split, run, loaded = one_trained_model(args)
    weights = loaded.model.state_dict()
    rows = []
    for proposals in args.proposals:
        model = model_from_config(loaded.config.changed(network={"rpn": {"post_nms_top_n_test": proposals}}),
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
    print_score_rows(f"Test proposals, one model ({run}); score threshold {args.score_thr:g}, {args.test_images} "
                     f"held-out {args.style} scenes", rows, [("test_proposals", "proposals", 9, "d")],
                     [("seconds", "seconds", 8, ".1f")])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
