"""Pull every annotation of a live Label Studio project and average it into consensus boxes.

The tasks come from the API page by page (`tasks.list(fields="all")`, already the JSON export's
task shape) and then go through exactly the functions the export-file path uses:
`parse_labelstudio_tasks` -> `build_consensus_boxes_dataset` -> `build_import_report`. So the
same annotations give the same boxes.json whichever way they arrive.

On top of the export path, the report lists tasks that fewer annotators finished than the
project asks for (its overlap, `maximum_annotations`), including tasks nobody opened yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cgc.annotate.boxes_dataset import (
    ImportOptions,
    build_consensus_boxes_dataset,
    build_import_report,
    import_output_paths,
    write_import_outputs,
)
from cgc.annotate.import_parser import Note, ParsedExport, parse_labelstudio_tasks
from cgc.annotate.labelstudio_client import (
    PAGE_SIZE,
    LabelStudioConnection,
    LabelStudioError,
    as_plain,
    get_project,
    iter_project_tasks,
    redact_url,
)

SOURCE_FORMAT = "labelstudio-api"


def fetch_project_tasks(connection: LabelStudioConnection, project_id: int, page_size: int = PAGE_SIZE) -> list[dict[str, Any]]:
    """All tasks of the project with their annotations (paginated, so thousands of tasks are fine)."""
    return list(iter_project_tasks(connection, project_id, fields="all", page_size=page_size))


def too_few_annotator_notes(parsed: ParsedExport, expected: int) -> list[Note]:
    """A note for every task with fewer than `expected` usable annotations (0 for unopened tasks)."""
    notes = [
        Note(image.task_id, image.file_name, None, "too_few_annotators",
             f"{len(image.annotators)} of {expected} annotators")
        for image in parsed.images
        if len(image.annotators) < expected
    ]
    notes += [
        Note(note.task_id, note.file_name, None, "too_few_annotators", f"0 of {expected} annotators")
        for note in parsed.notes
        if note.reason == "no_annotations"
    ]
    return sorted(notes, key=lambda note: (str(type(note.task_id)), note.task_id))


def annotator_emails(connection: LabelStudioConnection, annotators: set[str]) -> dict[str, str]:
    """The email of each annotator (by user id, as boxes.json names them) that the server lets this key see;
    none if it lets it see no users."""
    try:
        with connection.errors("listing the users"):
            users = [as_plain(user) for user in connection.client.users.list()]
    except LabelStudioError:
        return {}
    return {str(user["id"]): user["email"] for user in users
            if str(user.get("id")) in annotators and isinstance(user.get("email"), str) and user["email"]}


def import_labelstudio_project(
    connection: LabelStudioConnection,
    project_id: int,
    out_path: str | Path,
    report_path: str | Path | None = None,
    options: ImportOptions = ImportOptions(),
    expected_annotators: int | None = None,
    page_size: int = 500,
) -> dict[str, Any]:
    """Live project -> consensus COCO boxes + report (same layout as the export-file import)."""
    out_path, report_path = import_output_paths(out_path, report_path, {"--images": options.image_dir})
    image_size = options.image_size()
    project = get_project(connection, project_id)
    if expected_annotators is None:
        expected_annotators = int(project.get("maximum_annotations") or 1)
    tasks = fetch_project_tasks(connection, project_id, page_size)
    parsed = parse_labelstudio_tasks(tasks, options.labels, options.image_key, image_size, SOURCE_FORMAT)
    source = f"{redact_url(connection.url)}/projects/{project_id}"
    built = build_consensus_boxes_dataset(parsed.images, options.match_iou, options.reduce, options.min_annotators,
                                          source)
    emails = annotator_emails(connection, {a for image in parsed.images for a in image.annotators})
    if emails:
        built.dataset["info"]["annotator_emails"] = emails
    recorded = options.as_report() | {"expected_annotators": expected_annotators}
    report = build_import_report(parsed, built, source, recorded)
    too_few = too_few_annotator_notes(parsed, expected_annotators)
    report["project"] = {"id": project_id, "title": project.get("title"), "url": source}
    report["counts"]["tasks_with_too_few_annotators"] = len(too_few)
    report["notes"] += [note.as_dict() for note in too_few]
    write_import_outputs(out_path, report_path, built.dataset, report)
    return report


def format_too_few_summary(report: dict[str, Any], shown: int = 10) -> str | None:
    """One line naming the tasks that still need annotators, or None when there are none."""
    notes = [note for note in report["notes"] if note["reason"] == "too_few_annotators"]
    if not notes:
        return None
    expected = report["options"]["expected_annotators"]
    listed = ", ".join(f"{note['task_id']} ({note['detail'].split(' of ')[0]})" for note in notes[:shown])
    more = f" and {len(notes) - shown} more" if len(notes) > shown else ""
    return f"Warning: {len(notes)} tasks have fewer than {expected} annotators: task {listed}{more}"
