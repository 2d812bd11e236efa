"""CGCNet trained on real photographs: weak labels (with masks, or from boxes alone) against full supervision.

The five shared training sets (`davis17-a`, `pets`, `mugs`, `bottles`, `horses` in `../shared/data/real`:
about 520 pictures, 640 instances) are merged into one training set, labelled three ways:
- weak, masks: `cgc weaklabels build` (default rule) from a weak-label case of each set, as a user with an SOD
  dataset and Label Studio boxes has them (`cgc weaklabels case`: the union of the true instances as the
  salient-region mask, five simulated annotators' consensus boxes);
- weak, boxes alone: the same boxes, no masks;
- full: the true instance masks.
Each trains the same network with the same settings and seed (`cgc train`), the score threshold is calibrated on
`pets-val` (`cgc calibrate`) and `cgc eval` scores it there: COCO mask AP, the same detections' boxes filled as
masks beside it, AP^r0.5 / AP^r0.7, precision and recall at the threshold, predictions per true instance.
`--held-out SET` leaves one set out of training and scores on it too (kinds never seen); `--generated N` mixes N
generated photo-style scenes (`cgc sample --style photo`: objects cut from many photographs, labelled the same three
ways) into the training set, to measure whether kinds never seen gain from them; `--sets` trains on some of
the five only, and only the kinds of labels asked for (`--labels`) are built (tests/test_real_training.py runs it on
one set for two iterations).

    .venv/bin/python benchmarks/real_training.py --reuse
    .venv/bin/python benchmarks/real_training.py --reuse --mask-head gfr
    .venv/bin/python benchmarks/real_training.py --reuse --held-out horses --labels "weak, masks"
    .venv/bin/python benchmarks/real_training.py --reuse --held-out davis17-a --generated 300 --labels "weak, masks"
    .venv/bin/python benchmarks/real_training.py --reuse --seed 1 --labels "weak, masks" full   # the noise

`--seed` seeds the simulated annotators and the training alike; a seed other than 0 works in a folder of its own.
`--reuse` keeps the labels built and every run scored by the same command, redoes a run cut short, and stops with
one line at a finished run that has no scores of this command rather than delete it.
With label rounds (`--train-option=--update-every ...`), each round's labels are scored against the true masks
of the training sets too (mean IoU, and the instances the round changed, before and after).

Every step goes through the `cgc` command line. Prints a table and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path

from experiments import RESULTS, cgc, clear_run_folder, stored_record, table_figures

from cgc.fileio import atomic_write_json

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
TRAINING_SETS = ("davis17-a", "pets", "mugs", "bottles", "horses")
SCORED_ON = "pets-val"
LABELS = ("weak, masks", "weak, boxes alone", "full")
SEPARATOR = "--"  # merged pictures are named SET--FILE
GENERATED = "generated"  # the set name of the generated scenes


def merged_coco(parts: list[tuple[str, Path]]) -> dict:
    """One COCO file from one per set: file names prefixed with their set, image and annotation ids renumbered."""
    images, annotations = [], []
    for name, path in parts:
        coco = json.loads(path.read_text())
        new_ids = {}
        for image in coco["images"]:
            new_ids[image["id"]] = len(images) + 1
            images.append({**image, "id": len(images) + 1, "file_name": f"{name}{SEPARATOR}{image['file_name']}"})
        for annotation in coco["annotations"]:
            annotations.append({**annotation, "id": len(annotations) + 1, "image_id": new_ids[annotation["image_id"]]})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "salient"}]}


def generated_scenes(work: Path, pictures: int, seed: int, reuse: bool, kinds: tuple[str, ...]) -> dict[str, Path]:
    """`pictures` generated photo-style scenes in WORK/sample, labelled as the real sets are: the weak labels from
    their salient-region masks and simulated annotators' boxes, and their true masks (full)."""
    sample = work / "sample"
    if not (reuse and (sample / "labelstudio_export.json").is_file()):
        cgc("sample", "--out", sample, "--images", pictures, "--seed", seed + 7, "--style", "photo", "--overwrite")
    boxes = work / "boxes.json"
    if not (reuse and boxes.is_file()):
        cgc("annotate", "import", "--from-export", sample / "labelstudio_export.json", "--out", boxes)
    files = {}
    for labels, masks in (("weak, masks", True), ("weak, boxes alone", False)):
        if labels in kinds:
            out = work / labels.replace(", ", "-").replace(" ", "-")
            if not (reuse and (out / "annotations.json").is_file()):
                cgc("weaklabels", "build", "--images", sample / "imgs", "--boxes", boxes, "--out", out, "--overwrite",
                    *(("--masks", sample / "masks") if masks else ()))
            files[labels] = out / "annotations.json"
    if "full" in kinds:
        files["full"] = work / "full.json"
        if not (reuse and files["full"].is_file()):
            cgc("export", "coco", "--format", "ilso", "--root", sample, "--out", files["full"])
    return files


def prepare_training_data(real: Path, sets: list[str], work: Path, seed: int, reuse: bool,
                          kinds: tuple[str, ...] = LABELS, generated: int = 0) -> dict[str, Path]:
    """WORK/images (links to every set's pictures, named SET--FILE) and one COCO file per kind of labels asked for;
    with `generated` scenes mixed in."""
    images = work / "images"
    images.mkdir(parents=True, exist_ok=True)
    parts: dict[str, list[tuple[str, Path]]] = {labels: [] for labels in kinds}
    for name in sets:
        source = real / name
        case, built = work / "sets" / name / "case", work / "sets" / name
        if not (reuse and (case / "boxes.json").is_file()):
            cgc("weaklabels", "case", "--truth", source / "annotations.json", "--images", source / "images",
                "--out", case, "--seed", seed, "--overwrite")
        for labels, masks in (("weak, masks", True), ("weak, boxes alone", False)):
            if labels not in kinds:
                continue
            out = built / labels.replace(", ", "-").replace(" ", "-")
            if not (reuse and (out / "annotations.json").is_file()):
                cgc("weaklabels", "build", "--images", source / "images", "--boxes", case / "boxes.json",
                    "--out", out, "--overwrite", *(("--masks", case / "masks") if masks else ()))
            parts[labels].append((name, out / "annotations.json"))
        if "full" in kinds:
            parts["full"].append((name, source / "annotations.json"))
        for picture in (source / "images").iterdir():
            link = images / f"{name}{SEPARATOR}{picture.name}"
            if not link.is_symlink():
                link.symlink_to(picture.resolve())
    files = {}
    if generated:
        for labels, path in generated_scenes(work / "generated", generated, seed, reuse, kinds).items():
            parts[labels].append((GENERATED, path))
        for picture in (work / "generated" / "sample" / "imgs").iterdir():
            link = images / f"{GENERATED}{SEPARATOR}{picture.name}"
            if not link.is_symlink():
                link.symlink_to(picture.resolve())
    for labels, sources in parts.items():
        files[labels] = work / f"{labels.replace(', ', '-').replace(' ', '-')}.json"
        atomic_write_json(files[labels], merged_coco(sources))
    return files


def round_quality(run: Path, truth: dict[str, list[dict]]) -> list[dict]:
    """Per label round of the run (RUN/labels/round_NNN.json): the labels' mean IoU with the true instances, and of
    the instances the round changed, their mean IoU before (the weak labels) and after."""
    from cgc.coco_files import read_instance_file

    config = json.loads((run / "config.json").read_text())
    _, before = label_ious(read_instance_file(config["data"]["annotations"], "weak labels"), truth)
    rows = []
    for round_file in sorted((run / "labels").glob("round_[0-9][0-9][0-9].json")):
        log = json.loads(round_file.with_suffix(".log.json").read_text())
        changed = {entry["annotation_id"] for entry in log["instances"]
                   if entry["replaced"] and entry["iou_old_new"] < 1}
        labels = read_instance_file(round_file, "label round")
        every, after = label_ious(labels, truth)
        rows.append({"round": round_file.stem, "iteration": log["iteration"], "mean_iou": mean(every),
                     "changed": len(changed), "changed_before": mean([before[key] for key in changed if key in before]),
                     "changed_after": mean([after[key] for key in changed if key in after])})
    return rows


def label_ious(labels, truth: dict[str, list[dict]]) -> tuple[list[float], dict[int, float]]:
    """Labels paired one to one with the true instances of their picture (`quality.paired`): each true
    instance's IoU (0 unpaired), and each label's by annotation id."""
    from cgc.weaklabels.quality import paired

    by_image = labels.annotations_by_image()
    every, per_label = [], {}
    for image in labels.images:
        mine, true = by_image[image["id"]], truth.get(image["file_name"], [])
        per_true = [0.0] * len(true)
        for row, column, iou in paired([annotation["segmentation"] for annotation in mine], true):
            per_true[column] = iou
            per_label[mine[row]["id"]] = iou
        every += per_true
    return every, per_label


def mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def scores_of(metrics_file: Path) -> dict:
    """The table's figures (percent) from a `cgc eval --out` file, and the threshold they were counted at."""
    metrics = json.loads(metrics_file.read_text())
    return {**table_figures(metrics), "score_threshold": metrics.get("score_threshold")}


def train_calibrate_score(train_command: list[str], run: Path, real: Path, scored_on: list[str],
                          reuse: bool) -> dict:
    """Train (unless --reuse finds this exact command done), calibrate on pets-val, score on each set."""
    identity = {"command": train_command, "scored_on": scored_on}
    stored = stored_record(run / "scores.json", identity, reuse)
    if stored is not None:
        return stored["scores"]
    clear_run_folder(run, reuse)
    start = time.perf_counter()
    cgc(*train_command)
    scores = {"train_seconds": round(time.perf_counter() - start, 1), **calibrate_and_score(run, real, scored_on)}
    atomic_write_json(run / "scores.json", {**identity, "scores": scores}, indent=1)
    return scores


def calibrate_and_score(run: Path, real: Path, scored_on: list[str]) -> dict:
    """The run's score threshold calibrated on pets-val, then its figures on each set (by set name)."""
    validation = real / SCORED_ON
    cgc("calibrate", "--checkpoint", run, "--images", validation / "images", "--data",
        validation / "annotations.json", "--device", "cpu")
    scores = {}
    for name in scored_on:
        metrics = run / f"metrics-{name}.json"
        cgc("eval", "--checkpoint", run, "--images", real / name / "images", "--data",
            real / name / "annotations.json", "--device", "cpu", "--out", metrics)
        scores[name] = scores_of(metrics)
    return scores


COLUMNS = (("coco_mask_AP", "COCO AP", ".1f"), ("boxes_coco_AP", "boxes", ".1f"), ("AP_r50", "AP^r.5", ".1f"),
           ("AP_r70", "AP^r.7", ".1f"), ("precision", "prec.", ".0f"), ("recall", "recall", ".0f"),
           ("per_instance", "per inst.", ".2f"))


def table_cells(cell: dict) -> str:
    """One set's figures as the table's columns ('-' where a figure is missing)."""
    return "".join(f"{cell[key]:>10{style}}" if cell[key] is not None else f"{'-':>10s}" for key, _, style in COLUMNS)


def print_table(rows: list[dict], scored_on: list[str]) -> None:
    for name in scored_on:
        print(f"\nscored on {name} (threshold calibrated on {SCORED_ON}); boxes: the same detections' boxes as masks")
        print(f"{'labels':20s}" + "".join(f"{header:>10s}" for _, header, _ in COLUMNS) + f"{'train s':>10s}")
        for row in rows:
            print(f"{row['labels']:20s}" + table_cells(row["scores"][name]) + f"{row['scores']['train_seconds']:>10.0f}")


@functools.cache
def training_truth(real: Path, sets: tuple[str, ...]) -> dict[str, list[dict]]:
    """The true instance masks of the training sets, by merged file name (SET--FILE); read once per run of the
    benchmark, however many of its rows have label rounds."""
    from cgc.coco_files import read_instance_file

    return {f"{name}{SEPARATOR}{file_name}": masks for name in sets
            for file_name, masks in read_instance_file(real / name / "annotations.json").masks_by_file_name().items()}


def print_rounds(rows: list[dict]) -> None:
    for row in rows:
        if row.get("label_rounds"):
            print(f"\nlabel rounds of '{row['labels']}', against the true masks of the training sets")
            print(f"{'round':12s}{'iteration':>10s}{'mean IoU':>10s}{'changed':>9s}{'before':>9s}{'after':>9s}")
            for entry in row["label_rounds"]:
                cells = [f"{entry[key]:>9.3f}" if entry[key] is not None else f"{'-':>9s}"
                         for key in ("changed_before", "changed_after")]
                print(f"{entry['round']:12s}{entry['iteration']:>10d}{entry['mean_iou']:>10.3f}{entry['changed']:>9d}"
                      + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL, help="the folder of the real sets")
    parser.add_argument("--labels", nargs="+", choices=LABELS, default=list(LABELS), help="which rows to train")
    parser.add_argument("--held-out", choices=TRAINING_SETS, default=None,
                        help="leave this set out of training and score on it too")
    parser.add_argument("--sets", nargs="+", choices=TRAINING_SETS, default=list(TRAINING_SETS),
                        help="the sets to train on (the smoke test trains on one)")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--mask-head", default=None, help="the preset's head if not given")
    parser.add_argument("--iterations", type=int, default=None, help="the preset's if not given")
    parser.add_argument("--train-option", action="append", default=[],
                        help="one more `cgc train` option (or its value); repeat for each word")
    parser.add_argument("--generated", type=int, default=0, help="generated photo-style scenes mixed into training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="keep the data and the runs already done")
    parser.add_argument("--work", type=Path, default=RESULTS / "real-training")
    parser.add_argument("--out", type=Path, default=None, help="[benchmarks/results/real_training-NAME.json]")
    args = parser.parse_args()
    if not args.real.is_dir():
        raise SystemExit(f"{args.real}: the shared real photographs are not here (see docs/development.md)")

    sets = [name for name in args.sets if name != args.held_out]
    every_set = sorted(sets) == sorted(name for name in TRAINING_SETS if name != args.held_out)
    data = args.work / ("all" if args.held_out is None else f"without-{args.held_out}") if every_set else \
        args.work / "+".join(sets)
    data = data.with_name(data.name + f"+generated{args.generated}") if args.generated else data
    data = data.with_name(data.name + f"-seed{args.seed}") if args.seed else data  # another seed: other boxes too
    label_files = prepare_training_data(args.real, sets, data, args.seed, args.reuse, tuple(args.labels),
                                        args.generated)
    scored_on = [SCORED_ON] + ([args.held_out] if args.held_out else [])
    variant = "-".join(filter(None, [args.preset, args.mask_head, args.iterations and f"{args.iterations}it",
                                     args.held_out and f"without-{args.held_out}",
                                     args.generated and f"generated{args.generated}",
                                     args.seed and f"seed{args.seed}", *args.train_option]))
    variant = variant.replace("--", "").replace(" ", "")
    rows = []
    for labels in args.labels:
        run = data / f"run-{variant}-{labels.replace(', ', '-').replace(' ', '-')}"
        command = ["train", "--preset", args.preset, "--data", str(label_files[labels]), "--images",
                   str(data / "images"), "--out", str(run), "--seed", str(args.seed), "--device", "cpu",
                   *(("--mask-head", args.mask_head) if args.mask_head else ()),
                   *(("--iterations", str(args.iterations), "--lr-steps", str(args.iterations * 3 // 4))
                     if args.iterations else ()), *args.train_option]
        scores = train_calibrate_score(command, run, args.real, scored_on, args.reuse)
        rows.append({"labels": labels, "command": ["cgc", *command], "scores": scores})
        print(f"{labels}: {json.dumps(scores)}", flush=True)
        if (run / "labels").is_dir():
            rows[-1]["label_rounds"] = round_quality(run, training_truth(args.real, tuple(sets)))
        out = args.out or RESULTS / f"real_training-{variant}.json"
        atomic_write_json(out, {"settings": {key: str(value) for key, value in vars(args).items()},
                                "cores": os.cpu_count(), "rows": rows}, indent=1)
    print_table(rows, scored_on)
    print_rounds(rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
