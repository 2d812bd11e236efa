"""The `cgc` command line: one group, a sub-group or command per pipeline stage.

Commands are thin: they parse options, call the library and print a summary. Problems with
the user's inputs arrive as `InputError` and leave as a one-line message, never a traceback.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cgc.errors import InputError
from cgc.weaklabels.priors import RULES, PriorSettings


def reports_input_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn InputError (a user mistake) into click's one-line error and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cgc")
def cgc() -> None:
    """Weakly supervised salient instance segmentation (CGCNet) from boxes and SOD masks."""


@cgc.group()
def annotate() -> None:
    """Collect annotators' boxes and average them into one consensus box per instance."""


@annotate.command("import")
@click.option("--from-export", "export_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Label Studio export: JSON (recommended), JSON-MIN, or CSV (by .csv extension).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="COCO detection JSON of consensus boxes to write (atomically).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Import report (counts + notes on everything ignored) [default: --out with .report.json].")
@click.option("--image-key", default="image", show_default=True,
              help="Task data field holding the image; if absent, the first string field is used.")
@click.option("--label", "labels", multiple=True, default=("salient",), show_default=True,
              help="Rectangle label to accept (repeatable, case-insensitive); other labels are reported and ignored.")
@click.option("--match-iou", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.5, show_default=True,
              help="Minimum IoU for two annotators' boxes to count as the same instance.")
@click.option("--reduce", type=click.Choice(["mean", "median"]), default="mean", show_default=True,
              help="How a cluster of boxes becomes one box: coordinate-wise mean (the paper) or median.")
@click.option("--min-annotators", type=click.IntRange(min=1), default=None,
              help="Keep a box only if this many annotators drew it [default: majority of the image's annotators].")
@click.option("--images", "image_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Image folder, to read sizes of images whose annotations carry none (e.g. all empty).")
@reports_input_errors
def annotate_import(export_path: Path, out: Path, report_path: Path | None, image_key: str, labels: tuple[str, ...],
                    match_iou: float, reduce: str, min_annotators: int | None, image_dir: Path | None) -> None:
    """Average annotators' boxes from a Label Studio export into consensus COCO boxes."""
    from cgc.annotate.boxes_dataset import default_report_path, format_import_summary, import_labelstudio_boxes

    if out.is_dir():
        raise InputError("--out is a directory; give a file name", out)
    report_path = report_path or default_report_path(out)
    report = import_labelstudio_boxes(export_path, out, report_path, labels, image_key, match_iou, reduce,
                                      min_annotators, image_dir)
    for line in format_import_summary(report, out, report_path):
        click.echo(line)


@cgc.group()
def weaklabels() -> None:
    """Build instance weak labels from consensus boxes and binary salient-region masks."""


@cgc.group()
def export() -> None:
    """Convert fully annotated instance datasets to COCO JSON."""


@export.command("coco")
@click.option("--format", "dataset_format", type=click.Choice(["ilso", "soc", "coco"]), required=True,
              help="Layout of the input: ilso (imgs/ + gt/ label maps), soc (Imgs/ + 'Instance gt/gt/'), "
                   "coco (a COCO JSON file, or a folder holding one).")
@click.option("--root", type=click.Path(path_type=Path), required=True,
              help="Dataset folder (for soc: the split folder, or the root with --split; for coco: the JSON or its folder).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="COCO JSON file to write (atomically).")
@click.option("--images-subdir", default=None,
              help="Image folder under --root [default: imgs for ilso, Imgs for soc, none for coco].")
@click.option("--gt-subdir", default=None,
              help="Instance map folder under --root [default: gt for ilso, 'Instance gt/gt' for soc]; "
                   "for coco, the JSON file under --root.")
@click.option("--split", default=None, help="soc only: split folder under --root (TrainSet, ValSet or TestSet).")
@click.option("--max-warnings", default=20, show_default=True, help="Print at most this many warnings.")
@reports_input_errors
def export_coco(dataset_format: str, root: Path, out: Path, images_subdir: str | None, gt_subdir: str | None,
                split: str | None, max_warnings: int) -> None:
    """Turn a fully annotated instance dataset (an evaluation set) into COCO JSON."""
    from tqdm import tqdm

    from cgc.datasets import instances_to_coco, open_instance_dataset
    from cgc.fileio import atomic_write_json

    if out.is_dir():
        raise InputError("--out is a directory; give a file name", out)
    dataset = open_instance_dataset(dataset_format, root, images_subdir, gt_subdir, split)
    if len(dataset) == 0:
        raise InputError(f"no annotated images found ({len(dataset.warnings)} warnings, first: "
                         f"{dataset.warnings[0] if dataset.warnings else 'none'})", root)
    progress = tqdm(dataset, total=len(dataset), desc="export", unit="image", disable=None)
    coco = instances_to_coco(progress, dataset.description)
    atomic_write_json(out, coco)
    for warning in dataset.warnings[:max_warnings]:
        click.echo(f"Warning: {warning}", err=True)
    if len(dataset.warnings) > max_warnings:
        click.echo(f"Warning: ... and {len(dataset.warnings) - max_warnings} more warnings", err=True)
    click.echo(f"Wrote {out}: {len(coco['images'])} images, {len(coco['annotations'])} instances, "
               f"{len(dataset.warnings)} warnings")


@weaklabels.command("build")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Folder of the pictures.")
@click.option("--masks", "masks_dir", type=click.Path(path_type=Path), required=True,
              help="Folder of binary salient-region masks (PNG, 0/255 or 0/1), one per picture with the same stem.")
@click.option("--boxes", "boxes_path", type=click.Path(path_type=Path), required=True,
              help="Consensus boxes (COCO detection JSON, as written by `cgc annotate import`).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for annotations.json (COCO, RLE masks) and report.json.")
@click.option("--overlays", "overlays_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write a coloured overlay picture per image into this folder.")
@click.option("--rule", type=click.Choice(RULES), default=PriorSettings.rule, show_default=True,
              help="resolve-shared: the paper's priors plus one owner per shared pixel; largest-region: the priors "
                   "read literally; all-in-box: every salient pixel in the box (naive baseline).")
@click.option("--edge-weight", type=click.FloatRange(min=0), default=PriorSettings.edge_weight, show_default=True,
              help="resolve-shared: extra path cost for crossing a full-contrast colour edge (0 ignores the picture).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: every core].")
@reports_input_errors
def weaklabels_build(images_dir: Path, masks_dir: Path, boxes_path: Path, out_dir: Path, overlays_dir: Path | None,
                     rule: str, edge_weight: float, workers: int | None) -> None:
    """Turn consensus boxes and salient-region masks into COCO instance weak labels."""
    from cgc.weaklabels.builder import build_weak_labels

    settings = PriorSettings(rule=rule, edge_weight=edge_weight)
    summary = build_weak_labels(images_dir, masks_dir, boxes_path, out_dir, settings, overlays_dir, workers)
    click.echo(f"Wrote {out_dir / 'annotations.json'}: {summary.images_used} of {summary.images} images, "
               f"{summary.instances_kept} of {summary.instances} instances (mean box coverage {summary.mean_box_coverage:.2f})")
    click.echo(f"Excluded {summary.images_excluded} images and dropped {summary.instances_dropped} instances; "
               f"reasons in {out_dir / 'report.json'}")


@weaklabels.command("compare")
@click.option("--labels", "labels_path", type=click.Path(path_type=Path), required=True,
              help="Weak labels (annotations.json from `cgc weaklabels build`).")
@click.option("--truth", "truth_path", type=click.Path(path_type=Path), required=True,
              help="True instance masks as COCO JSON (e.g. from `cgc export coco`).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the figures to this JSON file.")
@reports_input_errors
def weaklabels_compare(labels_path: Path, truth_path: Path, json_path: Path | None) -> None:
    """Mean IoU of weak labels against true instance masks (Hungarian pairing per image)."""
    from dataclasses import asdict

    from cgc.fileio import atomic_write_json
    from cgc.weaklabels.quality import compare_to_truth

    quality = compare_to_truth(labels_path, truth_path)
    click.echo(f"{labels_path}: mean IoU {quality.mean_iou:.4f} over {quality.true_instances} true instances "
               f"in {quality.images_compared} images ({quality.instances_above_half:.1%} with IoU >= 0.5; "
               f"{quality.truth_images_without_labels} ground-truth images have no weak labels)")
    if json_path is not None:
        atomic_write_json(json_path, asdict(quality), indent=1)


@cgc.command("sample")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (replaced as a whole): imgs/, masks/, gt/, labelstudio_export.json.")
@click.option("--images", type=click.IntRange(min=1), default=100, show_default=True, help="Number of scenes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@click.option("--width", type=click.IntRange(min=64), default=400, show_default=True)
@click.option("--height", type=click.IntRange(min=64), default=300, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: every core].")
@reports_input_errors
def sample(out: Path, images: int, seed: int, width: int, height: int, workers: int | None) -> None:
    """Generate synthetic scenes with salient instances and five simulated annotators' boxes."""
    from cgc.sample import write_sample_dataset

    write_sample_dataset(out, images, seed=seed, height=height, width=width, workers=workers or os.cpu_count() or 1)
    click.echo(f"Wrote {images} sample images to {out} (imgs/, masks/, gt/, labelstudio_export.json)")


@cgc.command("eval")
@click.option("--predictions", "predictions_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Predicted instances: COCO results JSON [{image_id, segmentation, score}, ...] or a COCO "
                   "dataset whose annotations carry scores. Required (for now the only source of predictions).")
@click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Ground truth: COCO instance JSON (RLE or polygons), e.g. from `cgc export coco`.")
@click.option("--score-thr", "score_threshold", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="AP^r counts only predictions with at least this score (COCO AP uses all of them).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write all metrics to this JSON file (atomically).")
@click.option("--boxes-as-masks", is_flag=True, default=False,
              help="Score every predicted mask replaced by its filled box (the baseline a mask head must beat).")
@click.option("--verbose", is_flag=True, default=False, help="Show pycocotools' own COCOeval summary.")
@reports_input_errors
def eval_command(predictions_path: Path | None, data_path: Path, score_threshold: float, out: Path | None,
                 boxes_as_masks: bool, verbose: bool) -> None:
    """Score predicted salient instances: the paper's AP^r0.5 / AP^r0.7 / AP and COCO mask AP (%)."""
    from cgc.evaluation import evaluate_predictions, format_metrics_table
    from cgc.fileio import atomic_write_json

    if predictions_path is None:  # a later --checkpoint/--images option will be the alternative source
        raise click.UsageError("give --predictions RESULTS.json")
    if out is not None and out.is_dir():
        raise InputError("--out is a directory; give a file name", out)
    metrics = evaluate_predictions(data_path, predictions_path, score_threshold, boxes_as_masks, verbose)
    metrics["ground_truth_file"], metrics["predictions_file"] = str(data_path), str(predictions_path)
    for line in format_metrics_table(metrics):
        click.echo(line)
    if out is not None:
        atomic_write_json(out, metrics, indent=1)
        click.echo(f"Wrote {out}")


def main() -> None:
    cgc(prog_name="cgc")


if __name__ == "__main__":
    main()
