"""Learning curves of the GFR and RoIAlign mask heads: does GFR's gap close with training?

One cpu-preset run per head, same seed and sample split, with one schedule for the whole curve (lr / 10 at 75 %
of the last milestone). The run stops at each milestone, is scored on the held-out scenes, and is continued with
`cgc train --resume --iterations NEXT`, so the 300-iteration point is the same model that goes on to 1000 and
2000. With --reuse a finished milestone is not redone and a run stopped midway resumes from its newest
checkpoint, so the curve can be built over several sittings.

    .venv/bin/python benchmarks/head_curves.py --reuse
    .venv/bin/python benchmarks/head_curves.py --reuse --milestones 300 1000   # the shorter curve first
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from experiments import (
    SampleSplit,
    add_run_arguments,
    cgc,
    eval_scores,
    prepare_sample_split,
    print_table,
    save_results,
    stored_record,
)

from cgc.fileio import atomic_write_json

HEADS = {  # curve -> its `cgc train` options (the plain heads' commands as before, so --reuse keeps their runs)
    "roialign": ("--mask-head", "roialign"),
    "gfr": ("--mask-head", "gfr"),
    # gfr-stride1 (finer logits for small instances) was measured here too; its setting has since left cgc
}
MILESTONES = (300, 1000, 2000)


def milestone_record(run: Path, iterations: int) -> Path:
    return run / f"milestone-{iterations}.json"


def train_to(split: SampleSplit, run: Path, head: str, iterations: int, schedule: dict[str, int], seed: int,
             reuse: bool) -> dict:
    """The run trained to `iterations` (continued from its newest checkpoint if it has one) and scored there."""
    command = ["train", "--preset", "cpu", "--data", split.weak_labels, "--images", split.train_images, "--out", run,
               *HEADS[head], "--seed", seed, "--update-every", 0, "--lr-steps", schedule["lr_step"],
               "--set", "run.checkpoint_every=100"]
    command = [str(arg) for arg in command]
    record = milestone_record(run, iterations)
    stored = stored_record(record, {"command": command}, reuse)
    if stored is not None:
        return stored["scores"]
    has_checkpoint = (run / "checkpoints").is_dir() and any((run / "checkpoints").glob("*.pt"))
    start = time.perf_counter()
    cgc(*command, "--iterations", iterations, *(["--resume"] if has_checkpoint else []))
    seconds = time.perf_counter() - start
    scores = {**eval_scores(split, run, f"metrics-{iterations}.json"), "train_seconds": round(seconds, 1)}
    atomic_write_json(record, {"command": command, "scores": scores}, indent=1)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, "head_curves", iterations=max(MILESTONES))
    parser.add_argument("--milestones", type=int, nargs="+", default=list(MILESTONES))
    parser.add_argument("--heads", nargs="+", choices=list(HEADS), default=["roialign", "gfr"])
    args = parser.parse_args()
    milestones = sorted(args.milestones)
    schedule = {"lr_step": int(0.75 * args.iterations)}  # one schedule for the whole curve, the longest milestone's
    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed, args.style)
    if not args.reuse:  # a fresh curve: the runs of an earlier one would be resumed otherwise
        for head in args.heads:
            shutil.rmtree(args.work / f"run-{head}", ignore_errors=True)
    rows = []
    for iterations in milestones:  # every head to a milestone before any goes further: partial curves compare
        for head in args.heads:
            if iterations > args.iterations:
                continue
            scores = train_to(split, args.work / f"run-{head}", head, iterations, schedule, args.seed, args.reuse)
            rows.append({"head, iterations": f"{head} {iterations}", "head": head, "iterations": iterations, **scores})
            save_results(args, rows=rows)
    print_table(f"Head curves, {args.style} scenes, cpu preset, seed {args.seed}, lr / 10 at {schedule['lr_step']} "
                f"(train s: this stretch only)", rows, "head, iterations")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
