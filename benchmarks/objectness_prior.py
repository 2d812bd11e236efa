"""The RPN's class-agnostic objectness weighed into the detection scores: does it find kinds never trained on?

A model trained on a few kinds of real object proposes nearly every instance of a kind it never saw, and its box
classifier calls a third of those background (docs/method/training.md, "Where the held-out kinds are lost"). The
RPN only learns "object or not", the classifier learns the kinds: OLN (Kim et al. 2022) finds that scores free of
classification generalise to new kinds. For each finished run folder of `benchmarks/real_training.py` and each
weight w, this writes RUN-objectness-W (the run's last checkpoint, scoring each detection p^(1-w) * o^w with the
classifier's p and the RPN's objectness o, `network.box.objectness_weight`), calibrates it on `pets-val` and
scores it on the sets the run was scored on, beside the run's own scores (w = 0). No training.

    .venv/bin/python benchmarks/objectness_prior.py --reuse benchmarks/results/real-training/without-davis17-a/run-*

Prints a table and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments import RESULTS, stored_record
from real_training import COLUMNS, REAL, calibrate_and_score, table_cells

from cgc.checkpoint import list_checkpoints, load_checkpoint, write_state
from cgc.config import config_from_values
from cgc.fileio import atomic_write_json

VARIANT = "-objectness-"


def with_objectness_weight(state: dict, weight: float, source: Path) -> dict:
    """The checkpoint ``state`` with its config's ``network.box.objectness_weight`` set to ``weight``."""
    config = config_from_values(state["config"], source).changed(network={"box": {"objectness_weight": weight}})
    return {**state, "config": config.to_json()}


def weigh_and_score(run: Path, weight: float, scored_on: list[str], real: Path, reuse: bool) -> dict:
    """RUN-objectness-W written from the run's last checkpoint, calibrated on pets-val and scored on ``scored_on``."""
    found = list_checkpoints(run)
    if not found:
        raise SystemExit(f"{run}: no checkpoint")
    identity = {"checkpoint": found[-1].name, "objectness_weight": weight, "scored_on": scored_on}
    variant = run.with_name(f"{run.name}{VARIANT}{weight:g}")
    stored = stored_record(variant / "scores.json", identity, reuse)
    if stored is not None:
        return stored["scores"]
    write_state(variant / "checkpoints" / found[-1].name, with_objectness_weight(load_checkpoint(found[-1]), weight,
                                                                                  found[-1]))
    scores = calibrate_and_score(variant, real, scored_on)
    atomic_write_json(variant / "scores.json", {**identity, "scores": scores}, indent=1)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders of benchmarks/real_training.py")
    parser.add_argument("--weights", nargs="+", type=float, default=[0.5], help="objectness weights w to score")
    parser.add_argument("--real", type=Path, default=REAL, help="the folder of the real sets")
    parser.add_argument("--reuse", action="store_true", help="keep the variants already scored")
    parser.add_argument("--out", type=Path, default=RESULTS / "objectness_prior.json")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        if VARIANT in run.name or "-averaged" in run.name or not (run / "scores.json").is_file():
            continue  # a variant itself, or a run not finished and scored
        record = json.loads((run / "scores.json").read_text())
        weighed = {f"{weight:g}": weigh_and_score(run, weight, record["scored_on"], args.real, args.reuse)
                   for weight in args.weights}
        rows.append({"run": str(run), "scored_on": record["scored_on"], "scores": {"0": record["scores"], **weighed}})
    atomic_write_json(args.out, {"rows": rows}, indent=1)
    for row in rows:
        print(f"\n{row['run']}")
        for name in row["scored_on"]:
            print(f"scored on {name:10s}" + "".join(f"{header:>10s}" for _, header, _ in COLUMNS))
            for weight, scores in row["scores"].items():
                print(f"  objectness w {weight:5s}" + table_cells(scores[name]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
