"""`cgc predict`, `cgc eval` and `cgc calibrate`: a trained model on pictures, scored, and its threshold."""

from __future__ import annotations

from pathlib import Path

import click

from cgc.cli.options import (
    SCORE_THRESHOLD_HELP,
    FiniteFloatRange,
    device_option,
    overwrite_option,
    reports_input_errors,
)
from cgc.cli.root import cgc
from cgc.fileio import check_output_file, refuse_outputs_over_inputs


@cgc.command("predict")
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True, help="A checkpoint file or a run folder (newest checkpoint).")
@click.option("--images", type=click.Path(path_type=Path), required=True, help="An image file or a folder of images.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write (replaced as a whole): masks/ (indexed PNG per image), overlays/, results.json "
                   "(COCO results) and images.json (their image ids).")
@click.option("--score-thr", "score_threshold", type=FiniteFloatRange(0, 1), default=None, help=SCORE_THRESHOLD_HELP)
@device_option
@overwrite_option
@reports_input_errors
def predict_command(checkpoint: Path, images: Path, out: Path, score_threshold: float | None, device: str,
                    overwrite: bool) -> None:
    """Salient instance masks for new pictures: indexed PNGs, COCO results JSON and overlays (one instance per pixel)."""
    from cgc.coco_files import PREDICTIONS_KIND
    from cgc.fileio import atomic_directory
    from cgc.inference import list_images, load_model, resolve_checkpoint, usable_images, write_predictions
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
@device_option
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
@device_option
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
