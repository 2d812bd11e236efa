"""Shared steps of the training benchmarks: sample data in, trained-and-scored runs out.

Every step goes through the real `cgc` command line, as a user would run it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cgc.fileio import atomic_write_json

if TYPE_CHECKING:
    from cgc.inference import LoadedModel

CGC = [sys.executable, "-m", "cgc.cli"]


def cgc(*args: object) -> None:
    subprocess.run(CGC + [str(arg) for arg in args], check=True, stdout=subprocess.DEVNULL)


RESULTS = Path("benchmarks/results")

# The label-update guards the benchmarks compare (cgc/refine/update_guards.py): row name -> `cgc train` options.
# Five more guards (region, box, quality floor, blending, and shared + blending) were measured here and, not
# helping, removed from cgc; their rows stay in docs/method/crf.md with their commit.
UPDATE_GUARDS = {
    "label rounds": (),  # Algorithm 1 as written
    "shared pixels": ("--set", "label_update.guards.shared_only=true"),
}


def run_folder(work: Path, name: str) -> Path:
    """Where a benchmark row named `name` trains: WORK/run-NAME, words joined by hyphens, without ( ) or commas."""
    return work / ("run-" + "-".join(name.translate(str.maketrans("", "", "(),")).split()))


def add_run_arguments(parser: argparse.ArgumentParser, name: str, iterations: int) -> None:
    """The options every training benchmark shares. Its runs go to benchmarks/results/NAME (with hyphens), its
    results to benchmarks/results/NAME.json."""
    parser.add_argument("--train-images", type=int, default=200)
    parser.add_argument("--test-images", type=int, default=40)
    parser.add_argument("--iterations", type=int, default=iterations)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", choices=["flat", "photo"], default="flat",
                        help="sample style; the documented training tables were measured on flat scenes")
    parser.add_argument("--reuse", action="store_true",
                        help="keep runs that already finished with the same command (resume an interrupted benchmark)")
    parser.add_argument("--work", type=Path, default=RESULTS / name.replace("_", "-"))
    parser.add_argument("--out", type=Path, default=RESULTS / f"{name}.json")


def save_results(args: argparse.Namespace, **results: object) -> None:
    """The benchmark's settings and results as JSON at --out, written atomically."""
    atomic_write_json(args.out, {"settings": {key: str(value) for key, value in vars(args).items()}, **results}, indent=1)


@dataclass(frozen=True)
class SampleSplit:
    """Training scenes with weak (and full) labels, and held-out scenes with their truth."""

    train_images: Path
    weak_labels: Path  # consensus boxes + priors
    naive_labels: Path  # consensus boxes + every salient pixel in the box
    full_labels: Path  # the true instance masks of the training scenes
    test_images: Path
    test_truth: Path


def prepare_sample_split(work: Path, train_images: int, test_images: int, seed: int, style: str) -> SampleSplit:
    # the benchmark owns its work folder: --overwrite also replaces samples written before outputs were marked
    cgc("sample", "--out", work / "train", "--images", train_images, "--seed", seed, "--style", style, "--overwrite")
    cgc("sample", "--out", work / "test", "--images", test_images, "--seed", seed + 1000, "--style", style,
        "--overwrite")
    cgc("annotate", "import", "--from-export", work / "train" / "labelstudio_export.json", "--out", work / "boxes.json")
    for name, rule in (("weak", "resolve-shared"), ("naive", "all-in-box")):
        cgc("weaklabels", "build", "--images", work / "train" / "imgs", "--masks", work / "train" / "masks",
            "--boxes", work / "boxes.json", "--out", work / name, "--rule", rule)
    cgc("export", "coco", "--format", "ilso", "--root", work / "train", "--out", work / "full.json")
    cgc("export", "coco", "--format", "ilso", "--root", work / "test", "--out", work / "test.json")
    return SampleSplit(work / "train" / "imgs", work / "weak" / "annotations.json", work / "naive" / "annotations.json",
                       work / "full.json", work / "test" / "imgs", work / "test.json")


SCORES_FILE = "scores.json"  # a finished run's scores and the exact command that trained it


def cpu_preset_command(split: SampleSplit, labels: Path, run: Path, iterations: int, seed: int,
                       stop_at: int | None = None) -> list[str]:
    """`cgc train` with the cpu preset and the benchmarks' schedule, lr / 10 at 75 % of `iterations`; with
    `stop_at`, the same run stopped there."""
    command = ["train", "--preset", "cpu", "--data", labels, "--images", split.train_images, "--out", run,
               "--iterations", iterations if stop_at is None else stop_at, "--lr-steps", int(iterations * 0.75),
               "--seed", seed]
    return [str(arg) for arg in command]


def stored_record(record: Path, identity: dict, reuse: bool) -> dict | None:
    """What a finished run recorded at `record`, if `reuse` is on and it was made by the same `identity` (its
    command...): --reuse then keeps it instead of training again."""
    if not (reuse and record.is_file()):
        return None
    stored = json.loads(record.read_text())
    return stored if all(stored.get(key) == value for key, value in identity.items()) else None


def finished_training(run: Path) -> bool:
    """Whether `run` holds the last checkpoint of the training its config.json asks for (a run cut short does not)."""
    from cgc.checkpoint import checkpoint_path
    from cgc.config import load_config

    if not (run / "config.json").is_file():
        return False
    return checkpoint_path(run, load_config(run / "config.json").solver.iterations).is_file()


def clear_run_folder(run: Path, reuse: bool) -> None:
    """Remove `run` before training it afresh (`cgc train` will not overwrite one). With `reuse`, a finished run that
    has no record of this command is hours of CPU, not a leftover: stop with one line rather than delete it (a run
    cut short is redone)."""
    if reuse and finished_training(run):
        raise SystemExit(f"{run}: a finished training run without the scores of this command; --reuse keeps it: "
                         "move it away, or leave out --reuse to train it again")
    shutil.rmtree(run, ignore_errors=True)


@dataclass(frozen=True)
class Prefix:
    """A run stopped early (`train_prefix`), and the command that trained it."""

    run: Path
    command: list[str]


def train_and_score(split: SampleSplit, labels: Path, run: Path, iterations: int, seed: int, *train_options: object,
                    reuse: bool = False, start_from: Prefix | None = None) -> dict:
    """Train with the cpu preset, score on the held-out scenes; AP figures in percent.

    With `start_from` (a `train_prefix` folder) the run is a copy of that run continued to `iterations` with the
    options given, so rows that differ only after the prefix do not train it again. With `reuse`, a run folder that
    already holds the scores of this exact command is not retrained: an interrupted benchmark then resumes where it
    stopped (a run cut short never wrote its scores, so it is redone; a finished one without them stops the
    benchmark, `clear_run_folder`).
    """
    if start_from is None:
        command = cpu_preset_command(split, labels, run, iterations, seed)
    else:
        command = ["train", "--resume", "--out", str(run), "--iterations", str(iterations)]
    command += [str(arg) for arg in train_options]
    identity = {"command": command, **({"start_from": start_from.command} if start_from is not None else {})}
    stored = stored_record(run / SCORES_FILE, identity, reuse)
    if stored is not None:
        return stored["scores"]
    clear_run_folder(run, reuse)
    if start_from is not None:
        shutil.copytree(start_from.run, run)
    start = time.perf_counter()
    cgc(*command)
    scores = {**eval_scores(split, run), "train_seconds": round(time.perf_counter() - start, 1)}
    atomic_write_json(run / SCORES_FILE, {**identity, "scores": scores}, indent=1)
    return scores


def train_prefix(split: SampleSplit, labels: Path, run: Path, until: int, iterations: int, seed: int,
                 *train_options: object, reuse: bool = False) -> Prefix:
    """The first `until` iterations of a cpu-preset run of `iterations` (its schedule), stopped at a checkpoint:
    the part that runs differing only later share (see `train_and_score`'s start_from). Kept with `reuse`."""
    command = [*cpu_preset_command(split, labels, run, iterations, seed, stop_at=until),
               *(str(arg) for arg in train_options), "--set", f"run.checkpoint_every={until}"]
    record = run.with_name(run.name + ".json")  # outside the folder, which the continued runs copy
    if stored_record(record, {"command": command}, reuse) is None:
        clear_run_folder(run, reuse)
        start = time.perf_counter()
        cgc(*command)
        atomic_write_json(record, {"command": command, "train_seconds": round(time.perf_counter() - start, 1)},
                          indent=1)
    return Prefix(run, command)


def eval_scores(split: SampleSplit, run: Path, metrics_file: str = "metrics.json") -> dict:
    """`cgc eval` of the run's newest checkpoint on the held-out scenes: the table figures (percent)."""
    start = time.perf_counter()
    cgc("eval", "--checkpoint", run, "--images", split.test_images, "--data", split.test_truth,
        "--out", run / metrics_file)
    eval_seconds = time.perf_counter() - start
    return {**table_figures(json.loads((run / metrics_file).read_text())),
            "eval_seconds": round(eval_seconds, 1)}  # the model on the held-out pictures, loading included


def table_figures(metrics: dict) -> dict:
    """The figures the training tables show (percent), from what `cgc eval --out` writes."""
    boxes = metrics["boxes_as_masks"]
    point = metrics["at_score_threshold"]
    return {"AP": metrics["AP"], "AP_r50": metrics["AP_r50"], "AP_r70": metrics["AP_r70"],
            "coco_mask_AP": metrics["coco"]["AP"], "precision": point["precision"], "recall": point["recall"],
            "per_instance": point["predictions_per_instance"], "boxes_coco_AP": boxes["coco"]["AP"],
            "boxes_AP_r70": boxes["AP_r70"]}


def score_predictions(split: SampleSplit, predictions: list[dict], score_threshold: float) -> dict:
    """The table figures of one set of predictions on the held-out scenes (percent), with the same detections as
    filled boxes beside them."""
    from cgc.evaluation import evaluate_predictions

    masks = evaluate_predictions(split.test_truth, predictions, score_threshold)
    boxes = masks["boxes_as_masks"]
    point = masks["at_score_threshold"]
    return {"coco_mask_AP": masks["coco"]["AP"], "AP_r70": masks["AP_r70"], "AP": masks["AP"],
            "precision": point["precision"], "recall": point["recall"],
            "per_instance": point["predictions_per_instance"], "boxes_coco_AP": boxes["coco"]["AP"],
            "boxes_AP_r70": boxes["AP_r70"]}


def add_one_model_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """`add_run_arguments` for a benchmark that scores inference variants of one trained model."""
    add_run_arguments(parser, name, iterations=250)
    parser.add_argument("--checkpoint", type=Path, default=None, help="score this run instead of training one")
    parser.add_argument("--score-thr", type=float, default=0.5)


def one_trained_model(args: argparse.Namespace) -> tuple[SampleSplit, Path, "LoadedModel"]:
    """The sample split, and the model of --checkpoint or of a cpu-preset run trained on it (reused with --reuse)."""
    from cgc.inference import load_model

    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed, args.style)
    run = args.checkpoint
    if run is None:
        run = args.work / "run"
        train_and_score(split, split.weak_labels, run, args.iterations, args.seed, reuse=args.reuse)
    return split, run, load_model(run, "cpu")


SCORE_COLUMNS = (("coco_mask_AP", "COCO AP", 8, ".2f"), ("AP_r70", "AP^r0.7", 8, ".2f"), ("AP", "AP", 7, ".2f"),
                 ("precision", "prec.", 7, ".1f"), ("recall", "recall", 7, ".1f"), ("per_instance", "per inst.", 10, ".2f"),
                 ("boxes_coco_AP", "boxes COCO", 11, ".2f"))


def print_score_rows(title: str, rows: list[dict], first: Sequence[tuple[str, str, int, str]],
                     last: Sequence[tuple[str, str, int, str]] = ()) -> None:
    """The table of a one-model benchmark: the `first` columns that name each variant (key, header, width,
    format; a negative width aligns left, after a space), the `score_predictions` figures, then the `last` columns."""
    columns = (*first, *SCORE_COLUMNS, *last)
    print(title)
    print("".join(f" {header:<{-width - 1}}" if width < 0 else f"{header:>{width}}" for _, header, width, _ in columns))
    for row in rows:
        print("".join(f" {row[key]:<{-width - 1}{style}}" if width < 0 else f"{row[key]:>{width}{style}}"
                      for key, _, width, style in columns))


def add_variant_arguments(parser: argparse.ArgumentParser, name: str, runs: Sequence[tuple[str, tuple]]) -> None:
    """`add_run_arguments` plus --runs, the names of the variants to train (all by default)."""
    add_run_arguments(parser, name, iterations=250)
    parser.add_argument("--runs", nargs="+", default=[run for run, _ in runs], help="which rows to run")


def train_variants(args: argparse.Namespace, runs: Sequence[tuple[str, tuple]], name_key: str) -> list[dict]:
    """One cpu-preset training per named variant (its extra `cgc train` options) on the same sample split, seed and
    iterations, label update off; each row is saved as soon as it is scored."""
    split = prepare_sample_split(args.work, args.train_images, args.test_images, args.seed, args.style)
    rows = []
    for name, options in runs:
        if name not in args.runs:
            continue
        scores = train_and_score(split, split.weak_labels, run_folder(args.work, name), args.iterations, args.seed,
                                 "--update-every", 0, *options, reuse=args.reuse)
        rows.append({name_key: name, **scores})
        save_results(args, rows=rows)
    return rows


def variants_main(description: str, name: str, runs: Sequence[tuple[str, tuple]], name_key: str, title: str) -> None:
    """A whole variants benchmark: options, one training per variant, the table (``title`` is formatted with the
    parsed options, e.g. "{style} scenes, {iterations} iterations") and the JSON."""
    parser = argparse.ArgumentParser(description=description)
    add_variant_arguments(parser, name, runs)
    args = parser.parse_args()
    rows = train_variants(args, runs, name_key)
    print_table(title.format(**vars(args)), rows, name_key)
    print(f"wrote {args.out}")


def label_rounds_quality(split: SampleSplit, run: Path, labels: Path) -> dict[str, list]:
    """How the run's label rounds went: per round, how many labels were replaced (and of those, changed), and the mean
    IoU to the true training masks of the labels the run started from, then of each round (`label_miou`)."""
    from cgc.training.label_rounds import round_paths
    from cgc.weaklabels.quality import compare_to_truth

    paths, counts = [labels], {"replaced": [], "changed": []}
    for number in itertools.count(1):
        round_labels, round_log = round_paths(run, number)
        if not round_labels.is_file():
            break
        paths.append(round_labels)
        for key, values in counts.items():
            values.append(json.loads(round_log.read_text())["counts"][key])
    return {"label_miou": [compare_to_truth(path, split.full_labels).mean_iou for path in paths], **counts}


def label_change_by_quality(split: SampleSplit, before: Path, after: Path,
                            edges: tuple[float, ...] = (0.0, 0.8, 0.9, 1.0)) -> list[dict]:
    """Which labels a round improved: the true instances grouped by their IoU before the round, with the mean change
    of IoU and how many moved by more than 0.01 either way. Shows whether the rounds repair bad labels and spoil good ones."""
    import numpy as np

    from cgc.coco_files import read_instance_file
    from cgc.weaklabels.quality import matched_ious

    truth = read_instance_file(split.full_labels, "ground-truth file").masks_by_file_name()

    def per_true_instance(labels: Path) -> np.ndarray:
        by_file = read_instance_file(labels, "label file").masks_by_file_name()
        return np.concatenate([matched_ious(by_file.get(name, []), truth[name]) for name in sorted(truth)])

    iou_before, iou_after = per_true_instance(before), per_true_instance(after)
    change = iou_after - iou_before
    bands = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (iou_before >= low) & ((iou_before < high) if high < edges[-1] else (iou_before <= high))
        bands.append({"iou_before": f"{low:.1f}-{high:.1f}", "instances": int(inside.sum()),
                      "mean_change": round(float(change[inside].mean()), 4) if inside.any() else 0.0,
                      "improved": int((change[inside] > 0.01).sum()), "worsened": int((change[inside] < -0.01).sum())})
    return bands


def print_label_rounds(named_rows: list[tuple[str, dict]]) -> None:
    """Per run with label rounds, the labels' mean IoU to the truth (the labels it started from, then each round)
    and how many labels each round replaced."""
    print("Label mean IoU to the true training masks: the labels trained on first, then each round")
    width = max([22] + [len(name) + 2 for name, _ in named_rows])
    for name, row in named_rows:
        if row.get("replaced"):
            replaced = " / ".join(map(str, row["replaced"]))
            print(f"{name:<{width}}" + " ".join(f"{value:.3f}" for value in row["label_miou"])
                  + f"   replaced per round: {replaced}")


def print_table(title: str, rows: list[dict], name_key: str) -> None:
    """One row per run; the paper's figures (keys paper_AP, paper_AP_r50, paper_AP_r70) beside ours where given."""
    headers = {"paper_AP": "paper AP", "paper_AP_r50": "paper r0.5", "paper_AP_r70": "paper r0.7"}
    paper = [key for key in headers if any(row.get(key) is not None for row in rows)]
    extra = {"precision": ("prec.", 7, 1), "recall": ("recall", 7, 1), "per_instance": ("per inst.", 10, 2),
             "boxes_coco_AP": ("boxes COCO", 11, 2), "eval_seconds": ("eval s", 8, 0)}  # runs scored before these were recorded show "-"

    def cell(row: dict, key: str, width: int, digits: int) -> str:
        return f"{row[key]:>{width}.{digits}f}" if row.get(key) is not None else f"{'-':>{width}}"

    name_width = max(22, *(len(str(row[name_key])) + 2 for row in rows))
    print(title)
    print(f"{name_key:<{name_width}}{'AP':>8}{'AP^r0.5':>9}{'AP^r0.7':>9}{'COCO AP':>9}"
          + "".join(f"{label:>{width}}" for label, width, _ in extra.values()) + f"{'train s':>9}"
          + "".join(f"{headers[key]:>12}" for key in paper))
    for row in rows:
        figures = "".join(cell(row, key, 12, 2) for key in paper)
        print(f"{row[name_key]:<{name_width}}{row['AP']:>8.2f}{row['AP_r50']:>9.2f}{row['AP_r70']:>9.2f}{row['coco_mask_AP']:>9.2f}"
              + "".join(cell(row, key, width, digits) for key, (_, width, digits) in extra.items())
              + f"{row['train_seconds']:>9.0f}{figures}")
