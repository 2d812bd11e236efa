"""Consensus boxes as a COCO detection file, plus the import report that explains it.

The output is plain COCO JSON (one category, "salient") so any detection tool can read it,
with extra fields the later stages and a curious reader need: the paper's normalized
`bbox_norm = [x1, y1, x2, y2]`, who drew each box, who missed it, and how well they agreed.
Images without any consensus box stay listed: the weak-label stage reports them as
"no salient instance".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cgc.annotate.consensus import DEFAULT_MATCH_IOU, Reduce, build_consensus_boxes
from cgc.annotate.geometry import Box
from cgc.annotate.import_parser import (
    DEFAULT_IMAGE_KEY,
    DEFAULT_LABELS,
    ImageAnnotations,
    ImageSizeLookup,
    Note,
    ParsedExport,
    image_size_reader,
    read_labelstudio_export,
)
from cgc.coco import SALIENT_CATEGORY_ID, coco_dataset
from cgc.coco_files import write_coco_file
from cgc.errors import InputError
from cgc.fileio import atomic_write_json, refuse_outputs_over_inputs

DATASET_DESCRIPTION = "Salient instance boxes: consensus of Label Studio annotators"


@dataclass
class BoxesDataset:
    """The COCO dict to write, plus notes and counts from the consensus step."""

    dataset: dict[str, Any]
    notes: list[Note]
    counts: dict[str, Any]


def _box_text(box: Box) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in (box.x1, box.y1, box.x2, box.y2)) + "]"


def build_consensus_boxes_dataset(
    images: Sequence[ImageAnnotations],
    match_iou: float = DEFAULT_MATCH_IOU,
    reduce: Reduce = "mean",
    min_annotators: int | None = None,
    source: str | Path | None = None,
) -> BoxesDataset:
    """Run the consensus on every image and lay the result out as COCO detection JSON.

    Image ids follow task-id order from 1; annotation ids run from 1 in image order. Clusters
    that miss the quorum are not written but reported as `dropped_by_quorum` notes. Two tasks
    whose pictures share a file name (`setA/x.jpg`, `setB/x.jpg`) are refused: every later stage
    pairs boxes with pictures by file name, so one picture would get the other's boxes.
    """
    refuse_shared_file_names(images, source)
    coco_images: list[dict[str, Any]] = []
    coco_annotations: list[dict[str, Any]] = []
    notes: list[Note] = []
    agreements: list[float] = []
    dropped_count = 0
    images_without_box = 0
    for image_id, image in enumerate(images, start=1):
        coco_images.append(
            {
                "id": image_id,
                "file_name": image.file_name,
                "width": image.width,
                "height": image.height,
                "ls_task_id": image.task_id,
                "ls_image": image.image_ref,
                "annotators": image.annotators,
            }
        )
        consensus = build_consensus_boxes(image.boxes_by_annotator, match_iou, reduce, min_annotators)
        if not consensus.kept:
            images_without_box += 1
        for kept in consensus.kept:
            box = kept.box
            coco_annotations.append(
                {
                    "id": len(coco_annotations) + 1,
                    "image_id": image_id,
                    "category_id": SALIENT_CATEGORY_ID,
                    "bbox": box.as_xywh(),
                    "area": box.area,
                    "iscrowd": 0,
                    "bbox_norm": box.normalized(image.width, image.height),
                    "num_annotators": kept.num_annotators,
                    "annotators": kept.annotators,
                    "missed_by": kept.missed_by,
                    "agreement": kept.agreement,
                }
            )
            agreements.append(kept.agreement)
        for dropped in consensus.dropped:
            dropped_count += 1
            notes.append(
                Note(
                    image.task_id,
                    image.file_name,
                    None,
                    "dropped_by_quorum",
                    f"box {_box_text(dropped.box)} px drawn by {dropped.num_annotators} of "
                    f"{len(image.annotators)} annotators ({', '.join(dropped.annotators)}); "
                    f"quorum is {consensus.min_annotators}",
                )
            )
    counts = {
        "images_written": len(coco_images),
        "images_without_box": images_without_box,
        "consensus_boxes_kept": len(coco_annotations),
        "clusters_dropped_by_quorum": dropped_count,
        "mean_agreement": sum(agreements) / len(agreements) if agreements else None,
    }
    dataset = coco_dataset(coco_images, coco_annotations, DATASET_DESCRIPTION)
    return BoxesDataset(dataset, notes, counts)


def refuse_shared_file_names(images: Sequence[ImageAnnotations], source: str | Path | None) -> None:
    first: dict[str, ImageAnnotations] = {}
    for image in images:
        other = first.setdefault(image.file_name, image)
        if other is not image:
            raise InputError(f"tasks {other.task_id} and {image.task_id} both show a picture named {image.file_name!r} "
                             f"({other.image_ref}, {image.image_ref}); boxes are paired with pictures by file name, so "
                             f"one would get the other's boxes: give the pictures different names", source)


def default_report_path(out_path: str | Path) -> Path:
    """`boxes.json` -> `boxes.report.json` (any other name gets `.report.json` appended)."""
    out_path = Path(out_path)
    if out_path.suffix.lower() == ".json":
        return out_path.with_suffix(".report.json")
    return out_path.with_name(out_path.name + ".report.json")


def build_import_report(
    parsed: ParsedExport, built: BoxesDataset, export_path: str | Path, options: dict[str, Any]
) -> dict[str, Any]:
    """Everything a reviewer needs to trust the output: options, counts and every note."""
    return {
        "export": str(export_path),
        "format": parsed.source_format,
        "options": options,
        "counts": {**parsed.counts, **built.counts},
        "notes": [note.as_dict() for note in [*parsed.notes, *built.notes]],
    }


def format_import_summary(report: dict[str, Any], out_path: str | Path, report_path: str | Path) -> list[str]:
    """A few lines for the terminal: what was read, what was written, what was ignored."""
    counts = report["counts"]
    ignored = {**counts["annotations_ignored"]}
    for reason, number in counts["results_ignored"].items():
        ignored[reason] = ignored.get(reason, 0) + number
    for reason, number in counts["tasks_skipped"].items():
        ignored[f"task {reason}"] = number
    agreement = counts["mean_agreement"]
    lines = [
        f"Read {counts['tasks']} tasks ({report['format']}), {counts['annotations_read']} annotations, "
        f"{counts['boxes_drawn']} boxes drawn ({counts['empty_annotations']} annotations with no box).",
        f"Wrote {counts['images_written']} images and {counts['consensus_boxes_kept']} consensus boxes to {out_path}"
        + (f" (mean agreement {agreement:.3f})" if agreement is not None else "")
        + f"; {counts['clusters_dropped_by_quorum']} clusters dropped by quorum, "
        f"{counts['images_without_box']} images without a box.",
    ]
    if ignored:
        lines.append("Ignored: " + ", ".join(f"{reason} {number}" for reason, number in sorted(ignored.items())))
    else:
        lines.append("Ignored: nothing")
    lines.append(f"Report with {len(report['notes'])} notes: {report_path}")
    return lines


@dataclass(frozen=True)
class ImportOptions:
    """How annotators' boxes become consensus boxes; the export-file and live-project imports share it."""

    labels: tuple[str, ...] = DEFAULT_LABELS  # rectangle labels accepted (case-insensitive)
    image_key: str = DEFAULT_IMAGE_KEY  # task data field holding the image
    match_iou: float = DEFAULT_MATCH_IOU  # minimum IoU for two annotators' boxes to be one instance
    reduce: Reduce = "mean"  # cluster of boxes -> one box: the paper's mean, or the median
    min_annotators: int | None = None  # quorum; None: a majority of the image's annotators
    image_dir: str | Path | None = None  # to read sizes of images whose annotations carry none

    def image_size(self) -> ImageSizeLookup | None:
        return image_size_reader(self.image_dir) if self.image_dir is not None else None

    def as_report(self) -> dict[str, Any]:
        """The settings as the import report records them."""
        return {
            "labels": list(self.labels),
            "image_key": self.image_key,
            "match_iou": self.match_iou,
            "reduce": self.reduce,
            "min_annotators": self.min_annotators if self.min_annotators is not None else "majority",
            "images": None if self.image_dir is None else str(self.image_dir),
        }


def import_labelstudio_boxes(
    export_path: str | Path,
    out_path: str | Path,
    report_path: str | Path | None = None,
    options: ImportOptions = ImportOptions(),
) -> dict[str, Any]:
    """Export file -> consensus COCO boxes + report, both written only once all succeeded."""
    out_path, report_path = import_output_paths(out_path, report_path,
                                                {"--from-export": export_path, "--images": options.image_dir})
    parsed = read_labelstudio_export(export_path, options.labels, options.image_key, options.image_size())
    built = build_consensus_boxes_dataset(parsed.images, options.match_iou, options.reduce, options.min_annotators,
                                          export_path)
    report = build_import_report(parsed, built, export_path, options.as_report())
    write_import_outputs(out_path, report_path, built.dataset, report)
    return report


def import_output_paths(out_path: str | Path, report_path: str | Path | None,
                        inputs: Mapping[str, str | Path | None]) -> tuple[Path, Path]:
    """The box file and its report (default: beside it): not one file, and neither one of the `inputs`."""
    out_path = Path(out_path)
    report_path = default_report_path(out_path) if report_path is None else Path(report_path)
    refuse_outputs_over_inputs({"--out": out_path, "--report": report_path}, inputs)
    return out_path, report_path


def write_import_outputs(out_path: Path, report_path: Path, dataset: dict[str, Any], report: dict[str, Any]) -> None:
    """Write the boxes, then the report, each atomically; a write failure names its path."""
    report["output"] = str(out_path)
    path = out_path
    try:
        write_coco_file(out_path, dataset)
        path = report_path
        atomic_write_json(report_path, report, indent=2)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path) from None
