"""What the CPU preset's width costs and buys: the same training with narrower FPN levels and fewer test proposals.

The FPN's 256-channel levels, the RPN's 3x3 convolution over them and the box head's first layer
(256 x 7 x 7 inputs) make up most of a CPU-preset step (the MobileNetV2 body is small beside them),
and at inference the box head scores each of the RPN's 1000 proposals. Rows (GFR head, same seed,
iterations and data):
- preset: the CPU preset as it is;
- fpn 128: FPN levels of 128 channels;
- fpn 128, 300 proposals: also 300 test proposals per image instead of 1000.

    .venv/bin/python benchmarks/cpu_preset.py --reuse --style photo
"""

from __future__ import annotations

import argparse

from experiments import add_run_arguments, prepare_sample_split, print_table, save_results, train_and_score

RUNS = (
    ("preset", ()),
    ("fpn 128", ("--fpn-channels", 128)),
    ("fpn 128, 300 proposals", ("--fpn-channels", 128, "--rpn-test-proposals", 300)),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, "cpu_preset", iterations=250)
    parser.add_argument("--runs", nargs="+", default=[name for name, _ in RUNS], help="which rows to run")
    args = parser.parse_args()

    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed, args.style)
    rows = []
    for name, options in RUNS:
        if name not in args.runs:
            continue
        run = args.work / f"run-{name.replace(' ', '-').replace(',', '')}"
        scores = train_and_score(split, split.weak_labels, run, args.iterations, args.seed, "--update-every", 0,
                                 *options, reuse=args.reuse)
        rows.append({"preset": name, **scores})
        save_results(args, rows=rows)
    print_table(f"CPU preset variants, {args.style} scenes, {args.iterations} iterations, seed {args.seed}", rows, "preset")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
