"""The shape of the paper's Tables IV and III on sample data.

Table IV: basic (naive weak labels, Mask R-CNN's RoIAlign head), +PC (the priors' weak labels),
+PC+GFR (the GFR head), +PC+GFR+US (the label-update scheme) once with the weight lambda of
L_upd at 1 (the paper's) and once at 0 (label rounds only). Table III: the update threshold phi
in 0.01 .. 0.2, at lambda = 0 (at 1 the mask head stops learning and no label is replaced; see
the README). Every run: the cpu preset (its lr unless --lr), the same seed and iterations, a label
round per epoch where the scheme is on and explicitly off elsewhere, scored on held-out scenes
(AP / AP^r0.5 / AP^r0.7, percent). Prints the tables and writes JSON.

    .venv/bin/python benchmarks/ablation.py            # about an hour on 2 cores
    .venv/bin/python benchmarks/ablation.py --reuse    # resume: finished runs are kept
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments import (add_run_arguments, label_rounds_quality, prepare_sample_split, print_label_rounds, print_table,
                         save_results, train_and_score)

from cgc.refine.update_rule import DEFAULT_PHI
from cgc.training.label_rounds import LABELS_DIR

# The paper's figures (DUT-OMRON validation): AP, AP^r0.5, AP^r0.7; Table III gives no AP column.
PAPER_TABLE_IV = {"basic": (53.93, 83.44, 66.86), "+PC": (54.67, 85.81, 68.43), "+PC+GFR": (55.84, 85.15, 70.54),
                  "+PC+GFR+US": (57.79, 86.14, 71.82)}
PAPER_TABLE_III = {0.01: (85.98, 71.43), 0.05: (86.14, 71.82), 0.1: (84.95, 71.26), 0.15: (84.76, 70.78), 0.2: (84.23, 70.29)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, "ablation", iterations=300)
    parser.add_argument("--update-every", type=int, default=100, help="iterations per label round (100: one epoch of 200 images)")
    parser.add_argument("--phis", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.15, 0.2])
    parser.add_argument("--lr", type=float, default=None, help="learning rate for every run [the cpu preset's]")
    args = parser.parse_args()

    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed, args.style)
    update = ("--update-every", args.update_every)
    no_update = ("--update-every", 0)  # whatever the preset says
    lr = ("--lr", args.lr) if args.lr is not None else ()

    def run(name: str, labels: Path, *options: object) -> dict:
        folder = args.work / f"run-{name}"
        scores = train_and_score(split, labels, folder, args.iterations, args.seed, *lr, *options,
                                 reuse=args.reuse)
        if (folder / LABELS_DIR).is_dir():  # the run wrote label rounds
            scores |= label_rounds_quality(split, folder, labels)  # weak labels, then rounds 1, 2, ...
        return scores

    table_iv = []
    for name, labels, options in (
        ("basic", split.naive_labels, ("--mask-head", "roialign", *no_update)),
        ("+PC", split.weak_labels, ("--mask-head", "roialign", *no_update)),
        ("+PC+GFR", split.weak_labels, ("--mask-head", "gfr", *no_update)),
        ("+PC+GFR+US", split.weak_labels, ("--mask-head", "gfr", *update, "--update-weight", 1)),
        ("+PC+GFR+US lambda=0", split.weak_labels, ("--mask-head", "gfr", *update, "--update-weight", 0)),
    ):
        scores = run(name.replace(" ", "-"), labels, *options)
        paper = dict(zip(("paper_AP", "paper_AP_r50", "paper_AP_r70"), PAPER_TABLE_IV.get(name, (None, None, None))))
        table_iv.append({"setting": name, **scores, **paper})
        save(args, table_iv)
    without_loss = measured(table_iv[-1])
    table_iii = []
    for phi in args.phis:
        if phi == DEFAULT_PHI:  # the lambda = 0 run: same settings, same seed, same result
            scores = without_loss
        else:
            scores = run(f"phi-{phi}", split.weak_labels, "--mask-head", "gfr", *update, "--update-weight", 0,
                         "--update-phi", phi)
        paper = dict(zip(("paper_AP_r50", "paper_AP_r70"), PAPER_TABLE_III.get(phi, (None, None))))
        table_iii.append({"phi": str(phi), **scores, **paper})
        save(args, table_iv, table_iii)
    print_table("Table IV (sample data; paper: DUT-OMRON validation)", table_iv, "setting")
    print_table("Table III: update threshold phi, lambda = 0", table_iii, "phi")
    print_label_rounds([(row["setting"], row) for row in table_iv] + [(f"phi {row['phi']}", row) for row in table_iii])
    print(f"wrote {args.out}")


def measured(row: dict) -> dict:
    """A row's own scores, without its name and the paper's figures."""
    return {key: value for key, value in row.items() if key not in ("setting", "phi") and not key.startswith("paper")}


def save(args: argparse.Namespace, table_iv: list, table_iii: list | None = None) -> None:
    """Written after every run, so that an interrupted ablation keeps what it measured."""
    save_results(args, table_iv=table_iv, table_iii=table_iii or [])


if __name__ == "__main__":
    main()
