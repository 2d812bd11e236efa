"""Parsing Label Studio exports (JSON, JSON-MIN, CSV) into per-annotator pixel boxes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cgc.annotate.geometry import Box
from cgc.annotate.import_parser import (
    annotator_id,
    image_size_reader,
    labelstudio_image_file_name,
    parse_labelstudio_tasks,
    read_labelstudio_export,
)
from cgc.errors import InputError

W, H = 1000, 500


def rect(x, y, w, h, label="salient", rotation=0, rid="r1", ow=W, oh=H):
    return {
        "id": rid,
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": ow,
        "original_height": oh,
        "image_rotation": 0,
        "value": {"x": x, "y": y, "width": w, "height": h, "rotation": rotation, "rectanglelabels": [label]},
    }


def annotation(user, results, ann_id=1, cancelled=False, updated_at="2024-01-01T00:00:00Z"):
    return {
        "id": ann_id,
        "completed_by": user,
        "result": results,
        "was_cancelled": cancelled,
        "ground_truth": False,
        "created_at": updated_at,
        "updated_at": updated_at,
    }


def task(task_id, annotations, image="/data/upload/1/0a1b2c3d-cat.jpg", predictions=()):
    return {"id": task_id, "data": {"image": image}, "annotations": list(annotations), "predictions": list(predictions)}


def reasons(parsed):
    return sorted(note.reason for note in parsed.notes)


def only_image(parsed):
    assert len(parsed.images) == 1
    return parsed.images[0]


def test_percent_becomes_pixels():
    parsed = parse_labelstudio_tasks([task(1, [annotation(3, [rect(10, 20, 30, 40)])])])
    image = only_image(parsed)
    assert (image.width, image.height, image.file_name, image.task_id) == (W, H, "cat.jpg", 1)
    assert image.image_ref == "/data/upload/1/0a1b2c3d-cat.jpg"
    assert image.boxes_by_annotator == {"3": [Box(100.0, 100.0, 400.0, 300.0)]}
    assert parsed.notes == []
    assert parsed.counts["boxes_drawn"] == 1


def test_percent_coordinates_are_clamped_and_reported():
    parsed = parse_labelstudio_tasks([task(1, [annotation(3, [rect(-5, 90, 20, 20)])])])
    box = only_image(parsed).boxes_by_annotator["3"][0]
    assert box == Box(0.0, 450.0, 150.0, 500.0)
    assert reasons(parsed) == ["clamped"]
    assert parsed.counts["boxes_clamped"] == 1


def test_box_entirely_outside_is_ignored_as_degenerate():
    parsed = parse_labelstudio_tasks([task(1, [annotation(3, [rect(120, 10, 10, 10)])])])
    assert only_image(parsed).boxes_by_annotator == {"3": []}
    assert parsed.counts["results_ignored"] == {"degenerate_box": 1}


def test_rotated_rectangle_becomes_its_envelope_in_pixel_space():
    # 200x100 px box at (100, 100) rotated 30 degrees clockwise about its top-left corner:
    # corners (0,0) (173.205,100) (123.205,186.603) (-50,86.603) relative to (100,100).
    parsed = parse_labelstudio_tasks([task(1, [annotation(3, [rect(10, 20, 20, 20, rotation=30)])])])
    box = only_image(parsed).boxes_by_annotator["3"][0]
    assert box.x1 == pytest.approx(50.0)
    assert box.y1 == pytest.approx(100.0)
    assert box.x2 == pytest.approx(273.2051, abs=1e-3)
    assert box.y2 == pytest.approx(286.6025, abs=1e-3)
    assert reasons(parsed) == ["rotated"]
    assert parsed.counts["boxes_rotated"] == 1


def test_rotation_by_90_degrees_swaps_pixel_sides_not_percent_sides():
    # 200x100 px at (100,100), turned 90 degrees clockwise: x in [0,100], y in [100,300].
    parsed = parse_labelstudio_tasks([task(1, [annotation(3, [rect(10, 20, 20, 20, rotation=90)])])])
    box = only_image(parsed).boxes_by_annotator["3"][0]
    assert [box.x1, box.y1, box.x2, box.y2] == pytest.approx([0.0, 100.0, 100.0, 300.0])


def test_cancelled_annotation_is_ignored_and_not_an_annotator():
    parsed = parse_labelstudio_tasks(
        [task(1, [annotation(3, [rect(10, 10, 10, 10)]), annotation(4, [rect(50, 50, 10, 10)], 2, cancelled=True)])]
    )
    assert only_image(parsed).annotators == ["3"]
    assert parsed.counts["annotations_ignored"] == {"cancelled": 1}
    assert reasons(parsed) == ["cancelled"]
    assert parsed.notes[0].annotator == "4"


def test_empty_result_counts_as_annotator_with_no_box():
    parsed = parse_labelstudio_tasks([task(1, [annotation(3, [rect(10, 10, 10, 10)]), annotation(4, [], 2)])])
    assert only_image(parsed).boxes_by_annotator == {"3": [Box(100.0, 50.0, 200.0, 100.0)], "4": []}
    assert reasons(parsed) == ["empty_result"]
    assert parsed.counts["empty_annotations"] == 1


def polygon_result() -> dict:
    """A polygon region: not a box, so the parser reports it and skips it."""
    return {"id": "p1", "from_name": "poly", "to_name": "image", "type": "polygonlabels", "original_width": W,
            "original_height": H, "value": {"points": [[1, 1], [5, 1], [5, 5]], "polygonlabels": ["salient"]}}


def test_non_rectangle_and_unknown_label_results_are_reported_and_ignored():
    polygon = polygon_result()
    results = [rect(10, 10, 10, 10), polygon, rect(50, 50, 10, 10, label="person", rid="r2")]
    parsed = parse_labelstudio_tasks([task(1, [annotation(3, results)])])
    assert len(only_image(parsed).boxes_by_annotator["3"]) == 1
    assert parsed.counts["results_ignored"] == {"non_rectangle": 1, "unknown_label": 1}
    assert reasons(parsed) == ["non_rectangle", "unknown_label"]


def test_labels_are_case_insensitive_and_configurable():
    results = [rect(10, 10, 10, 10, label="Salient"), rect(50, 50, 10, 10, label="Person", rid="r2")]
    default = parse_labelstudio_tasks([task(1, [annotation(3, results)])])
    assert len(only_image(default).boxes_by_annotator["3"]) == 1
    both = parse_labelstudio_tasks([task(1, [annotation(3, results)])], labels=["salient", "PERSON"])
    assert len(only_image(both).boxes_by_annotator["3"]) == 2


def test_completed_by_int_dict_and_email():
    assert annotator_id(7) == "7"
    assert annotator_id({"id": 7, "email": "ann@example.org"}) == "ann@example.org"
    assert annotator_id({"id": 7}) == "7"
    assert annotator_id(None) is None
    assert annotator_id(True) is None
    parsed = parse_labelstudio_tasks(
        [task(1, [annotation({"id": 7, "email": "ann@example.org"}, [rect(1, 1, 5, 5)]), annotation(8, [], 2)])]
    )
    assert only_image(parsed).annotators == ["8", "ann@example.org"]


def test_malformed_items_are_reported_not_raised():
    bad_value = rect(10, 10, 10, 10, rid="bad")
    bad_value["value"]["x"] = "ten"
    no_value = {"id": "nv", "type": "rectanglelabels"}
    tasks = [
        task(1, [annotation(3, [bad_value, no_value, "junk", rect(20, 20, 10, 10)]), "not an annotation"]),
        task(2, [annotation(None, [rect(1, 1, 5, 5)])]),
        {"id": 3, "annotations": []},  # no data
        "not a task",
        {"data": {"image": "x.jpg"}, "annotations": []},  # no id
    ]
    parsed = parse_labelstudio_tasks(tasks)
    image = only_image(parsed)
    assert image.boxes_by_annotator == {"3": [Box(200.0, 100.0, 300.0, 150.0)]}
    assert parsed.counts["results_ignored"] == {"malformed": 3}
    assert parsed.counts["annotations_ignored"] == {"malformed": 2}
    assert parsed.counts["tasks_skipped"] == {"malformed": 3, "no_annotations": 1}
    assert any("missing or non-numeric x" in note.detail for note in parsed.notes)


def test_predictions_are_not_annotations():
    prediction = {"id": 9, "model_version": "v1", "result": [rect(60, 60, 10, 10)]}
    parsed = parse_labelstudio_tasks([task(1, [annotation(3, [rect(10, 10, 10, 10)])], predictions=[prediction])])
    assert only_image(parsed).boxes_by_annotator["3"] == [Box(100.0, 50.0, 200.0, 100.0)]
    assert parsed.counts["predictions_ignored"] == 1


def test_duplicate_annotator_keeps_the_latest_annotation_in_any_order():
    old = annotation(3, [rect(10, 10, 10, 10)], 1, updated_at="2024-01-01T00:00:00Z")
    new = annotation(3, [rect(50, 50, 10, 10)], 2, updated_at="2024-02-01T00:00:00Z")
    for order in ([old, new], [new, old]):
        parsed = parse_labelstudio_tasks([task(1, order)])
        assert only_image(parsed).boxes_by_annotator == {"3": [Box(500.0, 250.0, 600.0, 300.0)]}
        assert parsed.counts["annotations_ignored"] == {"duplicate_annotator": 1}


def test_tasks_without_usable_annotations_are_left_out():
    parsed = parse_labelstudio_tasks([task(1, []), task(2, [annotation(3, [], 1, cancelled=True)])])
    assert parsed.images == []
    assert parsed.counts["tasks_skipped"] == {"no_annotations": 2}


def test_unknown_size_skips_image_unless_images_dir_gives_it(tmp_path):
    from PIL import Image

    tasks = [task(1, [annotation(3, []), annotation(4, [], 2)], image="/data/upload/1/0a1b2c3d-cat.jpg")]
    parsed = parse_labelstudio_tasks(tasks)
    assert parsed.images == []
    assert parsed.counts["tasks_skipped"] == {"unknown_size": 1}

    Image.new("RGB", (64, 48)).save(tmp_path / "cat.jpg")
    parsed = parse_labelstudio_tasks(tasks, image_size=image_size_reader(tmp_path))
    image = only_image(parsed)
    assert (image.width, image.height) == (64, 48)
    assert image.boxes_by_annotator == {"3": [], "4": []}

    missing = parse_labelstudio_tasks(
        [task(2, [annotation(3, [])], image="dog.jpg")], image_size=image_size_reader(tmp_path)
    )
    assert missing.images == []
    assert "not found" in missing.notes[-1].detail


def test_image_key_and_fallback_to_first_string():
    t = {
        "id": 1,
        "data": {"meta": 5, "photo": "s3://bucket/dir/a%20b.png"},
        "annotations": [annotation(3, [rect(1, 1, 5, 5)])],
    }
    parsed = parse_labelstudio_tasks([t])
    assert only_image(parsed).file_name == "a b.png"
    assert parsed.counts["tasks_image_key_fallback"] == 1
    parsed = parse_labelstudio_tasks([t], image_key="photo")
    assert parsed.counts["tasks_image_key_fallback"] == 0


def test_images_sorted_by_task_id():
    tasks = [task(tid, [annotation(3, [rect(1, 1, 5, 5)])], image=f"img{tid}.jpg") for tid in (30, 4, 12)]
    assert [image.task_id for image in parse_labelstudio_tasks(tasks).images] == [4, 12, 30]


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("/data/upload/12/0a1b2c3d-cat.jpg", "cat.jpg"),
        ("/data/upload/12/0a1b2c3d-my-photo-1.jpg", "my-photo-1.jpg"),
        ("http://localhost:8080/data/upload/3/deadbeef-dog.png", "dog.png"),
        ("/data/local-files/?d=some/dir/name.jpg", "name.jpg"),
        ("/data/local-files/?d=some%2Fdir%2Fname%20x.jpg", "name x.jpg"),
        ("https://example.org/images/a%20cat.jpg?X-Amz-Signature=abc", "a cat.jpg"),
        ("gs://bucket/folder/img_001.jpg", "img_001.jpg"),
        ("plain/path/0a1b2c3d-kept.jpg", "0a1b2c3d-kept.jpg"),  # not an upload: prefix kept
        ("photo.jpg", "photo.jpg"),
    ],
)
def test_image_file_name(ref, name):
    assert labelstudio_image_file_name(ref) == name


# -- files and formats ---------------------------------------------------------------------


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json", "not valid JSON"),
        ('{"foo": 1}', "found an object"),
        ('{"images": [], "annotations": [], "categories": []}', "COCO file"),
        ("42", "found int"),
        ("[]", "no tasks"),
        ("[1, 2, 3]", "neither 'annotations'"),
        ('[{"foo": "bar"}]', "neither 'annotations'"),
    ],
)
def test_not_an_export_is_input_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "export.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as info:
        read_labelstudio_export(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_file_and_bad_csv_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_labelstudio_export(tmp_path / "nope.json")
    bad = tmp_path / "export.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a Label Studio CSV export"):
        read_labelstudio_export(bad)


def test_single_task_object_is_accepted(tmp_path):
    path = write_json(tmp_path / "task.json", task(1, [annotation(3, [rect(10, 20, 30, 40)])]))
    parsed = read_labelstudio_export(path)
    assert only_image(parsed).boxes_by_annotator == {"3": [Box(100.0, 100.0, 400.0, 300.0)]}


def full_export():
    """Two tasks, three annotators, every region type the flat formats can carry."""
    polygon = polygon_result()
    return [
        task(
            1,
            [
                annotation(1, [rect(10, 10, 20, 20), rect(50, 50, 10, 10, rid="r2"), polygon], 11),
                annotation(2, [rect(11, 9, 20, 21), rect(60, 60, 10, 10, label="person", rid="r3")], 12),
                annotation(5, [], 13),
            ],
            image="/data/upload/1/0a1b2c3d-cat.jpg",
        ),
        task(
            2,
            [annotation(1, [rect(-5, 80, 30, 30, rotation=15)], 21), annotation(2, [rect(1, 2, 3, 4)], 22)],
            image="/data/local-files/?d=imgs/dog.jpg",
        ),
    ]


def json_min_records():
    """What Label Studio's JSON-MIN export gives for `full_export()` (one record per annotation)."""
    records = []
    for t in full_export():
        for a in t["annotations"]:
            record = {"image": t["data"]["image"], "id": t["id"]}
            for r in a["result"]:
                region = {**r["value"], "original_width": r["original_width"], "original_height": r["original_height"]}
                record.setdefault(r["from_name"], []).append(region)
            record.update(
                annotator=a["completed_by"],
                annotation_id=a["id"],
                created_at=a["created_at"],
                updated_at=a["updated_at"],
                lead_time=3.5,
            )
            records.append(record)
    return records


def write_csv(path: Path, records) -> Path:
    keys = sorted({key for record in records for key in record})
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys, quoting=csv.QUOTE_NONNUMERIC)
        writer.writeheader()
        for record in records:
            writer.writerow(
                {key: json.dumps(value) if isinstance(value, (list, dict)) else value for key, value in record.items()}
            )
    return path


def test_json_min_and_csv_parse_like_the_full_export(tmp_path):
    full = read_labelstudio_export(write_json(tmp_path / "full.json", full_export()))
    json_min = read_labelstudio_export(write_json(tmp_path / "min.json", json_min_records()))
    from_csv = read_labelstudio_export(write_csv(tmp_path / "export.csv", json_min_records()))
    assert (full.source_format, json_min.source_format, from_csv.source_format) == (
        "labelstudio-json",
        "labelstudio-json-min",
        "labelstudio-csv",
    )
    assert [i.file_name for i in full.images] == ["cat.jpg", "dog.jpg"]
    assert full.images[0].boxes_by_annotator["5"] == []
    assert json_min.images == full.images
    assert from_csv.images == full.images
    assert reasons(json_min) == reasons(full) == reasons(from_csv)


def test_label_studio_converter_output_parses_like_the_full_export(tmp_path):
    """Round trip through label-studio-sdk's own JSON-MIN and CSV converters."""
    converter_module = pytest.importorskip("label_studio_sdk.converter")
    config = (
        '<View><Image name="image" value="$image"/>'
        '<RectangleLabels name="label" toName="image"><Label value="salient"/><Label value="person"/></RectangleLabels>'
        '<PolygonLabels name="poly" toName="image"><Label value="salient"/></PolygonLabels></View>'
    )
    export = full_export()
    export[1]["annotations"].append(annotation(9, [rect(1, 1, 1, 1)], 23, cancelled=True))
    source = write_json(tmp_path / "full.json", export)
    converter = converter_module.Converter(config=config, project_dir=str(tmp_path), download_resources=False)
    converter.convert(str(source), str(tmp_path / "min"), "JSON_MIN", is_dir=False)
    converter.convert(str(source), str(tmp_path / "csv"), "CSV", is_dir=False)

    full = read_labelstudio_export(source)
    json_min = read_labelstudio_export(tmp_path / "min" / "result.json")
    from_csv = read_labelstudio_export(tmp_path / "csv" / "result.csv")
    assert full.counts["annotations_ignored"] == {"cancelled": 1}  # the flat formats drop it
    assert json_min.images == full.images
    assert from_csv.images == full.images
