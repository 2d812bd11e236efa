"""`cgc export coco` and `cgc sample`: fully labelled datasets to COCO, and generated sample scenes."""

from __future__ import annotations

import os
from pathlib import Path

import click

from cgc.cli.options import overwrite_option, reports_input_errors, workers_option
from cgc.cli.root import cgc
from cgc.errors import InputError
from cgc.fileio import check_output_file, refuse_outputs_over_inputs
from cgc.sample import DEFAULT_STYLE, SCENE_STYLES


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
@workers_option
@overwrite_option
@reports_input_errors
def sample(out: Path, images: int, seed: int, width: int, height: int, style: str, workers: int | None,
           overwrite: bool) -> None:
    """Generate synthetic scenes with salient instances and five simulated annotators' boxes."""
    from cgc.sample import write_sample_dataset

    write_sample_dataset(out, images, seed=seed, height=height, width=width, workers=workers or os.cpu_count() or 1,
                         overwrite=overwrite, style=style)
    click.echo(f"Wrote {images} sample images to {out} (imgs/, masks/, gt/, labelstudio_export.json)")
