"""`cgc export coco` end to end through click's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image
from pycocotools.coco import COCO

from cgc.cli import cgc

H, W = 10, 14


def save_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((H, W, 3), 90, np.uint8)).save(path)


def save_label_map(path: Path, label: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label).save(path)


def two_instances() -> np.ndarray:
    label = np.zeros((H, W), np.uint8)
    label[1:4, 1:5] = 1
    label[6:9, 7:12] = 2
    return label


def test_export_ilso_writes_coco_and_summary(tmp_path: Path) -> None:
    root = tmp_path / "ilso"
    label = two_instances()
    save_image(root / "imgs" / "a.jpg")
    save_label_map(root / "gt" / "a.png", label)
    save_image(root / "imgs" / "b.jpg")
    save_label_map(root / "gt" / "b.png", np.where(label == 2, 1, 0).astype(np.uint8))
    save_image(root / "imgs" / "c.jpg")  # no gt: a warning, not a crash
    out = tmp_path / "out" / "ilso.json"

    result = CliRunner().invoke(cgc, ["export", "coco", "--format", "ilso", "--root", str(root), "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert "2 images, 3 instances, 1 warnings" in result.output
    assert "c.jpg" in result.output
    data = json.loads(out.read_text())
    assert [image["file_name"] for image in data["images"]] == ["a.jpg", "b.jpg"]
    assert [ann["id"] for ann in data["annotations"]] == [1, 2, 3]
    assert [ann["area"] for ann in data["annotations"]] == [12, 15, 15]
    api = COCO(str(out))
    np.testing.assert_array_equal(api.annToMask(api.anns[2]).astype(bool), label == 2)


def test_export_soc_with_split(tmp_path: Path) -> None:
    split = tmp_path / "SOC" / "ValSet"
    save_image(split / "Imgs" / "x.jpg")
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[2:5, 2:5] = (255, 0, 0)
    rgb[6:8, 8:12] = (0, 0, 255)
    (split / "Instance gt" / "gt").mkdir(parents=True)
    Image.fromarray(rgb).save(split / "Instance gt" / "gt" / "x.png")
    out = tmp_path / "soc.json"

    result = CliRunner().invoke(
        cgc, ["export", "coco", "--format", "soc", "--root", str(tmp_path / "SOC"), "--split", "ValSet", "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    assert "1 images, 2 instances, 0 warnings" in result.output
    data = json.loads(out.read_text())
    assert [ann["area"] for ann in data["annotations"]] == [9, 8]


def test_export_bad_root_is_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "does-not-exist"
    out = tmp_path / "x.json"

    result = CliRunner().invoke(cgc, ["export", "coco", "--format", "ilso", "--root", str(missing), "--out", str(out)])

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(missing) in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_export_no_annotated_images_is_error(tmp_path: Path) -> None:
    root = tmp_path / "ilso"
    save_image(root / "imgs" / "a.jpg")
    (root / "gt").mkdir()

    result = CliRunner().invoke(cgc, ["export", "coco", "--format", "ilso", "--root", str(root), "--out", str(tmp_path / "o.json")])

    assert result.exit_code == 1
    assert "Error: " in result.output and str(root) in result.output
