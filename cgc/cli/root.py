"""The `cgc` group: global options, and the entry point."""

from __future__ import annotations

import os

import click

from cgc.datasets.pictures import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cgc")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None, envvar=MAX_PIXELS_ENV, show_envvar=True,
              help=f"Refuse pictures and masks whose header declares more pixels than this (width x height), before "
                   f"decoding them [default: {DEFAULT_MAX_PIXELS}].")
def cgc(max_pixels: int | None) -> None:
    """Weakly supervised salient instance segmentation (CGCNet) from boxes and SOD masks."""
    if max_pixels is not None:
        os.environ[MAX_PIXELS_ENV] = str(max_pixels)  # worker processes inherit it


def main() -> None:
    cgc(prog_name="cgc")
