"""The parser behind `cgc annotate import`: Label Studio exports and tasks -> per-image,
per-annotator pixel boxes, plus notes on what was ignored.

Label Studio's own COCO export turns one task with five annotators into five images and
forgets who drew what, which is exactly what the consensus step needs. So we read its JSON
export (or JSON-MIN / CSV, see `labelstudio_min`) ourselves.

Nothing in an export is allowed to crash the run: cancelled annotations, non-rectangle
results, unknown labels and malformed items become `Note`s and are skipped. Only a file that
is not a Label Studio export at all is an `InputError`.

Decision: an annotator whose (non-cancelled) annotation has an empty result saw the image and
drew no box. They count towards the image's annotators, so their vote counts against every
cluster in the quorum, and the case is reported as an `empty_result` note.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from cgc.annotate.geometry import Box, rotated_rect_envelope
from cgc.annotate.labelstudio_client import task_image_ref
from cgc.annotate.labelstudio_min import (
    infer_result_type,
    is_json_min_record,
    json_min_records_to_tasks,
    read_labelstudio_csv,
)
from cgc.errors import InputError
from cgc.fileio import read_json

DEFAULT_LABELS = ("salient",)
DEFAULT_IMAGE_KEY = "image"

# Label Studio stores uploads as /data/upload/<project>/<8 hex chars>-<original name>.
_UPLOAD_NAME = re.compile(r"/data/upload/[^/]+/[0-9a-fA-F]{8}-(?P<name>[^/]+)$")
# Smaller differences than this (in pixels) are float noise, not clamping worth reporting.
_CLAMP_EPS = 1e-6

ImageSizeLookup = Callable[[str], tuple[int, int]]


@dataclass(frozen=True)
class Note:
    """Something the import ignored, changed or could not do, with the reason why."""

    task_id: int | str | None
    file_name: str | None
    annotator: str | None
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImageAnnotations:
    """One task's image and every annotator's pixel boxes, the input of the consensus step.

    `boxes_by_annotator` also holds annotators who drew no box (empty list): they saw the
    image, so they count when deciding the quorum.
    """

    task_id: int | str
    image_ref: str
    file_name: str
    width: int
    height: int
    boxes_by_annotator: dict[str, list[Box]] = field(default_factory=dict)

    @property
    def annotators(self) -> list[str]:
        return sorted(self.boxes_by_annotator)


@dataclass
class ParsedExport:
    """All images of an export with boxes, plus the notes and counts for the import report."""

    source_format: str
    images: list[ImageAnnotations]
    notes: list[Note]
    counts: dict[str, Any]


@dataclass
class _Rect:
    """A rectangle as Label Studio stores it: percent of the original size, rotation in degrees."""

    x: float
    y: float
    width: float
    height: float
    rotation: float
    original_size: tuple[int, int] | None


def labelstudio_image_file_name(image_ref: str) -> str:
    """The image's own file name, so boxes can be joined with the image files on disk.

    `/data/upload/3/1a2b3c4d-cat.jpg` -> `cat.jpg` (Label Studio's upload prefix stripped),
    `/data/local-files/?d=dir/cat.jpg` -> `cat.jpg`, URLs -> last path segment, url-decoded.
    """
    parsed = urlparse(image_ref)
    path = parsed.path
    if "local-files" in path:
        local = parse_qs(parsed.query).get("d")
        if local:
            path = local[0]
    path = unquote(path).replace("\\", "/")
    upload = _UPLOAD_NAME.search(path)
    if upload:
        return upload.group("name")
    return posixpath.basename(path.rstrip("/"))


def annotator_id(completed_by: Any) -> str | None:
    """Annotator as a string: the email if the export gives a user dict, else the user id."""
    if isinstance(completed_by, bool):
        return None
    if isinstance(completed_by, int):
        return str(completed_by)
    if isinstance(completed_by, float) and completed_by.is_integer():
        return str(int(completed_by))
    if isinstance(completed_by, str) and completed_by.strip():
        return completed_by.strip()
    if isinstance(completed_by, dict):
        email = completed_by.get("email")
        if isinstance(email, str) and email.strip():
            return email.strip()
        return annotator_id(completed_by.get("id"))
    return None


def image_size_reader(image_dir: str | Path) -> ImageSizeLookup:
    """Look up an image's (width, height) in `image_dir`; PIL reads only the file header.

    For tasks where no result carries `original_width`/`original_height` (e.g. every
    annotation is empty). Raises OSError when the file is missing or not an image.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise InputError("image directory not found", image_dir)

    def size_of(file_name: str) -> tuple[int, int]:
        from cgc.datasets.pictures import image_size  # as shown, EXIF orientation applied, like Label Studio's boxes

        path = image_dir / file_name
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found")
        try:
            width, height = image_size(path)
        except InputError as exc:
            raise OSError(str(exc)) from None
        return int(width), int(height)

    return size_of


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _positive_int(value: Any) -> int | None:
    number = _number(value)
    return int(round(number)) if number is not None and number >= 1 else None


def _task_sort_key(task_id: int | str) -> tuple[int, int | str]:
    return (0, task_id) if isinstance(task_id, int) else (1, str(task_id))


def _valid_task_id(task_id: Any) -> bool:
    if isinstance(task_id, bool):
        return False
    return isinstance(task_id, int) or (isinstance(task_id, str) and task_id.strip() != "")


class _ExportParser:
    """Walks the tasks once, collecting images, notes and counts (one instance per export)."""

    def __init__(
        self,
        labels: Iterable[str],
        image_key: str,
        image_size: ImageSizeLookup | None,
    ) -> None:
        self.labels = {label.strip().lower() for label in labels}
        self.image_key = image_key
        self.image_size = image_size
        self.notes: list[Note] = []
        self.counts: Counter[str] = Counter()
        self.annotations_ignored: Counter[str] = Counter()
        self.results_ignored: Counter[str] = Counter()
        self.tasks_skipped: Counter[str] = Counter()

    def note(self, task_id: Any, file_name: str | None, annotator: str | None, reason: str, detail: str) -> None:
        safe_task_id = task_id if _valid_task_id(task_id) else None
        self.notes.append(Note(safe_task_id, file_name, annotator, reason, detail))

    def skip_task(self, task_id: Any, file_name: str | None, reason: str, detail: str) -> None:
        self.tasks_skipped[reason] += 1
        self.note(task_id, file_name, None, reason, detail)

    def ignore_annotation(self, task_id: Any, file_name: str, annotator: str | None, reason: str, detail: str) -> None:
        self.annotations_ignored[reason] += 1
        self.note(task_id, file_name, annotator, reason, detail)

    def ignore_result(self, task_id: Any, file_name: str, annotator: str, reason: str, detail: str) -> None:
        self.results_ignored[reason] += 1
        self.note(task_id, file_name, annotator, reason, detail)

    # -- tasks -----------------------------------------------------------------------------

    def parse_task(self, task: Any, index: int) -> ImageAnnotations | None:
        self.counts["tasks"] += 1
        if not isinstance(task, dict):
            self.skip_task(None, None, "malformed", f"item {index} of the export is not a task object")
            return None
        task_id = task.get("id")
        data = task.get("data")
        if not _valid_task_id(task_id):
            self.skip_task(None, None, "malformed", f"item {index} of the export has no task id")
            return None
        if not isinstance(data, dict):
            self.skip_task(task_id, None, "malformed", "task has no 'data' object")
            return None
        image_ref, fell_back = task_image_ref(data, self.image_key)
        if image_ref is None:
            self.skip_task(task_id, None, "malformed", "task data holds no image reference (no string value)")
            return None
        if fell_back:
            self.counts["tasks_image_key_fallback"] += 1
        file_name = labelstudio_image_file_name(image_ref)
        if not file_name:
            self.skip_task(task_id, None, "malformed", f"image reference {image_ref!r} has no file name")
            return None

        predictions = task.get("predictions")
        if isinstance(predictions, list):
            self.counts["predictions_ignored"] += len(predictions)

        annotations = task.get("annotations", task.get("completions"))
        if annotations is None:
            annotations = []
        if not isinstance(annotations, list):
            self.skip_task(task_id, file_name, "malformed", "'annotations' is not a list")
            return None
        kept = self.select_annotations(task_id, file_name, annotations)
        if not kept:
            self.skip_task(
                task_id,
                file_name,
                "no_annotations",
                "no usable (non-cancelled) annotation, so nobody has looked at this image",
            )
            return None

        rects_by_annotator: dict[str, list[_Rect]] = {}
        sizes: Counter[tuple[int, int]] = Counter()
        for annotator, annotation in sorted(kept.items()):
            rects_by_annotator[annotator] = self.parse_annotation(task_id, file_name, annotator, annotation, sizes)

        size = self.image_size_of(task_id, file_name, sizes)
        if size is None:
            return None
        width, height = size
        boxes_by_annotator = {
            annotator: self.boxes_from_rects(task_id, file_name, annotator, rects, width, height)
            for annotator, rects in rects_by_annotator.items()
        }
        self.counts["boxes_drawn"] += sum(len(boxes) for boxes in boxes_by_annotator.values())
        return ImageAnnotations(task_id, image_ref, file_name, width, height, boxes_by_annotator)

    def select_annotations(self, task_id: Any, file_name: str, annotations: list[Any]) -> dict[str, dict[str, Any]]:
        """One annotation per annotator; cancelled, anonymous and superseded ones are noted."""
        by_annotator: dict[str, dict[str, Any]] = {}
        for annotation in annotations:
            self.counts["annotations_read"] += 1
            if not isinstance(annotation, dict):
                self.ignore_annotation(task_id, file_name, None, "malformed", "annotation is not an object")
                continue
            annotator = annotator_id(annotation.get("completed_by"))
            if annotator is None:
                self.ignore_annotation(
                    task_id,
                    file_name,
                    None,
                    "malformed",
                    f"annotation {annotation.get('id')!r} has no usable 'completed_by'",
                )
                continue
            if annotation.get("was_cancelled") or annotation.get("skipped"):
                self.ignore_annotation(
                    task_id,
                    file_name,
                    annotator,
                    "cancelled",
                    f"annotation {annotation.get('id')!r} was cancelled/skipped",
                )
                continue
            previous = by_annotator.get(annotator)
            if previous is not None:
                # Keep the most recent one, whatever order the file lists them in.
                newer, older = sorted((previous, annotation), key=_annotation_recency, reverse=True)
                by_annotator[annotator] = newer
                self.ignore_annotation(
                    task_id,
                    file_name,
                    annotator,
                    "duplicate_annotator",
                    f"annotator has several annotations; kept {newer.get('id')!r}, ignored {older.get('id')!r}",
                )
                continue
            by_annotator[annotator] = annotation
        self.counts["annotations_used"] += len(by_annotator)
        return by_annotator

    def parse_annotation(
        self,
        task_id: Any,
        file_name: str,
        annotator: str,
        annotation: dict[str, Any],
        sizes: Counter[tuple[int, int]],
    ) -> list[_Rect]:
        result = annotation.get("result")
        if result is None:
            result = []
        if not isinstance(result, list):
            self.note(task_id, file_name, annotator, "malformed", "'result' is not a list; counted as no box")
            result = []
        if not result:
            self.counts["empty_annotations"] += 1
            self.note(
                task_id,
                file_name,
                annotator,
                "empty_result",
                "annotation has no result: counted as an annotator who drew no box",
            )
        rects: list[_Rect] = []
        for item in result:
            self.counts["results_read"] += 1
            if isinstance(item, dict):
                original = (_positive_int(item.get("original_width")), _positive_int(item.get("original_height")))
                if None not in original:
                    sizes[original] += 1  # type: ignore[index]
            parsed = self.parse_result(item)
            if isinstance(parsed, _Rect):
                rects.append(parsed)
            else:
                reason, detail = parsed
                self.ignore_result(task_id, file_name, annotator, reason, detail)
        return rects

    def parse_result(self, item: Any) -> _Rect | tuple[str, str]:
        """A `rectanglelabels` result with an accepted label, or (reason, detail) why not."""
        if not isinstance(item, dict):
            return "malformed", "result item is not an object"
        value = item.get("value")
        if not isinstance(value, dict):
            return "malformed", f"result {item.get('id')!r} has no 'value' object"
        kind = item.get("type")
        if not isinstance(kind, str):
            kind = infer_result_type(value)
        kind = kind.lower()
        if kind == "rectangle":
            return "unknown_label", f"rectangle {item.get('id')!r} has no label"
        if kind != "rectanglelabels":
            return "non_rectangle", f"{kind} result {item.get('id')!r}"
        labels = value.get("rectanglelabels")
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            return "malformed", f"result {item.get('id')!r}: 'rectanglelabels' is not a list of strings"
        if not any(label.strip().lower() in self.labels for label in labels):
            return "unknown_label", f"result {item.get('id')!r} has labels {labels}, accepted {sorted(self.labels)}"
        numbers = {key: _number(value.get(key)) for key in ("x", "y", "width", "height")}
        missing = [key for key, number in numbers.items() if number is None]
        if missing:
            return "malformed", f"result {item.get('id')!r}: missing or non-numeric {', '.join(missing)}"
        raw_rotation = value.get("rotation")
        rotation = 0.0 if raw_rotation is None else _number(raw_rotation)
        if rotation is None:
            return "malformed", f"result {item.get('id')!r}: non-numeric rotation"
        if numbers["width"] <= 0 or numbers["height"] <= 0:  # type: ignore[operator]
            return "degenerate_box", f"result {item.get('id')!r} has zero or negative size"
        original = (_positive_int(item.get("original_width")), _positive_int(item.get("original_height")))
        return _Rect(
            numbers["x"],  # type: ignore[arg-type]
            numbers["y"],  # type: ignore[arg-type]
            numbers["width"],  # type: ignore[arg-type]
            numbers["height"],  # type: ignore[arg-type]
            rotation,
            None if None in original else original,  # type: ignore[arg-type]
        )

    def image_size_of(self, task_id: Any, file_name: str, sizes: Counter[tuple[int, int]]) -> tuple[int, int] | None:
        """The size the results were drawn on (most common), else read from the image file."""
        if sizes:
            ranked = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
            size = ranked[0][0]
            if len(ranked) > 1:
                self.note(
                    task_id,
                    file_name,
                    None,
                    "inconsistent_size",
                    f"results give image sizes {[list(s) for s, _ in ranked]}; using {list(size)}",
                )
            return size
        if self.image_size is None:
            self.skip_task(
                task_id,
                file_name,
                "unknown_size",
                "no result carries original_width/original_height; pass --images DIR to read the size",
            )
            return None
        try:
            return self.image_size(file_name)
        except OSError as exc:
            self.skip_task(task_id, file_name, "unknown_size", f"cannot read the image size: {exc}")
            return None

    def boxes_from_rects(
        self, task_id: Any, file_name: str, annotator: str, rects: list[_Rect], width: int, height: int
    ) -> list[Box]:
        """Percent rectangles -> clamped axis-aligned pixel boxes (rotations become envelopes)."""
        boxes = []
        for rect in rects:
            x, y = rect.x / 100 * width, rect.y / 100 * height
            w, h = rect.width / 100 * width, rect.height / 100 * height
            rotation = rect.rotation % 360
            if rotation > _CLAMP_EPS and 360 - rotation > _CLAMP_EPS:
                box = rotated_rect_envelope(x, y, w, h, rect.rotation)
                self.counts["boxes_rotated"] += 1
                self.note(
                    task_id,
                    file_name,
                    annotator,
                    "rotated",
                    f"box rotated by {rect.rotation:g} degrees replaced by its axis-aligned envelope",
                )
            else:
                box = Box(x, y, x + w, y + h)
            clamped = box.clamped(width, height)
            if clamped.area <= 0:
                self.ignore_result(
                    task_id, file_name, annotator, "degenerate_box", f"box {_fmt(box)} px lies outside the image"
                )
                continue
            if max(abs(a - b) for a, b in zip(_corners(box), _corners(clamped))) > _CLAMP_EPS:
                self.counts["boxes_clamped"] += 1
                self.note(
                    task_id,
                    file_name,
                    annotator,
                    "clamped",
                    f"box {_fmt(box)} px reaches outside the {width}x{height} image; clamped to {_fmt(clamped)}",
                )
            boxes.append(clamped)
        return boxes


def _corners(box: Box) -> tuple[float, float, float, float]:
    return (box.x1, box.y1, box.x2, box.y2)


def _fmt(box: Box) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in _corners(box)) + "]"


def _annotation_recency(annotation: dict[str, Any]) -> tuple[str, int]:
    stamp = annotation.get("updated_at") or annotation.get("created_at") or ""
    ann_id = annotation.get("id")
    return (str(stamp), ann_id if isinstance(ann_id, int) and not isinstance(ann_id, bool) else -1)


def parse_labelstudio_tasks(
    tasks: list[Any],
    labels: Iterable[str] = DEFAULT_LABELS,
    image_key: str = DEFAULT_IMAGE_KEY,
    image_size: ImageSizeLookup | None = None,
    source_format: str = "labelstudio-json",
) -> ParsedExport:
    """Turn Label Studio tasks (full-export shape) into pixel boxes per image and annotator.

    Kept separate from file reading so a live-server import can feed tasks from the API.
    Images come out sorted by task id; tasks nobody annotated and tasks whose image size is
    unknown are left out with a note.
    """
    parser = _ExportParser(labels, image_key, image_size)
    images: list[ImageAnnotations] = []
    seen_task_ids: set[Any] = set()
    for index, task in enumerate(tasks):
        image = parser.parse_task(task, index)
        if image is None:
            continue
        if image.task_id in seen_task_ids:
            parser.skip_task(image.task_id, image.file_name, "duplicate_task", "task id appears twice; kept the first")
            continue
        seen_task_ids.add(image.task_id)
        images.append(image)
    images.sort(key=lambda image: _task_sort_key(image.task_id))

    file_names = Counter(image.file_name for image in images)
    for image in images:
        if file_names[image.file_name] > 1:
            parser.note(
                image.task_id,
                image.file_name,
                None,
                "duplicate_file_name",
                f"{file_names[image.file_name]} tasks show an image called {image.file_name!r}",
            )

    counts: dict[str, Any] = {
        "tasks": parser.counts["tasks"],
        "tasks_skipped": dict(sorted(parser.tasks_skipped.items())),
        "tasks_image_key_fallback": parser.counts["tasks_image_key_fallback"],
        "annotations_read": parser.counts["annotations_read"],
        "annotations_used": parser.counts["annotations_used"],
        "annotations_ignored": dict(sorted(parser.annotations_ignored.items())),
        "empty_annotations": parser.counts["empty_annotations"],
        "predictions_ignored": parser.counts["predictions_ignored"],
        "results_read": parser.counts["results_read"],
        "results_ignored": dict(sorted(parser.results_ignored.items())),
        "boxes_drawn": parser.counts["boxes_drawn"],
        "boxes_rotated": parser.counts["boxes_rotated"],
        "boxes_clamped": parser.counts["boxes_clamped"],
    }
    return ParsedExport(source_format, images, parser.notes, counts)


def read_labelstudio_export(
    path: str | Path,
    labels: Iterable[str] = DEFAULT_LABELS,
    image_key: str = DEFAULT_IMAGE_KEY,
    image_size: ImageSizeLookup | None = None,
) -> ParsedExport:
    """Read a Label Studio JSON, JSON-MIN or CSV export; the format is detected from the file.

    `.csv` files are read as CSV; anything else must be JSON: a list of tasks (each with
    `annotations`) or a list of flat JSON-MIN records (each with `annotator`). A single task
    object is accepted too, as Label Studio's own converter does.
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        tasks = json_min_records_to_tasks(read_labelstudio_csv(path))
        return parse_labelstudio_tasks(tasks, labels, image_key, image_size, "labelstudio-csv")

    content = read_json(path, "Label Studio export")
    if isinstance(content, dict):
        if "images" in content and "categories" in content:
            raise InputError("this is a COCO file, not a Label Studio export; export the project as JSON", path)
        if "data" in content and ("annotations" in content or "completions" in content):
            content = [content]
        else:
            raise InputError("not a Label Studio export: expected a JSON list of tasks, found an object", path)
    if not isinstance(content, list):
        raise InputError(
            f"not a Label Studio export: expected a JSON list of tasks, found {type(content).__name__}", path
        )
    if not content:
        raise InputError("the Label Studio export holds no tasks", path)
    objects = [item for item in content if isinstance(item, dict)]
    if any("annotations" in item or "completions" in item for item in objects):
        return parse_labelstudio_tasks(content, labels, image_key, image_size, "labelstudio-json")
    if objects and all(is_json_min_record(item) for item in objects):
        tasks = json_min_records_to_tasks(content)
        return parse_labelstudio_tasks(tasks, labels, image_key, image_size, "labelstudio-json-min")
    raise InputError(
        "not a Label Studio export: items have neither 'annotations' (JSON export) "
        "nor 'annotator' (JSON-MIN export)",
        path,
    )
