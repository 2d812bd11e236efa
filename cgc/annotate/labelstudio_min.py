"""Label Studio's flat exports (JSON-MIN and CSV) turned back into full-export tasks.

JSON-MIN has one flat record per annotation: the task's data fields, `id` (task id),
`annotator` (int id or email), `annotation_id`, timestamps, and each control's regions under
its `from_name` (e.g. `"label": [{x, y, width, height, rotation, rectanglelabels,
original_width, original_height}, ...]`, the region `type` removed). CSV has the same
columns, list/dict cells JSON-encoded, and a data column renamed `_data_<name>` when it
collides with a control name. This layout follows label-studio-sdk's converter
(`convert_to_json_min`, `exports/csv2.py`). Rebuilding full tasks lets one parser handle all
three formats, so they cannot drift apart.

Not recoverable from these formats: cancelled annotations (the converter drops them) and
predictions (never exported), so a flat export reports fewer notes than the full one.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from cgc.errors import InputError

# Columns the converter adds besides data fields and control outputs.
JSON_MIN_META_KEYS = frozenset(
    {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement", "history"}
)
# Prefix csv2 puts on a data column whose name collides with a control name.
CSV_DATA_PREFIX = "_data_"


def is_json_min_record(item: Any) -> bool:
    """A flat per-annotation record, as opposed to a task with an `annotations` list."""
    return (
        isinstance(item, dict)
        and ("annotator" in item or "annotation_id" in item)
        and "annotations" not in item
        and "completions" not in item
    )


def infer_result_type(value: dict[str, Any]) -> str:
    """Name the control type of a region whose `type` was stripped (JSON-MIN drops it)."""
    for key, labels in value.items():
        if key.endswith("labels") and isinstance(labels, list):
            return key
    if {"x", "y", "width", "height"} <= value.keys():
        return "rectangle"
    if "points" in value:
        return "polygon"
    return "unknown"


def _looks_like_regions(value: Any) -> bool:
    """A control's output column: a non-empty list of region dicts (labels or coordinates)."""
    if not isinstance(value, list) or not value:
        return False
    return all(
        isinstance(region, dict)
        and (any(key.endswith("labels") for key in region) or {"x", "y"} <= region.keys() or "points" in region)
        for region in value
    )


def _result_from_region(from_name: str, region: Any) -> Any:
    """One JSON-MIN region -> one full-export `result` item (size moved up, type restored)."""
    if not isinstance(region, dict):
        return region  # the export parser reports it as malformed
    value = dict(region)
    result: dict[str, Any] = {"from_name": from_name, "type": infer_result_type(value), "value": value}
    for size_key in ("original_width", "original_height"):
        if size_key in value:
            result[size_key] = value.pop(size_key)
    return result


def json_min_records_to_tasks(records: list[Any]) -> list[Any]:
    """Group flat JSON-MIN/CSV records by task id into full-export task dicts.

    A record with neither `annotator` nor `annotation_id` stands for a task that had no
    annotation. Records without a task id each become their own task (reported later as
    malformed). Non-dict records pass through unchanged for the same reason.
    """
    tasks: dict[Any, dict[str, Any]] = {}
    passthrough: list[Any] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            passthrough.append(record)
            continue
        data: dict[str, Any] = {}
        result: list[Any] = []
        for key, value in record.items():
            if key in JSON_MIN_META_KEYS:
                continue
            if _looks_like_regions(value):
                result.extend(_result_from_region(key, region) for region in value)
            else:
                data[key.removeprefix(CSV_DATA_PREFIX)] = value
        task_id = record.get("id")
        group_key = ("id", repr(task_id)) if task_id is not None else ("record", index)
        task = tasks.setdefault(group_key, {"id": task_id, "data": data, "annotations": []})
        if record.get("annotator") is None and record.get("annotation_id") is None:
            continue
        task["annotations"].append(
            {
                "id": record.get("annotation_id"),
                "completed_by": record.get("annotator"),
                "result": result,
                "created_at": record.get("created_at"),
                "updated_at": record.get("updated_at"),
            }
        )
    return [*tasks.values(), *passthrough]


def _decode_cell(key: str, cell: str) -> Any:
    """CSV cell -> Python value: empty is None, JSON-encoded lists/dicts decoded, ids as int."""
    if cell == "":
        return None
    if key in ("id", "annotation_id") and cell.strip().lstrip("-").isdigit():
        return int(cell)
    if cell[:1] in "[{":
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
            return cell
    return cell


def read_labelstudio_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a Label Studio CSV export as JSON-MIN records; InputError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError("Label Studio export not found", path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read Label Studio CSV export: {exc}", path) from None
    header = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in header and "," not in header else ","
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        fieldnames = reader.fieldnames or []
        if "annotator" not in fieldnames and "annotation_id" not in fieldnames:
            raise InputError("not a Label Studio CSV export (no 'annotator' or 'annotation_id' column)", path)
        return [{key: _decode_cell(key, cell or "") for key, cell in row.items() if key is not None} for row in reader]
    except csv.Error as exc:
        raise InputError(f"not a readable CSV file: {exc}", path) from None
