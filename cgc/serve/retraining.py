"""Training from Label Studio while serving: new annotations -> consensus boxes -> weak labels -> a fine-tuned model.

Label Studio reports each new or changed annotation to the ML backend's /webhook (it registers the
webhook itself when the model is connected), and its "Start Training" button calls /train (or
/webhook with START_TRAINING). After `every` reported annotations, or when asked, a round starts
in a background thread. Each round runs the commands a user would, each in its own process, so
that the server keeps answering predictions and a failure or the memory of training never
reaches it:

    cgc annotate import --project P       the annotators' boxes, averaged into consensus boxes
    cgc weaklabels build                   the paper's priors, on the mask folder (or the boxes alone)
    cgc train --init-from CURRENT          the served model, fine-tuned on them

Round N writes to OUT/round-NNN/ (boxes.json, weaklabels/, run/, and the commands' output in
log.txt). When it ends, the new model is loaded and swapped in at once (`switch_model`): a
request is answered by the old model or the new one, never by a half-loaded one. A failed round
leaves the served model as it was, and says why in /health.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cgc.annotate.labelstudio_defaults import API_KEY_ENV, URL_ENV
from cgc.errors import InputError

log = logging.getLogger("cgc.serve")

ANNOTATION_EVENTS = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED"})
START_TRAINING = "START_TRAINING"
DEFAULT_ITERATIONS = 100


@dataclass(frozen=True)
class RetrainingSettings:
    """Where a round finds the pictures and masks, where it writes, when it starts and how long it trains."""

    images: Path  # the project's pictures, as uploaded with `cgc annotate setup`
    masks: Path | None  # binary salient-region masks; None: weak labels from the boxes alone
    out: Path  # one round-NNN/ folder per round
    every: int = 0  # reported annotations between rounds; 0: only when Label Studio asks
    iterations: int = DEFAULT_ITERATIONS
    device: str = "auto"


class RoundFailed(InputError):
    """A round's command failed: the message names it and quotes the last line it wrote."""


# A round's work: (round number, Label Studio project id, checkpoint being served) -> the new checkpoint.
RoundRunner = Callable[[int, int, Path], Path]


class Retrainer:
    """Counts Label Studio's annotation events, runs one fine-tuning round at a time, and swaps the model in."""

    def __init__(self, backend: Any, settings: RetrainingSettings, run_round: RoundRunner | None = None) -> None:
        self.backend = backend  # a SalientInstanceBackend: its predictor, images (server, key) and switch_model
        self.settings = settings
        self.run_round = run_round or self.fine_tune
        self.base_version = backend.model_version
        self.lock = threading.Lock()
        self.new_annotations = 0
        self.rounds = last_round_number(settings.out)
        self.project: int | None = None
        self.thread: threading.Thread | None = None
        self.process: subprocess.Popen | None = None
        self.state: dict[str, Any] = {"state": "idle", "new_annotations": 0}

    def status(self) -> dict[str, Any]:
        with self.lock:
            return dict(self.state, new_annotations=self.new_annotations)

    def on_webhook(self, event: dict[str, Any]) -> dict[str, Any]:
        """A Label Studio webhook event: annotations are counted, START_TRAINING starts a round, others are ignored."""
        action = event.get("action")
        if action == START_TRAINING:
            return self.on_train_request(event)
        if action not in ANNOTATION_EVENTS:
            return {"status": "ignored", "action": action}
        annotation = event.get("annotation")
        with self.lock:
            self.new_annotations += len(annotation) if isinstance(annotation, list) else 1
            counted, due = self.new_annotations, self._round_due()
        if due:
            return self.start(project_id(event.get("project")), f"{self.settings.every} new annotations")
        return {"status": "counted", "new_annotations": counted}

    def on_train_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Label Studio's "Start Training": /train (project "ID.CREATED") or the START_TRAINING webhook (project object)."""
        return self.start(project_id(request.get("project")), "Label Studio asked")

    def _round_due(self) -> bool:
        """Enough annotations reported for the next round (called under the lock)."""
        return self.settings.every > 0 and self.new_annotations >= self.settings.every

    def start(self, project: int | None, reason: str) -> dict[str, Any]:
        """Start a round now, unless one is running (the annotations reported meanwhile start the next one)."""
        with self.lock:
            if project is not None:
                self.project = project
            if self.project is None:
                raise InputError("the request names no Label Studio project to train from")
            running = self.thread is not None and self.thread.is_alive()
            if running and self.thread is not threading.current_thread():  # a round ending may start the next
                return {"status": "busy", "round": self.rounds}
            self.rounds += 1
            self.new_annotations = 0
            self.state = {"state": "training", "round": self.rounds, "reason": reason}
            self.thread = threading.Thread(target=self._round, args=(self.rounds, self.project), daemon=True,
                                           name=f"cgc-round-{self.rounds}")
            self.thread.start()
            log.info("round %d started (%s), project %d", self.rounds, reason, self.project)
            return {"status": "started", "round": self.rounds}

    def _round(self, number: int, project: int) -> None:
        from cgc.api import load_model

        try:
            checkpoint = self.run_round(number, project, self.backend.predictor.loaded.checkpoint)
            served = self.backend.predictor
            model = load_model(checkpoint, self.settings.device, served.score_threshold)
            version = f"{self.base_version}-ft{number}"
            self.backend.switch_model(model, version)
            outcome = {"state": "idle", "round": number, "model_version": version}
            log.info("round %d done: serving %s as %r", number, checkpoint, version)
        except Exception as exc:  # any failure leaves the served model as it was; /health says why
            message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            outcome = {"state": "failed", "round": number, "error": message}
            log.warning("round %d failed, still serving %s: %s", number, self.backend.model_version, message)
        with self.lock:
            self.state = outcome
            again = self._round_due()
        if again:
            self.start(None, f"{self.settings.every} new annotations during round {number}")

    def fine_tune(self, number: int, project: int, checkpoint: Path) -> Path:
        """Import, build and train as three `cgc` commands in child processes; the new run's last checkpoint."""
        from cgc.checkpoint import latest_checkpoint

        server, key = self.backend.images.server, self.backend.images.key
        if not (server and key):
            raise InputError(f"training needs the Label Studio server and a key: start cgc serve with --url (or "
                             f"{URL_ENV}) and --api-key (or {API_KEY_ENV}), or connect the model in Label Studio "
                             f"(it sends its key)")
        folder = self.settings.out / f"round-{number:03d}"
        folder.mkdir(parents=True)
        settings, iterations = self.settings, self.settings.iterations
        masks = ["--masks", str(settings.masks)] if settings.masks is not None else []
        steps = [
            ["annotate", "import", "--project", str(project), "--out", str(folder / "boxes.json"),
             "--images", str(settings.images)],
            ["weaklabels", "build", "--images", str(settings.images), *masks, "--boxes", str(folder / "boxes.json"),
             "--out", str(folder / "weaklabels")],
            ["train", "--init-from", str(checkpoint), "--data", str(folder / "weaklabels" / "annotations.json"),
             "--images", str(settings.images), "--out", str(folder / "run"), "--iterations", str(iterations),
             "--lr-steps", str(max(1, iterations * 3 // 4)), "--set", f"run.checkpoint_every={iterations}",
             "--device", settings.device],
        ]
        environment = os.environ | {URL_ENV: server, API_KEY_ENV: key}  # the key stays out of the process list
        with open(folder / "log.txt", "w") as output:
            for step in steps:
                output.write(f"$ cgc {' '.join(step)}\n")
                output.flush()
                self._run(step, output, environment, folder / "log.txt")
        found = latest_checkpoint(folder / "run")
        if found is None:
            raise RoundFailed("training wrote no checkpoint", folder / "run")
        return found

    def _run(self, step: list[str], output: Any, environment: dict[str, str], log_file: Path) -> None:
        with self.lock:
            self.process = subprocess.Popen([sys.executable, "-m", "cgc.cli", *step], stdout=output,
                                            stderr=subprocess.STDOUT, env=environment)
        code = self.process.wait()
        with self.lock:
            self.process = None
        if code != 0:
            lines = [line.strip() for line in log_file.read_text(errors="replace").splitlines() if line.strip()]
            raise RoundFailed(f"`cgc {step[0]} {step[1]}` failed (exit {code}): {lines[-1] if lines else 'no output'}",
                              log_file)

    def close(self) -> None:
        """Stop a running round's command (the server is shutting down); the round folder stays as it is."""
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()


def project_id(project: Any) -> int | None:
    """The project's id from a webhook's project object, or from /train's "ID.CREATED" project string."""
    if isinstance(project, dict):
        project = project.get("id")
    if isinstance(project, int):
        return project
    if isinstance(project, str) and re.fullmatch(r"\d+(\.\d+)?", project):
        return int(project.split(".")[0])
    return None


def last_round_number(out: Path) -> int:
    """The highest N of OUT/round-NNN/, so that a restarted server never writes over an earlier round."""
    numbers = [int(path.name[6:]) for path in out.glob("round-*") if path.name[6:].isdigit()]
    return max(numbers, default=0)
