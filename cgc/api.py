"""cgc from Python: the pipeline's steps as functions, for notebooks and scripts.

Each is a thin function over what the matching `cgc` command calls, so the two cannot drift
apart; `build_weak_labels`, `train` and `evaluate` are what `cgc weaklabels build`, `cgc train` and
`cgc eval` themselves run (each over its stage's own writer, e.g. `weaklabels.builder.write_weak_labels`). Torch is
imported only when a function needs it, so `import cgc` stays light.

    import cgc
    cgc.import_boxes("export.json", "boxes.json")
    cgc.build_weak_labels("imgs", "masks", "boxes.json", "weak")
    cgc.train("run", data="weak/annotations.json", images="imgs", preset="cpu", solver={"iterations": 250})
    model = cgc.load_model("run")
    prediction = model.predict("imgs/0001.jpg")          # boxes, scores, one mask per instance
    print(cgc.evaluate("truth.json", checkpoint="run", images="test/imgs")["coco"]["AP"])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from cgc.inference import LoadedModel, Prediction
    from cgc.training.engine import TrainResult
    from cgc.weaklabels.builder import BuildSummary

def import_boxes(export: str | Path, out: str | Path, report: str | Path | None = None,
                 images: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """A Label Studio export file -> consensus boxes (COCO detection JSON at ``out``) and its report.

    ``images``: the pictures' folder, to read the sizes of images whose annotations carry none.
    ``options``: ``match_iou``, ``reduce`` ("mean" or "median"), ``min_annotators``, ``labels``,
    ``image_key``, as `cgc annotate import` takes them. Returns the report.
    """
    from cgc.annotate.boxes_dataset import ImportOptions, import_labelstudio_boxes

    if "labels" in options:
        options["labels"] = tuple(options["labels"])
    return import_labelstudio_boxes(export, out, report, ImportOptions(**options, image_dir=images))


def build_weak_labels(images: str | Path, masks: str | Path | None, boxes: str | Path, out: str | Path,
                      overlays: str | Path | None = None, workers: int | None = None, progress: bool = True,
                      overwrite: bool = False, **settings: Any) -> BuildSummary:
    """Consensus boxes + binary salient masks -> instance weak labels (``out``/annotations.json, COCO RLE).

    ``masks`` None builds the salient region from the boxes alone. ``settings``: the rule and its
    knobs (``rule``, ``edge_weight``...), as `cgc weaklabels build` takes them.
    """
    from cgc.weaklabels.builder import write_weak_labels
    from cgc.weaklabels.priors import PriorSettings

    return write_weak_labels(images, masks, boxes, out, PriorSettings(**settings), overlays, workers, progress, overwrite)


def train(out: str | Path, data: str | Path | dict[str, Any] | None = None, images: str | Path | None = None,
          preset: str = "default", resume: bool = False, progress: bool = True, init_from: str | Path | None = None,
          **sections: dict[str, Any]) -> TrainResult:
    """Train CGCNet on weak labels into the run folder ``out``; what `cgc train` runs.

    ``data`` is the weak-label file, or the whole data section as a dict
    (``data={"annotations": "weak/annotations.json", "colour_jitter": 0.4}``). ``sections`` change
    TrainConfig's other settings over the preset, a dict per section
    (``solver={"iterations": 300}, network={"mask": {"name": "gfr"}}``). With ``resume`` the run
    continues from its newest checkpoint with its saved settings, ``sections`` given now
    overriding them. ``init_from`` (a checkpoint or run folder) fine-tunes a trained model: its
    weights and saved settings, ``sections`` over them, a fresh optimizer and learning-rate
    schedule, and the label update off unless asked for.
    """
    from cgc.config import config_from_values, fine_tuning_config, load_config, resolve_config
    from cgc.errors import InputError
    from cgc.settings import merged, with_settings
    from cgc.training.engine import train as run_training

    section = dict(data) if isinstance(data, dict) else {} if data is None else {"annotations": str(data)}
    if images is not None:
        section["images"] = str(images)
    given = merged(sections, {"data": section, "run": {"out": str(out)}})
    if resume and init_from is not None:
        raise InputError("resume continues a run and init_from starts a new one from trained weights: give one")
    if not resume and not (section.get("annotations") and section.get("images")):
        raise InputError("training needs the weak labels (data) and their pictures (images), unless resuming")
    if resume:
        config = with_settings(load_config(Path(out) / "config.json"), given)
    elif init_from is not None:
        from cgc.checkpoint import load_checkpoint
        from cgc.inference import resolve_checkpoint

        source = resolve_checkpoint(init_from)
        trained = config_from_values(load_checkpoint(source)["config"], source)
        config = fine_tuning_config(trained, source, **given)
    else:
        config = resolve_config(preset, **given)
    return run_training(config, resume=resume, progress=progress)


@dataclass
class Predictor:
    """A trained model ready to predict: `load_model` makes one."""

    loaded: LoadedModel
    score_threshold: float  # the one `cgc calibrate` recorded, else 0.5, unless given to load_model

    def predict(self, image: str | Path | np.ndarray) -> Prediction:
        """Salient instances in one picture (a file, or an RGB uint8 array), as `cgc predict` writes them:
        best score first, at least the score threshold, one instance per pixel."""
        return self.predict_batch([image])[0]

    def predict_batch(self, images: list[str | Path | np.ndarray]) -> list[Prediction]:
        """`predict` for several pictures in one pass of the network."""
        from cgc.inference import detect_batch

        pictures = [as_rgb(image) for image in images]
        found = detect_batch(self.loaded.model, pictures, self.loaded.device)
        return [detections.instances(self.score_threshold) for detections in found]

    def overlay(self, image: str | Path | np.ndarray, prediction: Prediction | None = None) -> np.ndarray:
        """The picture with each instance filled in its own colour, outlined, with its box; RGB, as the API's
        pictures are (`cgc predict` writes the same drawing)."""
        import cv2

        from cgc.inference import overlay_prediction

        rgb = as_rgb(image)
        drawn = overlay_prediction(rgb, self.predict(rgb) if prediction is None else prediction)
        return cv2.cvtColor(drawn, cv2.COLOR_BGR2RGB)


def as_rgb(image: str | Path | np.ndarray) -> np.ndarray:
    """A picture file read as RGB uint8 (`read_rgb`, with its checks), or an array taken as it is."""
    from cgc.datasets.pictures import read_rgb

    return read_rgb(image) if isinstance(image, (str, Path)) else image


def load_model(checkpoint: str | Path, device: str = "auto", score_threshold: float | None = None) -> Predictor:
    """The model of a checkpoint file or a run folder (its newest checkpoint), in eval mode."""
    from cgc.inference import load_model as load
    from cgc.score_threshold import score_threshold_of

    loaded = load(checkpoint, device)
    return Predictor(loaded, score_threshold_of(loaded, score_threshold))


def evaluate(data: str | Path, predictions: str | Path | list[dict] | None = None,
             checkpoint: str | Path | None = None, images: str | Path | None = None,
             score_threshold: float | None = None, device: str = "auto", match_by_id: bool = False,
             verbose: bool = False, progress: bool = True) -> dict[str, Any]:
    """Score predicted salient instances against the ground truth ``data`` (COCO JSON); what `cgc eval` runs.

    Give either ``predictions`` (a `cgc predict` folder, its results.json, or COCO results) or a
    ``checkpoint`` with the ground truth's ``images``. Returns the paper's AP^r / AP, COCO mask AP,
    precision and recall at the score threshold, and the same for the detections' boxes as masks.
    """
    from cgc.errors import InputError
    from cgc.evaluation import DEFAULT_SCORE_THRESHOLD, evaluate_predictions

    if (predictions is None) == (checkpoint is None):
        raise InputError("give either predictions or a checkpoint with its images")
    if checkpoint is None:
        threshold = DEFAULT_SCORE_THRESHOLD if score_threshold is None else score_threshold
        return evaluate_predictions(data, predictions, threshold, verbose, match_by_id)
    if images is None:
        raise InputError("a checkpoint needs the ground truth's pictures (images)")
    from cgc.inference import predict_for_ground_truth

    model = load_model(checkpoint, device, score_threshold)
    found = predict_for_ground_truth(model.loaded, data, images, model.score_threshold, progress)
    return evaluate_predictions(data, found, model.score_threshold, verbose)
