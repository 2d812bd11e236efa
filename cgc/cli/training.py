"""`cgc train`: its options generated from TrainConfig, presets, resume and fine-tuning."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cgc.cli.options import (given_settings, parse_set_values, reports_input_errors, set_only_names, settings_options,
                             with_options)
from cgc.cli.root import cgc
from cgc.config import TrainConfig
from cgc.settings import merged


def train_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--preset, then every TrainConfig setting declared with cgc.config.option, as options.

    None means "not given", so that a preset and --resume can fill them; "none" given for a setting that may be
    None (--backbone-weights none) reaches the command as "none".
    """
    from cgc.config import CPU_PRESET, DEFAULT_PRESET, PRESETS

    described = "; ".join(f"{preset.name}: {preset.summary}" for preset in PRESETS.values())
    preset = click.option("--preset", type=click.Choice(list(PRESETS)), default=DEFAULT_PRESET, show_default=True,
                          help=f"Settings to start from ({described}).")
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
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A settings file over the preset: JSON as the presets are written, {\"settings\": {SECTION: "
                   "{NAME: VALUE}}} (cgc/presets/); --set and the options win over it.")
@click.option("--set", "assignments", multiple=True, metavar="PATH=VALUE",
              help="One setting by its path, repeatable (e.g. --set network.mask.output_window_per_side=none --set "
                   "network.min_size=600; --set label_update.crf=FILE takes the best setting of a `cgc crf tune` file). "
                   "Every setting without an option of its own (the command reference lists each, with its default): "
                   + ", ".join(set_only_names(TrainConfig, experimental=False)) + "; and the experimental ones, "
                   "measured not to help: " + ", ".join(set_only_names(TrainConfig, experimental=True)) + ".")
@train_options
@reports_input_errors
def train_command(data: Path | None, images: Path | None, out: Path, resume: bool, init_from: Path | None,
                  config_file: Path | None, assignments: tuple[str, ...], preset: str, **options: Any) -> None:
    """Train CGCNet on weak labels (single process, or under `torchrun --nproc_per_node K` with DDP)."""
    from cgc.api import train

    if not resume and (data is None or images is None):
        raise click.UsageError("--data and --images are needed (unless --resume)")
    if resume and init_from is not None:
        raise click.UsageError("--resume continues a run, --init-from starts a new one from trained weights: give one")
    given = merged(settings_file(config_file), parse_set_values(TrainConfig, assignments))
    given = merged(given, given_settings(TrainConfig, options))  # e.g. --backbone-weights none: a random body
    paths = {key: str(value) for key, value in (("annotations", data), ("images", images)) if value is not None}
    given = merged(given, {"data": paths})  # --data and --images, beside any data.* given by --set
    result = train(out, preset=preset, resume=resume, init_from=init_from, **given)
    if result.main_process:  # under torchrun the other ranks stay quiet; the loss is the mean over all of them
        click.echo(f"Trained to iteration {result.iterations}; last checkpoint {result.last_checkpoint}; "
                   f"final loss {result.last_losses.get('loss', float('nan')):.4f}")


def settings_file(path: Path | None) -> dict[str, Any]:
    """The settings of a --config file (the presets' format), each checked to name a training setting."""
    from cgc.config import read_settings_file

    return {} if path is None else read_settings_file(path, "settings file")["settings"]
