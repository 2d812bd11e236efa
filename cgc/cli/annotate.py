"""`cgc annotate`: Label Studio projects, and annotators' boxes averaged into consensus boxes."""

from __future__ import annotations

from pathlib import Path

import click

from cgc.annotate.labelstudio_defaults import SERVE_AUTH_ENV, basic_credentials
from cgc.cli.options import FiniteFloatRange, LabelStudioServer, labelstudio_server_options, reports_input_errors
from cgc.cli.root import cgc
from cgc.fileio import check_output_file


@cgc.group()
def annotate() -> None:
    """Collect annotators' boxes and average them into one consensus box per instance."""


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
    from cgc.annotate.boxes_dataset import (
        ImportOptions,
        default_report_path,
        format_import_summary,
        import_labelstudio_boxes,
    )

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
