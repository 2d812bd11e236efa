"""Does the label-update scheme repair noisy weak labels? The same GFR run with and without label rounds.

On the sample data the priors' weak labels are nearly perfect (mean IoU 0.96 to the true masks), so
a CRF-refined prediction can only make them worse (see the ablation). Here the network learns from
the naive labels instead (`weaklabels build --rule all-in-box`: every salient pixel in the box, so
neighbours that overlap a box leak into it), and the label rounds start late in a longer run, when
the predictions are better than early ones. Both runs: the cpu preset, the same seed and iterations,
lambda = 0 (label rounds only; lambda = 1 stops the mask head, see the README). Reports the held-out
AP figures and the labels' mean IoU to the truth after every round; writes JSON.

    .venv/bin/python benchmarks/noisy_label_update.py    # about 35 minutes on 2 cores
"""

from __future__ import annotations

import argparse

from experiments import (add_run_arguments, label_change_by_quality, label_rounds_quality, prepare_sample_split,
                         print_label_rounds, print_table, save_results, train_and_score)

from cgc.refine.update_rule import DEFAULT_PHI
from cgc.training.label_rounds import round_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, "noisy_label_update", iterations=600)
    parser.add_argument("--update-start", type=int, default=300, help="first iteration whose predictions update labels")
    parser.add_argument("--update-every", type=int, default=100, help="iterations per label round (100: one epoch)")
    parser.add_argument("--phi", type=float, default=DEFAULT_PHI)
    args = parser.parse_args()

    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed, args.style)
    labels = split.naive_labels
    rows, folders = [], {}
    for name, options in (
        ("no update", ("--update-every", 0)),
        ("label rounds", ("--update-every", args.update_every, "--update-start", args.update_start,
                          "--update-phi", args.phi, "--update-weight", 0)),
    ):
        folders[name] = args.work / f"run-{name.replace(' ', '-')}"
        scores = train_and_score(split, labels, folders[name], args.iterations, args.seed, "--mask-head", "gfr", *options,
                                 reuse=args.reuse)
        # the labels trained on: the naive weak labels, then each round the run wrote (none without the scheme)
        rows.append({"run": name, **scores, **label_rounds_quality(split, folders[name], labels)})
    first_round, _ = round_paths(folders["label rounds"], 1)
    first_round_change = label_change_by_quality(split, labels, first_round)
    save_results(args, rows=rows, first_round_change=first_round_change)
    print_table(f"GFR on naive weak labels, {args.iterations} iterations, rounds every {args.update_every} from "
                f"{args.update_start}, phi {args.phi}, lambda 0, seed {args.seed}", rows, "run")
    print_label_rounds([(row["run"], row) for row in rows])
    print("The first round's effect on the labels, by their IoU to the truth before it")
    print(f"{'IoU before':<12}{'instances':>10}{'mean change':>13}{'improved':>10}{'worsened':>10}")
    for band in first_round_change:
        print(f"{band['iou_before']:<12}{band['instances']:>10}{band['mean_change']:>+13.3f}{band['improved']:>10}"
              f"{band['worsened']:>10}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
