"""The shape of the paper's Tables IV and III on sample data.

Table IV: basic (naive weak labels, Mask R-CNN's RoIAlign head), +PC (the priors' weak labels),
+PC+GFR (the GFR head), +PC+GFR+US (the label-update scheme) once with the weight lambda of
L_upd at 1 (the paper's) and once at 0 (label rounds only). Table III: the update threshold phi
in 0.01 .. 0.2, at lambda = 0 (at 1 the mask head stops learning and no label is replaced; see
docs/method/crf.md). Every run: the cpu preset (its lr unless --lr), the same seed and iterations, a label
round per epoch where the scheme is on and explicitly off elsewhere, scored on held-out scenes
(AP / AP^r0.5 / AP^r0.7, percent). With --guard, every run of the scheme uses that guard
(cgc/refine/update_guards.py) instead of Algorithm 1 as written. Prints the tables and writes JSON.

    .venv/bin/python benchmarks/ablation.py            # about an hour on 2 cores
    .venv/bin/python benchmarks/ablation.py --reuse    # resume: finished runs are kept
    .venv/bin/python benchmarks/ablation.py --reuse --guard "shared pixels" --update-weights 0 --phis   # Table IV only
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments import (UPDATE_GUARDS, add_run_arguments, label_rounds_quality, prepare_sample_split, print_label_rounds,
                         print_table, run_folder, save_results, train_and_score)

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
    parser.add_argument("--phis", type=float, nargs="*", default=[0.01, 0.05, 0.1, 0.15, 0.2],
                        help="Table III's phi values (none: Table IV only)")
    parser.add_argument("--update-weights", type=float, nargs="+", default=[1.0, 0.0],
                        help="lambda of the +US rows (1: the paper's; 0: label rounds only)")
    parser.add_argument("--guard", choices=list(UPDATE_GUARDS), default="label rounds",
                        help="the guard of every run with label rounds (default: Algorithm 1 as written)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate for every run [the cpu preset's]")
    args = parser.parse_args()

    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed, args.style)
    update = ("--update-every", args.update_every, *UPDATE_GUARDS[args.guard])
    guarded = "" if args.guard == "label rounds" else f" ({args.guard})"  # in the names of the runs with label rounds
    no_update = ("--update-every", 0)  # whatever the preset says
    lr = ("--lr", args.lr) if args.lr is not None else ()

    def run(name: str, labels: Path, *options: object) -> dict:
        folder = run_folder(args.work, name)
        scores = train_and_score(split, labels, folder, args.iterations, args.seed, *lr, *options,
                                 reuse=args.reuse)
        if (folder / LABELS_DIR).is_dir():  # the run wrote label rounds
            scores |= label_rounds_quality(split, folder, labels)  # weak labels, then rounds 1, 2, ...
        return scores

    table_iv = []
    without_update = (
        ("basic", "", split.naive_labels, ("--mask-head", "roialign", *no_update)),
        ("+PC", "", split.weak_labels, ("--mask-head", "roialign", *no_update)),
        ("+PC+GFR", "", split.weak_labels, ("--mask-head", "gfr", *no_update)),
    )
    with_update = tuple(("+PC+GFR+US" + ("" if weight == 1 else f" lambda={weight:g}"), guarded, split.weak_labels,
                         ("--mask-head", "gfr", *update, "--set", f"label_update.weight={weight}")) for weight in args.update_weights)
    for name, guard_suffix, labels, options in without_update + with_update:
        setting = name + guard_suffix
        scores = run(setting, labels, *options)
        paper = dict(zip(("paper_AP", "paper_AP_r50", "paper_AP_r70"), PAPER_TABLE_IV.get(name, (None, None, None))))
        table_iv.append({"setting": setting, **scores, **paper})
        save(args, table_iv)
    without_loss = next((measured(row) for row in table_iv if row["setting"] == f"+PC+GFR+US lambda=0{guarded}"), None)
    table_iii = []
    for phi in args.phis:
        if phi == DEFAULT_PHI and without_loss is not None:  # the lambda = 0 run: same settings, same seed, same result
            scores = without_loss
        else:
            scores = run(f"phi-{phi}{guarded}", split.weak_labels, "--mask-head", "gfr", *update, "--set", "label_update.weight=0",
                         "--set", f"label_update.phi={phi}")
        paper = dict(zip(("paper_AP_r50", "paper_AP_r70"), PAPER_TABLE_III.get(phi, (None, None))))
        table_iii.append({"phi": str(phi), **scores, **paper})
        save(args, table_iv, table_iii)
    print_table("Table IV (sample data; paper: DUT-OMRON validation)", table_iv, "setting")
    if table_iii:
        print_table(f"Table III: update threshold phi, lambda = 0{guarded}", table_iii, "phi")
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
