"""Does the label-update scheme repair noisy weak labels? The same GFR run with and without label rounds.

On the sample data the priors' weak labels are nearly perfect (mean IoU 0.96 to the true masks), so
a CRF-refined prediction can only make them worse (see the ablation). Here the network learns from
the naive labels instead (`weaklabels build --rule all-in-box`: every salient pixel in the box, so
neighbours that overlap a box leak into it), and the label rounds start late in a longer run, when
the predictions are better than early ones. Both runs: the cpu preset, the same seed and iterations,
lambda = 0 (label rounds only; lambda = 1 stops the mask head, docs/method/crf.md). Reports the held-out
AP figures and the labels' mean IoU to the truth after every round; writes JSON.

Beside Algorithm 1 as written, a run with the shared-pixels guard (cgc/refine/update_guards.py); with several
--phis, each guarded row once per phi (the shape of the paper's Table III, on labels the scheme can change).
Every row continues one shared run of the first --update-start iterations (the rows are the same up
to there), so a row costs only the iterations after it.

    .venv/bin/python benchmarks/noisy_label_update.py --reuse    # about 15 minutes per row on 2 cores
    .venv/bin/python benchmarks/noisy_label_update.py --reuse --runs "no update" "label rounds"
    .venv/bin/python benchmarks/noisy_label_update.py --reuse --labels weak --work ... --out ...   # the priors' labels
    .venv/bin/python benchmarks/noisy_label_update.py --reuse --runs "shared pixels" --phis 0.01 0.05 0.1 0.15 0.2
"""

from __future__ import annotations

import argparse

from experiments import (UPDATE_GUARDS, add_run_arguments, label_change_by_quality, label_rounds_quality,
                         prepare_sample_split, print_label_rounds, print_table, run_folder, save_results,
                         train_and_score, train_prefix)

from cgc.refine.update_rule import DEFAULT_PHI
from cgc.training.label_rounds import round_paths


GUARDED_RUNS = (("no update", None), *UPDATE_GUARDS.items())  # (row, the guard's options; None: no label rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, "noisy_label_update", iterations=600)
    parser.add_argument("--update-start", type=int, default=300, help="first iteration whose predictions update labels")
    parser.add_argument("--update-every", type=int, default=100, help="iterations per label round (100: one epoch)")
    parser.add_argument("--phis", type=float, nargs="+", default=[DEFAULT_PHI],
                        help="the update threshold phi; several: each row with label rounds once per phi")
    parser.add_argument("--runs", nargs="+", default=[name for name, _ in GUARDED_RUNS], choices=[name for name, _ in GUARDED_RUNS],
                        help="which rows to run (default: all)")
    parser.add_argument("--labels", choices=["naive", "weak"], default="naive",
                        help="train on the naive labels (all-in-box) or on the priors' weak labels (resolve-shared, as every "
                             "training benchmark)")
    args = parser.parse_args()

    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed, args.style)
    labels = split.naive_labels if args.labels == "naive" else split.weak_labels
    rows, folders = [], {}
    first_round_change = {}
    prefix = train_prefix(split, labels, args.work / f"prefix-{args.update_start}", args.update_start, args.iterations,
                          args.seed, "--mask-head", "gfr", "--update-every", 0, reuse=args.reuse)
    for guard_name, guard in GUARDED_RUNS:
        if guard_name not in args.runs:
            continue
        for phi in [None] if guard is None else args.phis:
            name = guard_name if phi in (None, DEFAULT_PHI) else f"{guard_name}, phi {phi}"
            rounds = ("--update-every", args.update_every, "--set", f"label_update.start={args.update_start}",
                      "--set", f"label_update.phi={phi}", "--set", "label_update.weight=0")
            options = ("--update-every", 0) if guard is None else (*rounds, *guard)
            folders[name] = run_folder(args.work, name)
            scores = train_and_score(split, labels, folders[name], args.iterations, args.seed, *options,
                                     reuse=args.reuse, start_from=prefix)
            # the labels trained on: the naive weak labels, then each round the run wrote (none without the scheme)
            rows.append({"run": name, **scores, **label_rounds_quality(split, folders[name], labels)})
            if guard is not None:
                first_round, _ = round_paths(folders[name], 1)
                first_round_change[name] = label_change_by_quality(split, labels, first_round)
            save_results(args, rows=rows, first_round_change=first_round_change)
    print_table(f"GFR on the {args.labels} labels, {args.iterations} iterations, rounds every {args.update_every} from "
                f"{args.update_start}, phi {' / '.join(map(str, args.phis))}, lambda 0, seed {args.seed}", rows, "run")
    print_label_rounds([(row["run"], row) for row in rows])
    print("The first round's effect on the labels, by their IoU to the truth before it")
    width = max([16] + [len(name) + 2 for name in first_round_change])
    print(f"{'run':<{width}}{'IoU before':<12}{'instances':>10}{'mean change':>13}{'improved':>10}{'worsened':>10}")
    for name, bands in first_round_change.items():
        for band in bands:
            print(f"{name:<{width}}{band['iou_before']:<12}{band['instances']:>10}{band['mean_change']:>+13.3f}"
                  f"{band['improved']:>10}{band['worsened']:>10}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
