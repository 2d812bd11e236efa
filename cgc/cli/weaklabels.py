"""`cgc weaklabels`: instance weak labels from boxes and salient-region masks, cases and their scores."""

from __future__ import annotations

from pathlib import Path

import click

from cgc.cli.options import FiniteFloatRange, overwrite_option, reports_input_errors, workers_option
from cgc.cli.root import cgc
from cgc.fileio import check_output_file, refuse_outputs_over_inputs
from cgc.weaklabels.priors import PriorSettings
from cgc.weaklabels.rules import RULES


@cgc.group()
def weaklabels() -> None:
    """Build instance weak labels from consensus boxes and binary salient-region masks."""


@weaklabels.command("build")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Folder of the pictures.")
@click.option("--masks", "masks_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of binary salient-region masks (PNG, 0/255 or 0/1), one per picture with the same stem. "
                   "Without it, the salient region is estimated by GrabCut in each box (less accurate: docs/method/weak-labels.md).")
@click.option("--boxes", "boxes_path", type=click.Path(path_type=Path), required=True,
              help="Consensus boxes (COCO detection JSON, as written by `cgc annotate import`).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (replaced as a whole): annotations.json (COCO, RLE masks) and report.json.")
@click.option("--overlays", "overlays_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write a coloured overlay picture per image into this folder (replaced as a whole).")
@click.option("--rule", type=click.Choice(RULES), default=PriorSettings.rule, show_default=True,
              help="resolve-shared: the paper's priors plus one owner per shared pixel (by geodesic distance); "
                   "appearance: the same seeds, shared pixels by colour models and a graph cut; largest-region: the "
                   "priors read literally; all-in-box: every salient pixel in the box (naive baseline).")
@click.option("--edge-weight", type=FiniteFloatRange(min=0), default=PriorSettings.edge_weight, show_default=True,
              help="resolve-shared and appearance: extra path cost for crossing a full-contrast colour edge (0 ignores the picture).")
@workers_option
@overwrite_option
@reports_input_errors
def weaklabels_build(images_dir: Path, masks_dir: Path | None, boxes_path: Path, out_dir: Path, overlays_dir: Path | None,
                     rule: str, edge_weight: float, workers: int | None, overwrite: bool) -> None:
    """Turn consensus boxes and salient-region masks (or boxes alone) into COCO instance weak labels."""
    from cgc.api import build_weak_labels

    if masks_dir is None:
        click.echo("No --masks: estimating each picture's salient region by GrabCut in its boxes", err=True)
    summary = build_weak_labels(images_dir, masks_dir, boxes_path, out_dir, overlays_dir, workers, overwrite=overwrite,
                                rule=rule, edge_weight=edge_weight)
    click.echo(f"Wrote {out_dir / 'annotations.json'}: {summary.images_used} of {summary.images} images, "
               f"{summary.instances_kept} of {summary.instances} instances (mean box coverage {summary.mean_box_coverage:.2f})")
    click.echo(f"Excluded {summary.images_excluded} images and dropped {summary.instances_dropped} instances; "
               f"reasons in {out_dir / 'report.json'}")


@weaklabels.command("case")
@click.option("--truth", "truth_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Fully labelled pictures: COCO instance JSON (RLE or polygons), e.g. a small subset of your own.")
@click.option("--images", "images_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder of those pictures.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (replaced as a whole): masks/ (salient-region masks), labelstudio_export.json "
                   "(simulated annotators) and boxes.json (their consensus), the inputs of `weaklabels build`.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same case.")
@click.option("--degrade", is_flag=True, default=False,
              help="Degrade the masks as real SOD masks are: edges moved in or out by up to 3 pixels, up to two "
                   "holes, one object of a picture left out one time in five.")
@overwrite_option
@reports_input_errors
def weaklabels_case(truth_path: Path, images_dir: Path, out: Path, seed: int, degrade: bool, overwrite: bool) -> None:
    """Make a weak-label case from fully labelled pictures, to find the rule that suits them: the union of the true
    instances as the salient-region mask, and simulated annotators' boxes."""
    from cgc.weaklabels.cases import MaskDefects, write_weak_label_case

    summary = write_weak_label_case(truth_path, images_dir, out, seed, MaskDefects() if degrade else None,
                                    overwrite=overwrite)
    for reason in summary.skipped:
        click.echo(f"Warning: left out {reason}", err=True)
    click.echo(f"Wrote {out}: {summary.pictures} pictures, {summary.instances} true instances, {summary.boxes} "
               f"consensus boxes. Next: cgc weaklabels build --images {images_dir} --masks {out / 'masks'} "
               f"--boxes {out / 'boxes.json'} --out LABELS, then cgc weaklabels compare --labels LABELS/annotations.json "
               f"--truth {truth_path} --boxes {out / 'boxes.json'} --masks {out / 'masks'}")


@weaklabels.command("compare")
@click.option("--labels", "labels_path", type=click.Path(path_type=Path), required=True,
              help="Weak labels (annotations.json from `cgc weaklabels build`).")
@click.option("--truth", "truth_path", type=click.Path(path_type=Path), required=True,
              help="True instance masks as COCO JSON (e.g. from `cgc export coco`).")
@click.option("--boxes", "boxes_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The consensus boxes the labels were built from: also split the figure by whether a true "
                   "instance's box overlaps another.")
@click.option("--masks", "masks_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --boxes, the salient-region masks they were built from: also the ceiling, each true instance "
                   "cut to its mask and box.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the figures to this JSON file.")
@reports_input_errors
def weaklabels_compare(labels_path: Path, truth_path: Path, boxes_path: Path | None, masks_dir: Path | None,
                       json_path: Path | None) -> None:
    """Mean IoU of weak labels against true instance masks (Hungarian pairing per image)."""
    from dataclasses import asdict

    from cgc.fileio import atomic_write_json
    from cgc.weaklabels.quality import compare_to_truth

    if masks_dir is not None and boxes_path is None:
        raise click.UsageError("--masks needs --boxes (the ceiling cuts each true instance to its box)")
    refuse_outputs_over_inputs({"--json": json_path}, {"--labels": labels_path, "--truth": truth_path,
                                                       "--boxes": boxes_path, "--masks": masks_dir})
    if json_path is not None:
        check_output_file(json_path, "--json")
    quality = compare_to_truth(labels_path, truth_path, boxes_path, masks_dir)
    click.echo(f"{labels_path}: mean IoU {quality.mean_iou:.4f} over {quality.true_instances} true instances "
               f"in {quality.images_compared} images ({quality.instances_above_half:.1%} with IoU >= 0.5; "
               f"{quality.truth_images_without_labels} ground-truth images have no weak labels)")
    if quality.overlapping_instances is not None:
        shown = {key: "-" if value is None else f"{value:.4f}" for key, value in
                 (("overlapping", quality.mean_iou_overlapping), ("apart", quality.mean_iou_apart))}
        click.echo(f"  {quality.overlapping_instances} instances whose box overlaps another: {shown['overlapping']}; "
                   f"the others: {shown['apart']}")
    if quality.ceiling_mean_iou is not None:
        click.echo(f"  ceiling (each true instance cut to its mask and box): {quality.ceiling_mean_iou:.4f}")
    if json_path is not None:
        atomic_write_json(json_path, asdict(quality), indent=1)
