"""The `cgc` command line: one group, a sub-group or command per pipeline stage.

Commands are thin: they parse options, call the library and print a summary. Problems with
the user's inputs arrive as `InputError` and leave as a one-line message, never a traceback.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import math
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cgc.annotate.labelstudio_defaults import SERVE_AUTH_ENV, URL_ENV, basic_credentials
from cgc.datasets.pictures import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV
from cgc.errors import InputError, RunStopped
from cgc.fileio import check_output_file, refuse_outputs_over_inputs
from cgc.refine.crf import HARD_MASK_CONFIDENCE, CRFParams
from cgc.sample import DEFAULT_STYLE, SCENE_STYLES
from cgc.serve.retraining import DEFAULT_ITERATIONS as DEFAULT_ROUND_ITERATIONS
from cgc.training.config import DEVICES
from cgc.weaklabels.priors import RULES, PriorSettings



FILE_SYSTEM_PROBLEMS = {  # errno -> what the user can fix; any other OSError is a bug and keeps its traceback
    errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
    errno.EEXIST: "a file is in the way of a folder", errno.ENOTDIR: "a file is in the way of a folder",
    errno.EISDIR: "is a folder, not a file", errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links", errno.EINVAL: "a name this file system does not allow",
    errno.ENOENT: "a folder on the way is missing", errno.EMLINK: "too many links or entries in the folder",
    errno.EFBIG: "file too large for this file system", errno.EBUSY: "in use by the system",
    errno.EXDEV: "cannot move across file systems",
}


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange that also refuses nan and inf: NaN compares false with every bound, so it passed them."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def reports_input_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn InputError (a user mistake), RunStopped (a watched-for stop, such as a diverged loss) and file-system
    refusals (read-only, full, blocked output paths) into click's one-line error and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (InputError, RunStopped) as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            if exc.errno not in FILE_SYSTEM_PROBLEMS:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}cannot write or read here: {FILE_SYSTEM_PROBLEMS[exc.errno]}") from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cgc")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, envvar=MAX_PIXELS_ENV, show_envvar=True,
              help=f"Refuse pictures and masks whose header declares more pixels than this (width x height), before "
                   f"decoding them [default: {DEFAULT_MAX_PIXELS}].")
def cgc(max_pixels: int | None) -> None:
    """Weakly supervised salient instance segmentation (CGCNet) from boxes and SOD masks."""
    if max_pixels is not None:
        os.environ[MAX_PIXELS_ENV] = str(max_pixels)  # worker processes inherit it


@cgc.group()
def annotate() -> None:
    """Collect annotators' boxes and average them into one consensus box per instance."""


def overwrite_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--overwrite: allow replacing an output folder that cgc did not write (never one that holds an input)."""
    return click.option("--overwrite", is_flag=True, default=False,
                        help="Replace the output folder even if it is not empty and was not written by this "
                             "command before.")(command)


@dataclasses.dataclass(frozen=True)
class LabelStudioServer:
    """The server options of a command: where, with which key, how long to wait for an answer."""

    url: str | None
    api_key: str | None
    timeout: float

    def connect(self) -> Any:
        from cgc.annotate.labelstudio_client import connect_label_studio

        return connect_label_studio(self.url, self.api_key, timeout=self.timeout)


def labelstudio_server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--url, --api-key (from LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY when not given) and --timeout, handed to the
    command as one ``server``."""
    from cgc.annotate.labelstudio_defaults import DEFAULT_TIMEOUT

    @functools.wraps(command)
    def with_server(*args: Any, url: str | None, api_key: str | None, timeout: float, **kwargs: Any) -> Any:
        return command(*args, server=LabelStudioServer(url, api_key, timeout), **kwargs)

    options = [
        click.option("--url", default=None, metavar="URL",
                     help="Label Studio server, e.g. http://localhost:8080 [env LABEL_STUDIO_URL]."),
        click.option("--api-key", default=None, metavar="KEY",
                     help="Personal access token or legacy token; never printed [env LABEL_STUDIO_API_KEY]."),
        click.option("--timeout", type=FiniteFloatRange(min=1), default=DEFAULT_TIMEOUT, show_default=True,
                     metavar="SECONDS", help="How long to wait for each answer of the server (transient failures "
                     "are retried 3 times on top)."),
    ]
    for option in reversed(options):
        with_server = option(with_server)
    return with_server


@annotate.command("setup")
@labelstudio_server_options
@click.option("--images", "image_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder of images to upload, one task per image (jpg, png, bmp, gif, webp).")
@click.option("--title", required=True, help="Project title; an existing project with this title is reused.")
@click.option("--annotators-per-image", type=click.IntRange(min=1), default=5, show_default=True,
              help="Overlap: how many annotators label each image (the paper used five).")
@click.option("--mask-tool", type=click.Choice(["none", "brush", "polygon"]), default="none", show_default=True,
              help="Also add a brush or polygon tool, to review masks pushed with `cgc annotate push` (a project "
                   "that exists already gets it too).")
@click.option("--connect-model", metavar="URL", default=None,
              help="Register the model server at URL (e.g. `cgc serve` at http://localhost:9090) as the project's ML "
                   "backend, so it proposes boxes and masks while people annotate.")
@click.option("--model-auth", "model_credentials", default=None, metavar="USER:PASSWORD", envvar=SERVE_AUTH_ENV,
              show_envvar=True, help="With --connect-model: the credentials `cgc serve --auth` requires, which "
              "Label Studio then sends to it.")
@reports_input_errors
def annotate_setup(server: LabelStudioServer, image_dir: Path, title: str, annotators_per_image: int,
                   mask_tool: str, connect_model: str | None, model_credentials: str | None) -> None:
    """Create (or reuse) a Label Studio project for salient boxes and upload the images it lacks."""
    from cgc.annotate.labelstudio_setup import setup_labelstudio_project
    credentials = basic_credentials(model_credentials, "--model-auth") if model_credentials and connect_model else None
    connection = server.connect()
    summary = setup_labelstudio_project(connection, image_dir, title, annotators_per_image, mask_tool,
                                        connect_model=connect_model, model_credentials=credentials)
    click.echo(f"{'Created' if summary.created else 'Reusing'} project {summary.project_id} ({title!r}), "
               f"{summary.annotators_per_image} annotators per image: {summary.project_url}")
    click.echo(f"Uploaded {len(summary.uploaded)} images; {len(summary.already_there)} were already there; "
               f"{summary.tasks_in_project} tasks in the project.")
    for original, stored in summary.renamed[:5]:
        click.echo(f"Warning: Label Studio stores {original!r} as {stored!r}; rename it so boxes match the file",
                   err=True)
    if summary.mask_tool_added:
        click.echo(f"Added the {summary.mask_tool_added} tool to the project's labelling config.")
    if summary.model:
        click.echo(f"Model at {connect_model}: {summary.model}.")
    for reason in summary.left_out:
        click.echo(f"Warning: left out {reason}", err=True)


@annotate.command("push")
@labelstudio_server_options
@click.option("--project", "project_id", type=click.IntRange(min=1), required=True, help="Label Studio project id.")
@click.option("--from", "source", type=click.Path(exists=True, path_type=Path), required=True,
              help="Consensus boxes (boxes.json), weak labels (annotations.json or its folder), or `cgc predict` "
                   "output (its folder, or results.json with images.json beside it).")
@click.option("--model-version", default=None,
              help="Name shown for these predictions; pushing the same name again replaces them [cgc-<kind>].")
@click.option("--mask-format", type=click.Choice(["auto", "brush", "polygon", "none"]), default="auto",
              show_default=True, help="How masks go up: brush RLE or polygons; auto uses the project's mask tool.")
@click.option("--label", default="salient", show_default=True, help="Label value of the pushed regions.")
@reports_input_errors
def annotate_push(server: LabelStudioServer, project_id: int, source: Path, model_version: str | None,
                  mask_format: str, label: str) -> None:
    """Upload boxes and masks as predictions (pre-annotations) for people to review and correct."""
    from cgc.annotate.labelstudio_push import push_predictions

    connection = server.connect()
    summary = push_predictions(connection, project_id, source, model_version, mask_format, label)
    click.echo(f"Pushed {summary.kind} as {summary.model_version!r} to project {project_id}: {summary.tasks_pushed} "
               f"tasks, {summary.regions} regions (masks: {summary.mask_format}); replaced {summary.replaced} older "
               f"predictions; {summary.images_without_instances} images without instances.")
    if summary.masks_skipped:
        click.echo("Warning: masks skipped: the project has no BrushLabels/PolygonLabels tag "
                   "(create it with `cgc annotate setup --mask-tool brush`)", err=True)
    for what, names in (("no task", summary.unmatched), ("several tasks", summary.ambiguous)):
        if names:
            click.echo(f"Warning: {len(names)} images match {what}: {', '.join(names[:5])}", err=True)


@annotate.command("import")
@click.option("--from-export", "export_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Label Studio export: JSON (recommended), JSON-MIN, or CSV (by .csv extension).")
@labelstudio_server_options
@click.option("--project", "project_id", type=click.IntRange(min=1), default=None,
              help="Instead of --from-export: pull this project's annotations from the server at --url.")
@click.option("--expected-annotators", type=click.IntRange(min=1), default=None,
              help="With --project: report tasks with fewer annotators [default: the project's overlap].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="COCO detection JSON of consensus boxes to write (atomically).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Import report (counts + notes on everything ignored) [default: --out with .report.json].")
@click.option("--image-key", default="image", show_default=True,
              help="Task data field holding the image; if absent, the first string field is used.")
@click.option("--label", "labels", multiple=True, default=("salient",), show_default=True,
              help="Rectangle label to accept (repeatable, case-insensitive); other labels are reported and ignored.")
@click.option("--match-iou", type=FiniteFloatRange(0.0, 1.0, min_open=True), default=0.5, show_default=True,
              help="Minimum IoU for two annotators' boxes to count as the same instance.")
@click.option("--reduce", type=click.Choice(["mean", "median"]), default="mean", show_default=True,
              help="How a cluster of boxes becomes one box: coordinate-wise mean (the paper) or median.")
@click.option("--min-annotators", type=click.IntRange(min=1), default=None,
              help="Keep a box only if this many annotators drew it [default: majority of the image's annotators].")
@click.option("--images", "image_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Image folder, to read sizes of images whose annotations carry none (e.g. all empty).")
@reports_input_errors
def annotate_import(export_path: Path | None, server: LabelStudioServer, project_id: int | None,
                    expected_annotators: int | None, out: Path, report_path: Path | None, image_key: str,
                    labels: tuple[str, ...], match_iou: float, reduce: str, min_annotators: int | None,
                    image_dir: Path | None) -> None:
    """Average annotators' boxes (from an export file or a live project) into consensus COCO boxes."""
    from cgc.annotate.boxes_dataset import (ImportOptions, default_report_path, format_import_summary,
                                            import_labelstudio_boxes)

    if (export_path is None) == (project_id is None):
        raise click.UsageError("give either --from-export FILE or --project ID (with --url and --api-key)")
    report_path = report_path or default_report_path(out)
    check_output_file(out)
    check_output_file(report_path, "--report")
    options = ImportOptions(tuple(labels), image_key, match_iou, reduce, min_annotators, image_dir)
    if project_id is not None:
        from cgc.annotate.labelstudio_pull import format_too_few_summary, import_labelstudio_project

        connection = server.connect()
        report = import_labelstudio_project(connection, project_id, out, report_path, options, expected_annotators)
        too_few = format_too_few_summary(report)
    else:
        report = import_labelstudio_boxes(export_path, out, report_path, options)
        too_few = None
    for line in format_import_summary(report, out, report_path):
        click.echo(line)
    if too_few:
        click.echo(too_few, err=True)


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

    from cgc.coco_files import write_coco_file
    from cgc.datasets import instances_to_coco, open_instance_dataset

    refuse_outputs_over_inputs({"--out": out}, {"--root": root})
    check_output_file(out)
    dataset = open_instance_dataset(dataset_format, root, images_subdir, gt_subdir, split)
    if len(dataset) == 0:
        raise InputError(f"no annotated images found ({len(dataset.warnings)} warnings, first: "
                         f"{dataset.warnings[0] if dataset.warnings else 'none'})", root)
    progress = tqdm(dataset, total=len(dataset), desc="export", unit="image", disable=None)
    coco = instances_to_coco(progress, dataset.description)
    write_coco_file(out, coco)
    for warning in dataset.warnings[:max_warnings]:
        click.echo(f"Warning: {warning}", err=True)
    if len(dataset.warnings) > max_warnings:
        click.echo(f"Warning: ... and {len(dataset.warnings) - max_warnings} more warnings", err=True)
    click.echo(f"Wrote {out}: {len(coco['images'])} images, {len(coco['annotations'])} instances, "
               f"{len(dataset.warnings)} warnings")


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
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: every core].")
@overwrite_option
@reports_input_errors
def weaklabels_build(images_dir: Path, masks_dir: Path | None, boxes_path: Path, out_dir: Path, overlays_dir: Path | None,
                     rule: str, edge_weight: float, workers: int | None, overwrite: bool) -> None:
    """Turn consensus boxes and salient-region masks (or boxes alone) into COCO instance weak labels."""
    from cgc.weaklabels.builder import build_weak_labels

    if masks_dir is None:
        click.echo("No --masks: estimating each picture's salient region by GrabCut in its boxes", err=True)
    settings = PriorSettings(rule=rule, edge_weight=edge_weight)
    summary = build_weak_labels(images_dir, masks_dir, boxes_path, out_dir, settings, overlays_dir, workers,
                                overwrite=overwrite)
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


@cgc.command("sample")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (replaced as a whole): imgs/, masks/, gt/, labelstudio_export.json.")
@click.option("--images", type=click.IntRange(min=1), default=100, show_default=True, help="Number of scenes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@click.option("--width", type=click.IntRange(min=64), default=400, show_default=True)
@click.option("--height", type=click.IntRange(min=64), default=300, show_default=True)
@click.option("--style", type=click.Choice(sorted(SCENE_STYLES)), default=DEFAULT_STYLE, show_default=True,
              help="flat: vivid blobs on a muted field; photo: textures and silhouettes from real photographs, "
                   "with overlapping, enclosed, resting-on and low-contrast instances and SOD-style mask defects.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: every core].")
@overwrite_option
@reports_input_errors
def sample(out: Path, images: int, seed: int, width: int, height: int, style: str, workers: int | None,
           overwrite: bool) -> None:
    """Generate synthetic scenes with salient instances and five simulated annotators' boxes."""
    from cgc.sample import write_sample_dataset

    write_sample_dataset(out, images, seed=seed, height=height, width=width, workers=workers or os.cpu_count() or 1,
                         overwrite=overwrite, style=style)
    click.echo(f"Wrote {images} sample images to {out} (imgs/, masks/, gt/, labelstudio_export.json)")


class OptionalFloat(click.ParamType):
    """A number, or 'none' for None (a setting that can be switched off)."""

    name = "number|none"

    def __init__(self, min_value: float | None = None) -> None:
        self.min_value = min_value

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return "none"
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number nor 'none'", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.min_value is not None and number < self.min_value:
            self.fail(f"{number:g} is below {self.min_value:g}", param, ctx)
        return number


class CommaSeparatedInts(click.ParamType):
    """Integers separated by commas, as a tuple: "200,300" -> (200, 300)."""

    name = "n[,n...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            return tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers", param, ctx)


def shown_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def allows_none(kind: Any) -> bool:
    """Whether a setting's type admits None (given as "none" on the command line)."""
    return type(None) in typing.get_args(kind)


def setting_option(setting: dataclasses.Field, kind: Any, preset_values: dict[str, Any]) -> Callable[..., Any]:
    """The click option of one setting declared with cgc.settings.option; default None = "not given"."""
    meta = setting.metadata
    name = meta["flag"] or setting.name.replace("_", "-")
    default = meta["default_text"] or shown_default(setting.default)
    if preset_values.get(setting.name, setting.default) != setting.default:
        default += f"; cpu preset: {shown_default(preset_values[setting.name])}"
    help_text = f"{meta['help']} [{default}]"
    if kind is bool:
        return click.option(f"--{name}/--no-{name}", setting.name, default=None, help=help_text)
    optional = allows_none(kind)
    base = next((arg for arg in typing.get_args(kind) if arg is not type(None)), kind) if optional else kind
    low, high = meta["minimum"], meta["maximum"]
    if meta["choices"] is not None:
        param_type: Any = click.Choice(meta["choices"])
    elif typing.get_origin(base) is tuple:
        param_type = CommaSeparatedInts()
    elif base is float and optional:
        param_type = OptionalFloat(min_value=low)
    elif base is float:
        param_type = FiniteFloatRange(low, high, min_open=meta["above_minimum"])
    elif base is int:
        param_type = click.IntRange(low, high) if low is not None or high is not None else click.INT
    else:
        param_type = click.STRING
    return click.option(f"--{name}", setting.name, type=param_type, default=None, help=help_text)


def settings_options(settings: type, preset_values: dict[str, Any] | None = None,
                     only: tuple[str, ...] | None = None) -> list[Callable[..., Any]]:
    """An option for each field of the `settings` dataclass declared with cgc.settings.option (or those in `only`),
    in field order; the help shows `preset_values` where a preset changes a default."""
    hints = typing.get_type_hints(settings)
    return [setting_option(setting, hints[setting.name], preset_values or {}) for setting in dataclasses.fields(settings)
            if "help" in setting.metadata and (only is None or setting.name in only)]


def given_settings(settings: type, values: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line (not None), with "none" turned into None where a setting allows it."""
    may_be_none = {name for name, kind in typing.get_type_hints(settings).items() if allows_none(kind)}
    names = {setting.name for setting in dataclasses.fields(settings)}
    return {key: None if key in may_be_none and value == "none" else value
            for key, value in values.items() if key in names and value is not None}


def with_options(command: Callable[..., Any], options: list[Callable[..., Any]]) -> Callable[..., Any]:
    for option in reversed(options):
        command = option(command)
    return command


def train_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--preset, then every TrainConfig setting declared with cgc.training.config.option, as options.

    None means "not given", so that a preset and --resume can fill them; "none" given for a setting that may be
    None (--backbone-weights none, --mask-window none) reaches the command as "none".
    """
    from cgc.training.config import CPU_PRESET, PRESETS, TrainConfig

    preset = click.option("--preset", type=click.Choice(list(PRESETS)), default="paper", show_default=True,
                          help="paper: the paper's settings (ResNet-101, 16k iterations, batch 4); cpu: MobileNetV2 "
                               "from the offline ImageNet weights, small inputs and head, a few hundred iterations.")
    return with_options(command, [preset, *settings_options(TrainConfig, CPU_PRESET)])


@cgc.command("train")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Weak labels (annotations.json from `cgc weaklabels build`).")
@click.option("--images", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder of the pictures.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: config.json, checkpoints/, metrics.csv, tensorboard/ (and labels/ with --update-every).")
@click.option("--resume", is_flag=True, default=False,
              help="Continue from the newest checkpoint in --out with its saved settings (options given now override them).")
@click.option("--init-from", "init_from", type=click.Path(path_type=Path), default=None,
              help="Fine-tune: start a new run from this trained model (checkpoint or run folder), with its saved "
                   "settings (options given now override them), a fresh optimizer and schedule, no label update.")
@click.option("--crf-params", "crf_params", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The label update's CRF takes the best setting of this `cgc crf tune` JSON; its values are recorded "
                   "in config.json [the CRF defaults of `cgc crf refine`].")
@train_options
@reports_input_errors
def train_command(data: Path | None, images: Path | None, out: Path, resume: bool, init_from: Path | None,
                  crf_params: Path | None, preset: str, **options: Any) -> None:
    """Train CGCNet on weak labels (single process, or under `torchrun --nproc_per_node K` with DDP)."""
    from cgc.api import train
    from cgc.training.config import TrainConfig

    if not resume and (data is None or images is None):
        raise click.UsageError("--data and --images are needed (unless --resume)")
    if resume and init_from is not None:
        raise click.UsageError("--resume continues a run, --init-from starts a new one from trained weights: give one")
    given = given_settings(TrainConfig, options)  # e.g. --mask-window none: the paper's whole-image loss
    if crf_params is not None:
        from dataclasses import asdict

        from cgc.refine.tune import read_tuned_params

        given["update_crf"] = asdict(read_tuned_params(crf_params, CRFParams()))
    result = train(out, data, images, preset, resume, init_from=init_from, **given)
    if result.main_process:  # under torchrun the other ranks stay quiet; the loss is the mean over all of them
        click.echo(f"Trained to iteration {result.iterations}; last checkpoint {result.last_checkpoint}; "
                   f"final loss {result.last_losses.get('loss', float('nan')):.4f}")


SCORE_THRESHOLD_HELP = ("Keep instances with at least this score [the threshold `cgc calibrate` recorded in the "
                        "checkpoint, else 0.5].")


@cgc.command("predict")
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True, help="A checkpoint file or a run folder (newest checkpoint).")
@click.option("--images", type=click.Path(path_type=Path), required=True, help="An image file or a folder of images.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (replaced as a whole): masks/ (indexed PNG per image), overlays/, results.json "
                   "(COCO results) and images.json (their image ids).")
@click.option("--score-thr", "score_threshold", type=FiniteFloatRange(0, 1), default=None, help=SCORE_THRESHOLD_HELP)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@overwrite_option
@reports_input_errors
def predict_command(checkpoint: Path, images: Path, out: Path, score_threshold: float | None, device: str,
                    overwrite: bool) -> None:
    """Salient instance masks for new pictures: indexed PNGs, COCO results JSON and overlays (one instance per pixel)."""
    from cgc.fileio import atomic_directory
    from cgc.inference import list_images, load_model, resolve_checkpoint, usable_images, write_predictions
    from cgc.coco_files import PREDICTIONS_KIND
    from cgc.score_threshold import score_threshold_of

    skipped: list[str] = []

    def skip(reason: str) -> None:  # a picture that cannot be read is reported, and the others go on
        click.echo(f"Skipped {reason}", err=True)
        skipped.append(reason)

    refuse_outputs_over_inputs({"--out": out}, {"--images": images, "--checkpoint": resolve_checkpoint(checkpoint)})
    paths, unreadable = usable_images(list_images(images))  # from headers, before the model loads
    for reason in unreadable:
        skip(reason)
    with atomic_directory(out, PREDICTIONS_KIND, overwrite) as folder:  # checked and writable before the model loads
        loaded = load_model(checkpoint, device)
        score_threshold = score_threshold_of(loaded, score_threshold)
        written = write_predictions(loaded, paths, folder, score_threshold, skip)
    click.echo(f"Wrote {written.instances} instances for {written.images} images to {out} (masks/, overlays/, "
               f"results.json); score threshold {score_threshold:g}"
               + (f"; skipped {len(skipped)} unreadable" if skipped else ""))


@cgc.command("eval")
@click.option("--predictions", "predictions_path", type=click.Path(path_type=Path), default=None,
              help="Predicted instances: a `cgc predict` folder (or its results.json), or a COCO dataset whose "
                   "annotations carry scores; paired with --data's pictures by file name.")
@click.option("--match-by-id", is_flag=True, default=False,
              help="With --predictions: a COCO results list without images.json whose image ids are --data's own.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Run a trained model (checkpoint file or run folder) on --images first, instead of --predictions.")
@click.option("--images", "images_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --checkpoint: folder of the ground truth's pictures.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Ground truth: COCO instance JSON (RLE or polygons), e.g. from `cgc export coco`.")
@click.option("--score-thr", "score_threshold", type=FiniteFloatRange(0.0, 1.0), default=None,
              help="AP^r, precision and recall count only predictions with at least this score (COCO AP uses all of "
                   "them) [with --checkpoint: the threshold `cgc calibrate` recorded, else 0.5; otherwise 0.5].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write all metrics to this JSON file (atomically).")
@click.option("--verbose", is_flag=True, default=False, help="Show pycocotools' own COCOeval summary.")
@reports_input_errors
def eval_command(predictions_path: Path | None, match_by_id: bool, checkpoint: Path | None, images_dir: Path | None,
                 device: str, data_path: Path, score_threshold: float | None, out: Path | None, verbose: bool) -> None:
    """Score predicted salient instances: the paper's AP^r0.5 / AP^r0.7 / AP and COCO mask AP (%), beside the same
    detections with their boxes filled as masks (the baseline), and precision / recall at the score threshold."""
    from cgc.api import evaluate
    from cgc.evaluation import format_metrics_table
    from cgc.fileio import atomic_write_json

    if (predictions_path is None) == (checkpoint is None):
        raise click.UsageError("give either --predictions FOLDER or --checkpoint CKPT --images DIR")
    if checkpoint is not None and images_dir is None:
        raise click.UsageError("--checkpoint needs --images (the ground truth's pictures)")
    from cgc.coco_files import prediction_files
    from cgc.inference import resolve_checkpoint

    refuse_outputs_over_inputs({"--out": out}, {"--data": data_path, "--images": images_dir, **prediction_files(
        predictions_path), "--checkpoint": checkpoint and resolve_checkpoint(checkpoint)})
    if out is not None:
        check_output_file(out)
    metrics = evaluate(data_path, predictions_path, checkpoint, images_dir, score_threshold, device, match_by_id,
                       verbose)
    metrics["ground_truth_file"] = str(data_path)
    metrics["predictions_file" if checkpoint is None else "checkpoint"] = str(predictions_path or checkpoint)
    for line in format_metrics_table(metrics):
        click.echo(line)
    if out is not None:
        atomic_write_json(out, metrics, indent=1)
        click.echo(f"Wrote {out}")


@cgc.command("calibrate")
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True,
              help="A checkpoint file or a run folder (its newest checkpoint gets the threshold).")
@click.option("--images", "images_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder of the validation pictures.")
@click.option("--data", "data_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Their instance labels: COCO instance JSON (true masks, or weak labels from `cgc weaklabels build`); "
                   "not the images you will report scores on.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@reports_input_errors
def calibrate_command(checkpoint: Path, images_dir: Path, data_path: Path, device: str) -> None:
    """Pick the score threshold with the best F1 on validation images and record it in the checkpoint."""
    from cgc.inference import load_model
    from cgc.score_threshold import pick_score_threshold, record_score_threshold, threshold_rows

    loaded = load_model(checkpoint, device)
    check_output_file(loaded.checkpoint, "--checkpoint")  # the threshold is written into it: fail before the work
    rows, images = threshold_rows(loaded, data_path, images_dir)
    choice = pick_score_threshold(rows, str(data_path), images)
    click.echo(f"{'score >=':>8} {'predictions':>11} {'matched':>8} {'precision':>9} {'recall':>7} {'F1':>6}")
    for row in rows:
        mark = "  <- picked" if row.threshold == choice.threshold else ""
        click.echo(f"{row.threshold:>8.2f} {row.predictions:>11} {row.matched:>8} {100 * row.precision:>9.1f} "
                   f"{100 * row.recall:>7.1f} {100 * row.f1:>6.1f}{mark}")
    record_score_threshold(loaded.checkpoint, choice)
    click.echo(f"Score threshold {choice.threshold:g} (F1 {100 * choice.f1:.1f} on {images} images, IoU >= 0.5) "
               f"recorded in {loaded.checkpoint}")


@cgc.group()
def crf() -> None:
    """Dense CRF refinement of predicted instances (paper eqs. 3-4) and its parameter search."""


CONFIDENCE_OPTION = click.option(
    "--confidence", type=FiniteFloatRange(0.5, 1.0, min_open=True, max_open=True), default=HARD_MASK_CONFIDENCE,
    show_default=True, help="Probability given to a hard predicted mask's inside (1 - it outside) before the CRF; "
                            "higher moves edges less.")


def crf_params_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The CRF's energy parameters (CRFParams) as options, then --confidence; defaults are the paper's final values."""
    return with_options(command, [*settings_options(CRFParams), CONFIDENCE_OPTION])


@crf.command("refine")
@click.option("--predictions", "predictions_dir", type=click.Path(path_type=Path), required=True,
              help="Prediction folder from `cgc predict` (results.json + images.json).")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True,
              help="Folder of the pictures, by images.json file_name.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Prediction folder to write (replaced as a whole): the refined results.json (same format), "
                   "images.json and crf.json (settings used).")
@crf_params_options
@click.option("--params", "params_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start from the 'best' setting of a `cgc crf tune` JSON; CRF options given here override it.")
@click.option("--whole-image", is_flag=True, default=False,
              help="Run the CRF on the whole picture per instance instead of the instance's enlarged box (slower).")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: every core].")
@overwrite_option
@reports_input_errors
def crf_refine(predictions_dir: Path, images_dir: Path, out_dir: Path, confidence: float, params_path: Path | None,
               whole_image: bool, workers: int | None, overwrite: bool, **options: Any) -> None:
    """Refine every predicted instance mask with the dense CRF against its picture."""
    from cgc.refine.tune import read_tuned_params, refine_prediction_folder

    # the predictions and pictures are guarded by refine_prediction_folder itself; the tuned file only here
    refuse_outputs_over_inputs({"--out": out_dir}, {"--params": params_path})
    params = read_tuned_params(params_path, CRFParams()) if params_path is not None else CRFParams()
    params = dataclasses.replace(params, **given_settings(CRFParams, options))
    summary = refine_prediction_folder(predictions_dir, images_dir, out_dir, params, confidence, not whole_image,
                                       workers or os.cpu_count() or 1, overwrite=overwrite)
    click.echo(f"Wrote {out_dir / 'results.json'}: {summary.instances} instances in {summary.images} images refined "
               f"(w1={params.w1:g}, theta_alpha={params.theta_alpha:g}, theta_beta={params.theta_beta:g}); "
               f"{summary.emptied} emptied by the CRF kept as predicted")


@crf.command("tune")
@click.option("--predictions", "predictions_dir", type=click.Path(path_type=Path), required=True,
              help="Prediction folder from `cgc predict` on validation images (results.json + images.json).")
@click.option("--gt", "gt_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Ground truth COCO instance JSON; images matched to images.json by file_name.")
@click.option("--images", "images_dir", type=click.Path(path_type=Path), required=True, help="Folder of the pictures.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("tune.json"), show_default=True,
              help="JSON with every evaluated setting and the best one (input to `cgc crf refine --params`).")
@click.option("--subset", type=click.IntRange(min=1), default=100, show_default=True,
              help="Use the first N images (by file name) that have ground truth.")
@click.option("--w1-range", default="1:1:10", show_default=True, help="start:step:stop (stop inclusive).")
@click.option("--theta-alpha-range", default="50:5:100", show_default=True, help="start:step:stop.")
@click.option("--theta-beta-range", default="5:1:15", show_default=True, help="start:step:stop.")
@click.option("--coarse-stride", type=click.IntRange(min=1), default=2, show_default=True,
              help="Coarse pass: every Nth value of each range; the fine pass then scores the full grid around the best.")
@functools.partial(with_options, options=[*settings_options(CRFParams, only=("w2", "theta_gamma", "iterations")),
                                          CONFIDENCE_OPTION])
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Worker processes [default: every core].")
@reports_input_errors
def crf_tune_command(predictions_dir: Path, gt_path: Path, images_dir: Path, out: Path, subset: int, w1_range: str,
                     theta_alpha_range: str, theta_beta_range: str, coarse_stride: int, confidence: float,
                     workers: int | None, **fixed: Any) -> None:
    """The paper's coarse-to-fine grid search of the CRF parameters on validation predictions (the others fixed)."""
    from cgc.coco_files import prediction_files
    from cgc.refine.tune import parse_range, tune_crf, write_tune_result

    refuse_outputs_over_inputs({"--out": out}, {"--gt": gt_path, "--images": images_dir,
                                                **prediction_files(predictions_dir)})
    check_output_file(out)
    ranges = {}
    for name, text in (("--w1-range", w1_range), ("--theta-alpha-range", theta_alpha_range),
                       ("--theta-beta-range", theta_beta_range)):
        try:
            ranges[name] = parse_range(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=name) from None
    base = CRFParams(**given_settings(CRFParams, fixed))
    result = tune_crf(predictions_dir, gt_path, images_dir, subset, ranges["--w1-range"], ranges["--theta-alpha-range"],
                      ranges["--theta-beta-range"], base, coarse_stride, confidence, workers or os.cpu_count() or 1)
    write_tune_result(out, result, subset=subset, confidence=confidence, predictions=str(predictions_dir),
                      ground_truth=str(gt_path))
    best = result.best
    click.echo(f"Best of {len(result.evaluated)} settings on {result.images} images ({result.instances} instances): "
               f"w1={best['w1']:g} theta_alpha={best['theta_alpha']:g} theta_beta={best['theta_beta']:g} "
               f"(w2={best['w2']:g}, theta_gamma={best['theta_gamma']:g}) mean IoU {best['mean_iou']:.4f} "
               f"(without CRF {result.baseline_mean_iou:.4f})")
    click.echo(f"Wrote {out}")


@cgc.command("serve")
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True,
              help="The model to serve: a checkpoint file or a run folder (its newest checkpoint).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface, for a Label Studio on another machine).")
@click.option("--port", type=click.IntRange(1, 65535), default=9090, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--score-thr", "score_threshold", type=FiniteFloatRange(0.0, 1.0), default=None, help=SCORE_THRESHOLD_HELP)
@click.option("--model-version", default=None,
              help="The name Label Studio shows for these predictions [cgc-<run folder>-<checkpoint>].")
@click.option("--train-images", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Turn on training from Label Studio: the project's pictures (the folder given to `cgc annotate "
                   "setup`). A round imports the boxes, builds weak labels and fine-tunes the served model.")
@click.option("--train-masks", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Salient-region masks for the rounds' weak labels [none: from the boxes alone].")
@click.option("--train-out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where round N writes its boxes, weak labels, run and log: OUT/round-NNN/ (needed with "
                   "--train-images).")
@click.option("--train-every", type=click.IntRange(min=0), default=0, show_default=True,
              help="Start a round after this many new annotations; 0: only when Label Studio asks (Start Training).")
@click.option("--train-iterations", type=click.IntRange(min=1), default=DEFAULT_ROUND_ITERATIONS, show_default=True,
              help="Fine-tuning iterations per round.")
@click.option("--allow-image-host", "image_hosts", multiple=True, metavar="HOST[:PORT]",
              help="Also fetch task pictures from this host (repeatable; e.g. a bucket the tasks link to). Pictures "
                   "come from the Label Studio server at --url only otherwise.")
@click.option("--auth", "credentials", default=None, metavar="USER:PASSWORD", envvar=SERVE_AUTH_ENV,
              show_envvar=True, help="Require these credentials (HTTP basic auth) of every request: enter them "
              "in Label Studio's model settings (Authentication: Basic Auth). Use the environment variable to "
              "keep the password out of the process list.")
@labelstudio_server_options
@reports_input_errors
def serve_command(checkpoint: Path, host: str, port: int, device: str, score_threshold: float | None,
                  model_version: str | None, train_images: Path | None, train_masks: Path | None,
                  train_out: Path | None, train_every: int, train_iterations: int, image_hosts: tuple[str, ...],
                  credentials: str | None, server: LabelStudioServer) -> None:
    """Serve a trained model as a Label Studio ML backend (Settings > Model > Connect Model: http://HOST:PORT).

    Label Studio then asks it for boxes and masks of salient instances whenever an annotator opens a task.
    The tasks' pictures are fetched from the Label Studio server at --url (or LABEL_STUDIO_URL) only, with
    --api-key (or LABEL_STUDIO_API_KEY, else the key Label Studio sends when it connects the model). With
    --train-images it also learns from the project's annotations, in the background, and serves each
    fine-tuned model as soon as it is ready."""
    import logging

    import uvicorn

    from cgc.api import load_model
    from cgc.serve.app import create_app
    from cgc.serve.backend import SalientInstanceBackend
    from cgc.serve.retraining import Retrainer, RetrainingSettings
    from cgc.serve.task_images import TaskImages

    if train_images is None and (train_masks or train_out or train_every):
        raise click.UsageError("--train-masks, --train-out and --train-every need --train-images")
    if train_images is not None and train_out is None:
        raise click.UsageError("--train-images needs --train-out, the folder for the training rounds")
    user_password = basic_credentials(credentials, "--auth") if credentials is not None else None
    images = TaskImages(server.url, server.api_key, image_hosts, timeout=server.timeout)
    predictor = load_model(checkpoint, device, score_threshold)
    source = predictor.loaded.checkpoint
    version = model_version or f"cgc-{source.parent.parent.name}-{source.stem}"
    backend = SalientInstanceBackend(predictor, version, images)
    retrainer = None
    if train_images is not None:
        settings = RetrainingSettings(train_images, train_masks, train_out, train_every, train_iterations, device)
        retrainer = Retrainer(backend, settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    click.echo(f"Serving {source} as {version!r} at http://{host}:{port} (score >= {predictor.score_threshold:.2f})")
    if retrainer is not None:
        when = f"every {train_every} new annotations and " if train_every else ""
        click.echo(f"Training from Label Studio: {when}when asked, {train_iterations} iterations a round, "
                   f"into {train_out}/round-NNN/")
    if images.server is None:
        click.echo(f"Warning: no --url (or {URL_ENV}): tasks' pictures cannot be fetched", err=True)
    if user_password is None and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"Warning: anyone who can reach {host}:{port} can use this model server: give it --auth "
                   f"(or {SERVE_AUTH_ENV})", err=True)
    uvicorn.run(create_app(backend, retrainer, user_password), host=host, port=port, log_level="warning")


def main() -> None:
    cgc(prog_name="cgc")


if __name__ == "__main__":
    main()
