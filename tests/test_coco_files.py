"""The one reader and writer of each COCO file: what they accept, what they refuse, and that a round trip keeps bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cgc.coco import decode_mask, encode_mask
from cgc.coco_files import (read_box_file, read_coco_boxes, read_instance_file, read_prediction_folder,
                            write_coco_file, write_prediction_folder)
from cgc.errors import InputError

H, W = 12, 16


def instance_file(**changes) -> dict:
    square = np.zeros((H, W), bool)
    square[2:6, 3:9] = True
    data = {
        "info": {"description": "test"},
        "images": [{"id": 4, "file_name": "a.jpg", "height": H, "width": W},
                   {"id": 5, "file_name": "b.jpg", "height": H, "width": W}],
        "annotations": [{"id": 1, "image_id": 4, "segmentation": encode_mask(square), "bbox": [3, 2, 6, 4]},
                        {"id": 2, "image_id": 4, "segmentation": [[1, 1, 5, 1, 5, 5, 1, 5]]}],
    }
    return {**data, **changes}


def test_instance_file_masks_come_out_as_rle_with_a_box(tmp_path: Path) -> None:
    write_coco_file(tmp_path / "labels.json", instance_file())
    labels = read_instance_file(tmp_path / "labels.json")
    polygon = labels.annotations[1]
    assert isinstance(polygon["segmentation"]["counts"], str) and polygon["segmentation"]["size"] == [H, W]
    assert decode_mask(polygon["segmentation"], H, W)[2, 2] and polygon["bbox"] == [1.0, 1.0, 4.0, 4.0]
    assert labels.annotations[0]["bbox"] == [3, 2, 6, 4]  # the file's box is kept: a weak label's box is the annotator's
    assert {key: len(items) for key, items in labels.annotations_by_image().items()} == {4: 2, 5: 0}
    assert list(labels.masks_by_file_name()) == ["a.jpg", "b.jpg"]


def test_a_checked_file_is_written_back_byte_for_byte(tmp_path: Path) -> None:
    data = instance_file()
    data["annotations"] = data["annotations"][:1]
    write_coco_file(tmp_path / "labels.json", data)
    write_coco_file(tmp_path / "again.json", read_instance_file(tmp_path / "labels.json"))
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "labels.json").read_bytes()


@pytest.mark.parametrize("changes, error", [
    ({"images": [{"id": 4, "file_name": "a.jpg", "height": H, "width": W}] * 2}, "image id 4 appears more than once"),
    ({"images": [{"id": "4", "file_name": "a.jpg", "height": H, "width": W}]}, "integer 'id'"),
    ({"images": [{"id": 4, "file_name": "a.jpg", "height": H}]}, "needs a positive integer 'height' and 'width'"),
    ({"annotations": [{"id": 1, "image_id": 9, "segmentation": [[1, 1, 5, 1, 5, 5]]}]}, "image id 9, which is not"),
    ({"annotations": [{"id": 1, "image_id": 4}]}, "has no segmentation"),
    ({"annotations": [{"id": 1, "image_id": 4, "segmentation": {"size": [3, 3], "counts": "0"}}]}, "mask size [3, 3]"),
    ({"annotations": [{"id": 1, "image_id": 4, "segmentation": [[1, 1, 5, 1, 5, 5]], "bbox": [0, 0, "w", 1]}]},
     "'bbox' of 4 finite numbers"),
    ({"annotations": [{"id": 1, "image_id": 4, "segmentation": [[1, 1, 5, 1, 5, 5]]}] * 2},
     "annotation id 1 appears more than once"),
    ({"annotations": {"id": 1}}, "'annotations' lists"),
])
def test_instance_file_refuses_with_one_line_naming_the_file(tmp_path: Path, changes: dict, error: str) -> None:
    write_coco_file(tmp_path / "labels.json", instance_file(**changes))
    with pytest.raises(InputError, match=error.replace("[", r"\[")) as caught:
        read_instance_file(tmp_path / "labels.json")
    assert str(caught.value).startswith(str(tmp_path / "labels.json"))


def test_box_file_needs_boxes_not_masks_or_sizes(tmp_path: Path) -> None:
    data = {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg", "width": W, "height": H}],
            "annotations": [{"image_id": 2, "bbox": [1, 2, 3, 4]}, {"image_id": 2, "bbox": [0, 0, 1, 1]}]}
    write_coco_file(tmp_path / "boxes.json", data)
    records = read_box_file(tmp_path / "boxes.json")
    assert [(record.file_name, record.width, record.box_ids) for record in records] == [("a.jpg", None, []),
                                                                                         ("b.jpg", W, [1, 2])]
    assert records[1].boxes[0] == (1.0, 2.0, 4.0, 6.0)
    data["annotations"][0]["bbox"] = [1, 2, 3]
    with pytest.raises(InputError, match=r"annotations\[0\] needs a 'bbox'"):
        read_coco_boxes(data)


def test_prediction_folder_round_trip_keeps_extra_fields(tmp_path: Path) -> None:
    mask = np.zeros((H, W), bool)
    mask[1:4, 1:4] = True
    images = [{"id": 1, "file_name": "a.jpg", "height": H, "width": W},
              {"id": 2, "file_name": "b.jpg", "height": H, "width": W}]
    results = [{"image_id": 2, "segmentation": encode_mask(mask), "score": 0.9, "bbox": [1, 1, 3, 3], "refined": True}]
    write_prediction_folder(tmp_path, results, images)
    read_images, grouped = read_prediction_folder(tmp_path)
    assert read_images == images and grouped[1] == []
    assert grouped[2][0]["refined"] is True and grouped[2][0]["category_id"] == 1
    results[0]["image_id"] = 3
    write_prediction_folder(tmp_path, results, images)
    with pytest.raises(InputError, match="absent from images.json"):
        read_prediction_folder(tmp_path)
    (tmp_path / "images.json").write_text(json.dumps(images * 2))
    with pytest.raises(InputError, match="appears more than once"):
        read_prediction_folder(tmp_path)
