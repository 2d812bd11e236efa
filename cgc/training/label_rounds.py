"""Where the label rounds live in a run folder, and the labels a round trains on.

Round N is written to ``RUN/labels/round_NNN.json`` (a complete COCO weak-label file; the original
``--data`` is never written) beside ``round_NNN.log.json``; a checkpoint names the file it trains on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cgc.coco_files import CocoFile, read_instance_file
from cgc.refine.instance_update import UpdateDecision

LABELS_DIR = "labels"


class LabelStore:
    """The weak labels a round trains on: a checked COCO file in memory, annotations by id."""

    def __init__(self, labels: CocoFile) -> None:
        self.labels = labels
        self.by_id = {annotation["id"]: annotation for annotation in labels.annotations}

    @classmethod
    def read(cls, path: str | Path) -> "LabelStore":
        return cls(read_instance_file(path, "weak-label file"))

    def annotation(self, annotation_id: int) -> dict[str, Any]:
        return self.by_id[annotation_id]

    def others(self, annotation_id: int) -> list[dict[str, Any]]:
        """The other instances of the same image (the update's guards need their labels)."""
        image_id = self.by_id[annotation_id]["image_id"]
        return [a for a in self.labels.annotations if a["image_id"] == image_id and a["id"] != annotation_id]

    def with_decisions(self, decisions: list[UpdateDecision], source: Path) -> CocoFile:
        """The next round (to be written at `source`): these labels with every replaced instance's segmentation and
        area updated."""
        replaced = {decision.annotation_id: decision for decision in decisions if decision.replaced}
        annotations = []
        for annotation in self.labels.annotations:
            decision = replaced.get(annotation["id"])
            if decision is not None:
                annotation = dict(annotation, segmentation=decision.segmentation, area=decision.area_after)
            annotations.append(annotation)
        return CocoFile(str(source), dict(self.labels.data, annotations=annotations))


def round_paths(run_dir: Path, number: int) -> tuple[Path, Path]:
    folder = run_dir / LABELS_DIR
    return folder / f"round_{number:03d}.json", folder / f"round_{number:03d}.log.json"


def label_file_of(state: dict[str, Any] | None, run_dir: Path, data: str | Path) -> Path:
    """The label file a checkpoint's label state trains on (round 0: the original --data)."""
    if not state or not state.get("label_file"):
        return Path(data)
    return run_dir / state["label_file"]
