"""`cgc annotate import` end to end on a tiny export written to tmp_path."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cgc.cli import cgc

W, H = 200, 100


def rect(x, y, w, h, label="salient"):
    return {
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": W,
        "original_height": H,
        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]},
    }


def tiny_export():
    return [
        {
            "id": 7,
            "data": {"image": "/data/upload/2/0a1b2c3d-second.jpg"},
            "annotations": [{"id": 71, "completed_by": 1, "result": []}],
            "predictions": [],
        },
        {
            "id": 3,
            "data": {"image": "/data/upload/2/ffffffff-first.jpg"},
            "annotations": [
                {"id": 31, "completed_by": 1, "result": [rect(10, 10, 20, 40), rect(80, 80, 10, 10)]},
                {"id": 32, "completed_by": {"id": 2, "email": "b@example.org"}, "result": [rect(12, 10, 20, 40)]},
                {"id": 33, "completed_by": 3, "result": [rect(11, 12, 20, 40, label="person")]},
                {"id": 34, "completed_by": 4, "result": [rect(0, 0, 5, 5)], "was_cancelled": True},
            ],
            "predictions": [{"id": 1, "result": [rect(1, 1, 1, 1)]}],
        },
    ]


@pytest.fixture
def export_file(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tiny_export()), encoding="utf-8")
    return path


def test_import_writes_coco_boxes_and_report(tmp_path, export_file):
    from PIL import Image

    # Task 7's only annotation is empty, so no result says how big the image is: read the file.
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (W, H)).save(tmp_path / "imgs" / "second.jpg")
    out = tmp_path / "boxes.json"
    args = [
        "annotate",
        "import",
        "--from-export",
        str(export_file),
        "--out",
        str(out),
        "--images",
        str(tmp_path / "imgs"),
    ]
    result = CliRunner().invoke(cgc, args)
    assert result.exit_code == 0, result.output
    assert "Read 2 tasks" in result.output
    assert "cancelled 1" in result.output and "unknown_label 1" in result.output

    dataset = json.loads(out.read_text())
    assert dataset["categories"] == [{"id": 1, "name": "salient", "supercategory": "salient"}]
    assert dataset["images"] == [
        {
            "id": 1,
            "file_name": "first.jpg",
            "width": W,
            "height": H,
            "ls_task_id": 3,
            "ls_image": "/data/upload/2/ffffffff-first.jpg",
            "annotators": ["1", "3", "b@example.org"],
        },
        {
            "id": 2,
            "file_name": "second.jpg",
            "width": W,
            "height": H,
            "ls_task_id": 7,
            "ls_image": "/data/upload/2/0a1b2c3d-second.jpg",
            "annotators": ["1"],
        },
    ]
    # Boxes of annotators 1 and b (x 20 and 24 px, y 10, 40x40 px); 3's "person" box is ignored
    # but 3 still counts as an annotator: 2 of 3 is a majority. 1's extra box has 1 of 3.
    (annotation,) = dataset["annotations"]
    assert annotation["id"] == 1 and annotation["image_id"] == 1 and annotation["category_id"] == 1
    assert annotation["bbox"] == pytest.approx([22.0, 10.0, 40.0, 40.0])
    assert annotation["area"] == pytest.approx(1600.0)
    assert annotation["iscrowd"] == 0
    assert annotation["bbox_norm"] == pytest.approx([0.11, 0.1, 0.31, 0.5])
    assert annotation["num_annotators"] == 2
    assert annotation["annotators"] == ["1", "b@example.org"]
    assert annotation["missed_by"] == ["3"]
    assert annotation["agreement"] == pytest.approx(38 / 42)  # 38x40 overlap, 42x40 union

    report = json.loads((tmp_path / "boxes.report.json").read_text())
    counts = report["counts"]
    assert counts["tasks"] == 2
    assert counts["images_written"] == 2
    assert counts["images_without_box"] == 1
    assert counts["annotations_read"] == 5
    assert counts["annotations_ignored"] == {"cancelled": 1}
    assert counts["results_ignored"] == {"unknown_label": 1}
    assert counts["predictions_ignored"] == 1
    assert counts["boxes_drawn"] == 3
    assert counts["consensus_boxes_kept"] == 1
    assert counts["clusters_dropped_by_quorum"] == 1
    assert counts["mean_agreement"] == pytest.approx(38 / 42)
    assert sorted(note["reason"] for note in report["notes"]) == [
        "cancelled",
        "dropped_by_quorum",
        "empty_result",
        "unknown_label",
    ]
    assert set(report["notes"][0]) == {"task_id", "file_name", "annotator", "reason", "detail"}


def test_options_reduce_quorum_and_report_path(tmp_path, export_file):
    out, report = tmp_path / "out" / "boxes.json", tmp_path / "r.json"
    args = [
        "annotate",
        "import",
        "--from-export",
        str(export_file),
        "--out",
        str(out),
        "--report",
        str(report),
        "--min-annotators",
        "1",
        "--label",
        "salient",
        "--label",
        "PERSON",
        "--reduce",
        "median",
    ]
    result = CliRunner().invoke(cgc, args)
    assert result.exit_code == 0, result.output
    dataset = json.loads(out.read_text())
    assert [a["num_annotators"] for a in dataset["annotations"]] == [3, 1]
    assert dataset["annotations"][0]["bbox"] == pytest.approx([22.0, 10.0, 40.0, 40.0])  # median of 20, 22, 24
    assert json.loads(report.read_text())["options"]["reduce"] == "median"


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "not found"), ("{not json", "not valid JSON"), ('{"a": 1}', "not a Label Studio export")],
)
def test_bad_export_is_a_one_line_error(tmp_path, content, message):
    export = tmp_path / "export.json"
    if content is not None:
        export.write_text(content, encoding="utf-8")
    out = tmp_path / "boxes.json"
    result = CliRunner().invoke(cgc, ["annotate", "import", "--from-export", str(export), "--out", str(out)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {export}: ")
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_image_of_unknown_size_is_left_out_and_reported(tmp_path, export_file):
    out = tmp_path / "boxes.json"
    result = CliRunner().invoke(cgc, ["annotate", "import", "--from-export", str(export_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "task unknown_size 1" in result.output
    assert [image["ls_task_id"] for image in json.loads(out.read_text())["images"]] == [3]
    report = json.loads((tmp_path / "boxes.report.json").read_text())
    assert report["counts"]["tasks_skipped"] == {"unknown_size": 1}
    (note,) = [n for n in report["notes"] if n["reason"] == "unknown_size"]
    assert note["task_id"] == 7 and note["file_name"] == "second.jpg" and "--images" in note["detail"]
