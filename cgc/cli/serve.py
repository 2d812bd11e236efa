"""`cgc serve`: a trained model as a Label Studio ML backend."""

from __future__ import annotations

from pathlib import Path

import click

from cgc.annotate.labelstudio_defaults import SERVE_AUTH_ENV, URL_ENV, basic_credentials
from cgc.cli.options import (
    SCORE_THRESHOLD_HELP,
    FiniteFloatRange,
    LabelStudioServer,
    device_option,
    labelstudio_server_options,
    reports_input_errors,
)
from cgc.cli.root import cgc
from cgc.serve.retraining import DEFAULT_ITERATIONS as DEFAULT_ROUND_ITERATIONS


@cgc.command("serve")
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True,
              help="The model to serve: a checkpoint file or a run folder (its newest checkpoint).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface, for a Label Studio on another machine).")
@click.option("--port", type=click.IntRange(1, 65535), default=9090, show_default=True)
@device_option
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
