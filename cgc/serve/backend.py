"""What the ML backend answers, apart from the web framework: Label Studio's requests in, its results out.

The protocol is the one Label Studio 1.23 speaks (`label_studio/ml/api_connector.py`):
- `/setup` sends the project's labelling config (`schema`), the server's URL (`hostname`) and a
  key (`access_token`); the answer names the `model_version`. The URL is ignored: pictures come
  from the server the operator named (`TaskImages`), whatever a request says; the key is taken
  only if the operator gave none.
- `/predict` sends `tasks` and the `label_config`; the answer holds one prediction per task, in
  order: `{"result": [...regions], "score": s, "model_version": v}`.

Each predicted instance becomes a box (`rectanglelabels`) and, where the labelling config has a
mask tool, its mask (`brushlabels` in Label Studio's RLE, or `polygonlabels`), as `cgc annotate
push` writes them. A task whose picture is missing or cannot be read gets an empty prediction
with an `error` naming the task; if no task of a request can be predicted, the request fails
with that error (`PredictionError`), so Label Studio shows it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cgc.annotate.labelstudio_client import task_image_ref
from cgc.annotate.labelstudio_config import ControlTag, control_tags
from cgc.annotate.labelstudio_push import RegionSource, regions_for_image
from cgc.errors import InputError
from cgc.serve.task_images import REQUEST_PIXELS, PixelBudget, TaskImages

if TYPE_CHECKING:
    import numpy as np

    from cgc.api import Predictor
    from cgc.inference import Prediction


MAX_TASKS = 100  # Label Studio sends the tasks an annotator opens, or a batch a user selects


class PredictionError(InputError):
    """A request that cannot be answered with any prediction: the message says which task or config, and why."""


@dataclass(frozen=True)
class LabellingTarget:
    """Where predictions go in a labelling config: its tags, the mask format, the label and the image's data key."""

    tags: dict[str, ControlTag]
    mask_format: str  # "brush", "polygon" or "none"
    label: str
    image_key: str


def labelling_target(label_config: str) -> LabellingTarget:
    """The tags of a labelling config that can take boxes and masks; PredictionError if none can."""
    from label_studio_sdk.label_interface import LabelInterface

    tags = control_tags(label_config)
    if not tags:
        raise PredictionError("the labelling config has no RectangleLabels, BrushLabels or PolygonLabels tag "
                              "for the predictions")
    first = tags.get("rectangle") or tags.get("brush") or tags["polygon"]
    image = LabelInterface(label_config).get_object(first.to_name)
    image_key = str(getattr(image, "value", "") or "$image").lstrip("$")
    mask_format = next((kind for kind in ("brush", "polygon") if kind in tags), "none")
    return LabellingTarget(tags, mask_format, first.label or "salient", image_key)


class SalientInstanceBackend:
    """The loaded model (once, at start) and the task pictures' source, answering /setup and /predict."""

    def __init__(self, predictor: Predictor, model_version: str, images: TaskImages) -> None:
        self.predictor = predictor
        self.model_version = model_version
        self.versions = [model_version]  # every model served since the start, oldest first
        self.images = images
        self.request_pixels = REQUEST_PIXELS  # decoded pixels one request may use
        self.lock = threading.Lock()  # one request at a time uses the model and the picture cache

    def switch_model(self, predictor: Predictor, model_version: str) -> None:
        """Serve another model (loaded beforehand): the request running now finishes with the old one."""
        with self.lock:
            self.predictor, self.model_version = predictor, model_version
            self.versions.append(model_version)

    def setup(self, request: dict[str, Any]) -> dict[str, Any]:
        """Take the server's URL and key for fetching pictures; check the labelling config can take predictions."""
        with self.lock:
            return self._setup(request)

    def _setup(self, request: dict[str, Any]) -> dict[str, Any]:
        key = request.get("access_token")
        if isinstance(key, str):
            self.images.accept_key(key)
        if request.get("schema"):
            labelling_target(request["schema"])
        return {"model_version": self.model_version}

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        """One prediction per task, in order; the pictures that can be read go through the network together."""
        with self.lock:
            return self._predict(request)

    def _predict(self, request: dict[str, Any]) -> dict[str, Any]:
        tasks = request.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise PredictionError("the request holds no tasks")
        if len(tasks) > MAX_TASKS:
            raise PredictionError(f"the request holds {len(tasks)} tasks, more than {MAX_TASKS}: send fewer at a time")
        target = labelling_target(str(request.get("label_config") or "<View/>"))
        pictures, errors = {}, {}
        budget = PixelBudget(self.request_pixels)
        for index, task in enumerate(tasks):
            name = f"task {task.get('id', index) if isinstance(task, dict) else index}"
            try:
                reference, _ = task_image_ref(task.get("data") if isinstance(task, dict) else None, target.image_key)
                if reference is None:
                    raise InputError(f"has no image under data.{target.image_key}")
                pictures[index] = self.images.rgb(reference, budget)
            except InputError as exc:
                errors[index] = f"{name}: {exc}"
        if not pictures:
            raise PredictionError("; ".join(errors.values()))
        found = dict(zip(pictures, self.predictor.predict_batch(list(pictures.values()))))
        return {"results": [self._answer(found.get(index), pictures.get(index), target, errors.get(index))
                            for index in range(len(tasks))], "model_version": self.model_version}

    def _answer(self, prediction: Prediction | None, picture: np.ndarray | None, target: LabellingTarget,
                error: str | None) -> dict[str, Any]:
        """Label Studio's prediction for one task: its regions, or an empty one that names what went wrong."""
        if prediction is None:
            return {"result": [], "score": 0.0, "model_version": self.model_version, "error": error}
        from cgc.coco import mask_bbox_xywh
        from cgc.inference import reported_score

        height, width = picture.shape[:2]
        regions, scores = [], []
        for index, score in enumerate(prediction.scores):  # one picture-sized mask at a time
            mask = prediction.mask(index)
            source = RegionSource(f"cgc{index + 1}", tuple(mask_bbox_xywh(mask)), reported_score(score), mask)
            regions += regions_for_image(width, height, [source], target.tags, target.mask_format, target.label)[0]
            scores.append(source.score)
        score = sum(scores) / len(scores) if scores else 0.0
        return {"result": regions, "score": score, "model_version": self.model_version}
