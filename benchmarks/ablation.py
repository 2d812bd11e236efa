"""The shape of the paper's Tables IV and III on sample data.

Table IV: basic (naive weak labels, Mask R-CNN's RoIAlign head), +PC (the priors' weak labels),
+PC+GFR (the GFR head), +PC+GFR+US (the label-update scheme). Table III: the update threshold
phi in 0.01 .. 0.2. Every run: the cpu preset, the same seed and iterations, scored on held-out
scenes (AP / AP^r0.5 / AP^r0.7, percent). Prints both tables and writes JSON.

    .venv/bin/python benchmarks/ablation.py --iterations 250
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments import prepare_sample_split, print_table, train_and_score

PAPER_TABLE_IV = {"basic": 53.93, "+PC": 54.67, "+PC+GFR": 55.84, "+PC+GFR+US": 57.79}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=200)
    parser.add_argument("--test-images", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=250)
    parser.add_argument("--update-every", type=int, default=50)
    parser.add_argument("--phis", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/ablation"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ablation.json"))
    args = parser.parse_args()

    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed)
    update = ("--update-every", args.update_every)
    table_iv = []
    for name, labels, options in (
        ("basic", split.naive_labels, ("--mask-head", "roialign")),
        ("+PC", split.weak_labels, ("--mask-head", "roialign")),
        ("+PC+GFR", split.weak_labels, ("--mask-head", "gfr")),
        ("+PC+GFR+US", split.weak_labels, ("--mask-head", "gfr", *update)),
    ):
        scores = train_and_score(split, labels, args.work / f"run-{name}", args.iterations, args.seed, *options)
        table_iv.append({"setting": name, **scores, "paper_AP": PAPER_TABLE_IV[name]})
    table_iii = []
    for phi in args.phis:
        scores = train_and_score(split, split.weak_labels, args.work / f"run-phi-{phi}", args.iterations, args.seed,
                                 "--mask-head", "gfr", *update, "--update-phi", phi)
        table_iii.append({"phi": str(phi), **scores})
    print_table("Table IV (sample data; the paper's AP on DUT-OMRON val beside it in the JSON)", table_iv, "setting")
    print_table("Table III: update threshold phi", table_iii, "phi")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "table_iv": table_iv,
                                    "table_iii": table_iii}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
