"""Averaged weights against the last checkpoint: does averaging a run's last checkpoints steady it?

One run of the CPU preset on real photographs can land several COCO mask AP away from another that differs only in
its seed (docs/method/training.md, "The noise of one run"). Averaging the weights of the checkpoints written after
the last learning-rate step (stochastic weight averaging, Izmailov et al. 2018, on the checkpoints a run keeps
anyway; the backbone's batch norm is frozen, so no statistics need recomputing) is the usual remedy and costs no
training. For each finished run folder of `benchmarks/real_training.py`, this writes RUN-averaged (its
checkpoints after the last step averaged), calibrates it on `pets-val` and scores it on the sets the run was
scored on, beside the run's own scores (its last checkpoint).

    .venv/bin/python benchmarks/checkpoint_average.py --reuse benchmarks/results/real-training/all/run-*-weak-masks

Prints a table and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from experiments import RESULTS, stored_record
from real_training import COLUMNS, REAL, calibrate_and_score, table_cells

from cgc.checkpoint import PATTERN, list_checkpoints, load_checkpoint, write_state
from cgc.config import load_config
from cgc.fileio import atomic_write_json

AVERAGED = "-averaged"


def checkpoints_after_last_step(run: Path) -> list[Path]:
    """The run's kept checkpoints written after its last learning-rate step (all kept ones if it has none)."""
    found = list_checkpoints(run)
    if not found:
        raise SystemExit(f"{run}: no checkpoint")
    last_step = max(load_config(run / "config.json").solver.lr_steps, default=0)
    return [path for path in found if int(PATTERN.match(path.name).group(1)) > last_step]


def averaged_state(paths: list[Path]) -> dict:
    """The last checkpoint's iteration and config with the mean of every floating-point weight over ``paths``
    (integer buffers from the last)."""
    states = [load_checkpoint(path) for path in paths]
    last = states[-1]
    model = {key: torch.stack([state["model"][key].float() for state in states]).mean(0).to(value.dtype)
             if value.is_floating_point() else value for key, value in last["model"].items()}
    return {"iteration": last["iteration"], "model": model, "config": last["config"]}


def average_and_score(run: Path, scored_on: list[str], real: Path, reuse: bool) -> dict:
    """RUN-averaged written, calibrated on pets-val and scored on the sets ``scored_on``."""
    paths = checkpoints_after_last_step(run)
    identity = {"averaged": [path.name for path in paths], "scored_on": scored_on}
    averaged = run.with_name(run.name + AVERAGED)
    stored = stored_record(averaged / "scores.json", identity, reuse)
    if stored is not None:
        return stored["scores"]
    write_state(averaged / "checkpoints" / paths[-1].name, averaged_state(paths))
    scores = calibrate_and_score(averaged, real, scored_on)
    atomic_write_json(averaged / "scores.json", {**identity, "scores": scores}, indent=1)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run folders of benchmarks/real_training.py")
    parser.add_argument("--real", type=Path, default=REAL, help="the folder of the real sets")
    parser.add_argument("--reuse", action="store_true", help="keep the averages already scored")
    parser.add_argument("--out", type=Path, default=RESULTS / "checkpoint_average.json")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        if run.name.endswith(AVERAGED) or not (run / "scores.json").is_file():
            continue  # an average itself, or a run not finished and scored
        record = json.loads((run / "scores.json").read_text())
        rows.append({"run": str(run), "last": record["scores"],
                     "averaged": average_and_score(run, record["scored_on"], args.real, args.reuse)})
        atomic_write_json(args.out, {"rows": rows}, indent=1)
    for row in rows:
        print(f"\n{row['run']}")
        for name in row["averaged"]:
            print(f"scored on {name:10s}" + "".join(f"{header:>10s}" for _, header, _ in COLUMNS))
            for which in ("last", "averaged"):
                print(f"  {which:18s}" + table_cells(row[which][name]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
