"""`cgc crf`: dense CRF refinement of predictions, and its parameter search."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cgc.cli.options import (
    FiniteFloatRange,
    given_settings,
    overwrite_option,
    reports_input_errors,
    settings_options,
    with_options,
    workers_option,
)
from cgc.cli.root import cgc
from cgc.fileio import check_output_file, refuse_outputs_over_inputs
from cgc.refine.crf import HARD_MASK_CONFIDENCE, CRFParams


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
@workers_option
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
@workers_option
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
