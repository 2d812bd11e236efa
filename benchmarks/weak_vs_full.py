"""Weak against full supervision: the same network trained on weak labels and on true masks.

On generated sample data: the weak labels come from the simulated annotators' consensus boxes
and the binary masks (`cgc weaklabels build`), the full labels are the true instance masks of
the same images. Both runs use the same settings and seed; both are scored on held-out images.
Prints AP / AP^r0.5 / AP^r0.7 / COCO mask AP and writes JSON.

    .venv/bin/python benchmarks/weak_vs_full.py --train-images 200 --iterations 250
"""

from __future__ import annotations

import argparse

from experiments import add_run_arguments, prepare_sample_split, print_table, save_results, train_and_score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, "weak_vs_full", iterations=250)
    parser.add_argument("--mask-head", default="gfr")
    args = parser.parse_args()

    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed, args.style)
    rows = []
    for supervision, labels in (("weak", split.weak_labels), ("full", split.full_labels)):
        scores = train_and_score(split, labels, args.work / f"run-{supervision}", args.iterations, args.seed,
                                 "--mask-head", args.mask_head, reuse=args.reuse)
        rows.append({"supervision": supervision, **scores})
    weak, full = rows
    ratio = weak["AP"] / full["AP"] if full["AP"] else float("nan")
    print_table(f"{args.train_images} training / {args.test_images} held-out sample images, cpu preset, {args.mask_head}, "
                f"{args.iterations} iterations, seed {args.seed}", rows, "supervision")
    print(f"weak / full AP: {ratio:.1%}")
    save_results(args, rows=rows, weak_over_full_AP=round(ratio, 4))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
