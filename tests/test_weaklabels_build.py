"""The weak-label builder on generated sample data: outputs, round trip, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools.coco import COCO

from cgc.cli import cgc
from cgc.datasets import read_instance_label_map
from cgc.errors import InputError
from cgc.weaklabels.builder import write_weak_labels
from cgc.weaklabels.priors import PriorSettings
from helpers import iou


@pytest.fixture()
def sample_copy(sample_dir: Path, true_box_file: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the sample data and its box file, free to damage."""
    copy = tmp_path / "data"
    shutil.copytree(sample_dir, copy)
    boxes = tmp_path / "boxes.json"
    shutil.copy(true_box_file, boxes)
    return copy, boxes


def build(data: Path, boxes: Path, out: Path, **kwargs) -> dict:
    write_weak_labels(data / "imgs", data / "masks", boxes, out, progress=False, **kwargs)
    return json.loads((out / "report.json").read_text())


def test_weak_labels_round_trip_through_pycocotools(sample_dir: Path, true_box_file: Path, tmp_path: Path) -> None:
    report = build(sample_dir, true_box_file, tmp_path / "out", workers=1)
    coco = COCO(str(tmp_path / "out" / "annotations.json"))
    assert report["counts"]["images_used"] == len(coco.getImgIds()) == 12
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["salient"]
    ious = []
    for image in coco.loadImgs(coco.getImgIds()):
        truth, _ = read_instance_label_map(sample_dir / "gt" / image["file_name"].replace(".jpg", ".png"))
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        assert len(annotations) == len(truth)
        for annotation, true_mask in zip(annotations, truth):
            mask = coco.annToMask(annotation).astype(bool)
            assert annotation["area"] == mask.sum() and annotation["iscrowd"] == 0
            assert annotation["segmentation"]["size"] == [image["height"], image["width"]]
            ious.append(iou(mask, true_mask))
    assert np.mean(ious) > 0.9
    coverage = [item["box_coverage"] for item in report["instances"]]
    assert all(0 < value <= 1 for value in coverage)


def test_output_does_not_depend_on_worker_count(sample_dir: Path, true_box_file: Path, tmp_path: Path) -> None:
    build(sample_dir, true_box_file, tmp_path / "one", workers=1)
    build(sample_dir, true_box_file, tmp_path / "two", workers=2)
    for name in ("annotations.json", "report.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_priors_beat_the_naive_rule_on_sample_data(sample_dir: Path, true_box_file: Path, tmp_path: Path) -> None:
    from cgc.weaklabels.quality import compare_to_truth
    from cgc.datasets import instances_to_coco, read_ilso
    from cgc.fileio import atomic_write_json

    atomic_write_json(tmp_path / "truth.json", instances_to_coco(read_ilso(sample_dir), "truth"))
    build(sample_dir, true_box_file, tmp_path / "priors", workers=1)
    build(sample_dir, true_box_file, tmp_path / "naive", workers=1, settings=PriorSettings(rule="all-in-box"))
    priors = compare_to_truth(tmp_path / "priors" / "annotations.json", tmp_path / "truth.json")
    naive = compare_to_truth(tmp_path / "naive" / "annotations.json", tmp_path / "truth.json")
    assert priors.images_compared == naive.images_compared == 12
    assert priors.mean_iou > naive.mean_iou + 0.02


def test_bad_inputs_are_reported_per_image(sample_copy: tuple[Path, Path], tmp_path: Path) -> None:
    data, boxes = sample_copy
    (data / "masks" / "sample_00001.png").unlink()  # missing mask
    (data / "imgs" / "sample_00002.jpg").write_bytes(b"not a jpeg")  # unreadable picture
    cv2.imwrite(str(data / "masks" / "sample_00003.png"), np.zeros((50, 60), np.uint8))  # wrong size
    cv2.imwrite(str(data / "masks" / "sample_00004.png"), np.zeros((300, 400), np.uint8))  # nothing salient
    (data / "imgs" / "sample_00005.jpg").unlink()  # missing picture
    content = json.loads(boxes.read_text())
    content["annotations"] = [a for a in content["annotations"] if a["image_id"] != 6]  # no boxes at all
    first_of_7 = next(a for a in content["annotations"] if a["image_id"] == 7)
    content["annotations"].append({"id": 999, "image_id": 7, "category_id": 1, "bbox": [500, 400, 30, 30]})  # outside
    first_of_7["bbox"] = [first_of_7["bbox"][0] - 10_000, first_of_7["bbox"][1], first_of_7["bbox"][2] + 10_000, first_of_7["bbox"][3]]
    content["images"][7]["width"] = 640  # image 8: boxes drawn on another size
    boxes.write_text(json.dumps(content))

    report = build(data, boxes, tmp_path / "out", workers=2)
    reasons = {item["file_name"]: item["reason"] for item in report["excluded_images"]}
    assert reasons["sample_00001.jpg"] == "mask file not found"
    assert reasons["sample_00002.jpg"].startswith("unreadable file:") and "sample_00002.jpg" in reasons["sample_00002.jpg"]
    assert "60x50" in reasons["sample_00003.jpg"] and "400x300" in reasons["sample_00003.jpg"]
    assert reasons["sample_00004.jpg"].startswith("no usable region")
    assert reasons["sample_00005.jpg"] == "image file not found"
    assert reasons["sample_00006.jpg"].startswith("no salient instance")
    assert "640x300" in reasons["sample_00008.jpg"]
    assert "sample_00007.jpg" not in reasons
    dropped = {(item["file_name"], item["box_id"]): item["reason"] for item in report["dropped_instances"]}
    assert dropped[("sample_00007.jpg", 999)] == "box lies outside the image"
    assert {"image_id": 7, "file_name": "sample_00007.jpg", "note": f"box {first_of_7['id']} clipped to the image"} in report["notes"]
    assert all(reason == "no salient pixel in the box" for (name, _), reason in dropped.items() if name == "sample_00004.jpg")
    annotations = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert {image["file_name"] for image in annotations["images"]} == {f"sample_{i:05d}.jpg" for i in (7, 9, 10, 11, 12)}
    assert report["counts"]["images_excluded"] == 7


def test_fatal_input_errors_leave_no_output(sample_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.raises(InputError, match="not valid JSON"):
        build(sample_dir, bad, tmp_path / "out")
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 2, "bbox": [0, 0, 1, 1]}]}))
    with pytest.raises(InputError, match="image id 2"):
        build(sample_dir, bad, tmp_path / "out")
    with pytest.raises(InputError, match="box file not found"):
        build(sample_dir, tmp_path / "missing.json", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_overlays_are_written_per_used_image(sample_dir: Path, true_box_file: Path, tmp_path: Path) -> None:
    build(sample_dir, true_box_file, tmp_path / "out", workers=2, overlays_dir=tmp_path / "overlays")
    pictures = sorted(path.name for path in (tmp_path / "overlays").glob("*.jpg"))
    assert pictures == [f"sample_{i:05d}.jpg" for i in range(1, 13)]
    overlay = cv2.imread(str(tmp_path / "overlays" / pictures[0]))
    original = cv2.imread(str(sample_dir / "imgs" / pictures[0]))
    assert overlay.shape == original.shape and np.abs(overlay.astype(int) - original).mean() > 1


def test_cli_build_and_compare(sample_dir: Path, true_box_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "weak"
    result = runner.invoke(cgc, ["weaklabels", "build", "--images", str(sample_dir / "imgs"), "--masks", str(sample_dir / "masks"),
                                 "--boxes", str(true_box_file), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "12 of 12 images" in result.output
    truth = tmp_path / "truth.json"
    assert runner.invoke(cgc, ["export", "coco", "--format", "ilso", "--root", str(sample_dir), "--out", str(truth)]).exit_code == 0
    result = runner.invoke(cgc, ["weaklabels", "compare", "--labels", str(out / "annotations.json"), "--truth", str(truth), "--json", str(tmp_path / "q.json")])
    assert result.exit_code == 0, result.output
    quality = json.loads((tmp_path / "q.json").read_text())
    assert quality["images_compared"] == 12 and quality["mean_iou"] > 0.9
    assert f"mean IoU {quality['mean_iou']:.4f}" in result.output


def test_cli_errors_are_one_line(sample_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cgc, ["weaklabels", "build", "--images", str(sample_dir / "imgs"), "--masks", str(tmp_path / "nowhere"),
                                      "--boxes", str(tmp_path / "b.json"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'nowhere'}: mask folder not found"
    assert "Traceback" not in result.output


def test_a_failed_build_leaves_the_previous_labels_and_report_together(sample_dir: Path, true_box_file: Path,
                                                                        tmp_path: Path, monkeypatch) -> None:
    """A disk that fills up while the new annotations.json is written must not leave a new report beside old labels."""
    import cgc.fileio as fileio

    out = tmp_path / "weak"
    build(sample_dir, true_box_file, out, workers=1, overlays_dir=out / "overlays")
    before = {name: (out / name).read_bytes() for name in ("annotations.json", "report.json")}
    assert len(list((out / "overlays").glob("*.jpg"))) == 12
    real_write = fileio.atomic_write_bytes

    def full_disk(path, content):
        if Path(path).name == "annotations.json":
            raise OSError(28, "No space left on device")
        real_write(path, content)

    monkeypatch.setattr(fileio, "atomic_write_bytes", full_disk)
    with pytest.raises(OSError):
        build(sample_dir, true_box_file, out, workers=1, settings=PriorSettings(rule="all-in-box"))
    assert {name: (out / name).read_bytes() for name in before} == before
    assert len(list((out / "overlays").glob("*.jpg"))) == 12 and not list(tmp_path.glob(".weak*"))


@pytest.mark.parametrize("rule", ["all-in-box", "resolve-shared"])
def test_a_photo_turned_by_exif_is_read_as_shown(sample_copy: tuple[Path, Path], tmp_path: Path, rule: str) -> None:
    """Label Studio shows (and boxes) the turned picture; every rule must read the picture at that size."""
    from PIL import Image

    from cgc.datasets.pictures import EXIF_ORIENTATION

    data, boxes = sample_copy
    write_weak_labels(data / "imgs", data / "masks", boxes, tmp_path / "plain", PriorSettings(rule=rule), progress=False)
    path = data / "imgs" / "sample_00001.jpg"
    shown = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "turn 90 degrees clockwise to show": store it turned the other way
    Image.fromarray(np.ascontiguousarray(np.rot90(shown, 1))).save(path, exif=exif, quality=95)
    write_weak_labels(data / "imgs", data / "masks", boxes, tmp_path / "turned", PriorSettings(rule=rule), progress=False)
    plain, turned = (json.loads((tmp_path / name / "annotations.json").read_text()) for name in ("plain", "turned"))
    assert plain["images"] == turned["images"]
    before, after = ([a for a in labels["annotations"] if a["image_id"] == 1] for labels in (plain, turned))
    assert before and len(before) == len(after)
    for a, b in zip(before, after):  # re-encoding the JPEG moves a few pixels where the picture's edges count
        assert np.allclose(a["bbox"], b["bbox"], atol=2) and abs(a["area"] - b["area"]) <= 0.01 * a["area"]


def test_weak_and_true_instances_are_paired_one_to_one() -> None:
    """The pairing maximises the summed IoU: a weak label is not counted twice for two true instances."""
    from cgc.coco import encode_mask
    from cgc.weaklabels.quality import matched_ious, paired

    def square(x0: int, x1: int) -> dict:
        mask = np.zeros((20, 40), bool)
        mask[5:15, x0:x1] = True
        return encode_mask(mask)

    truth = [square(0, 10), square(10, 20), square(30, 40)]
    weak = [square(10, 20), square(0, 12)]  # the second also overlaps the truth's second instance
    assert sorted((row, col) for row, col, _ in paired(weak, truth)) == [(0, 1), (1, 0)]
    np.testing.assert_allclose(matched_ious(weak, truth), [10 / 12, 1.0, 0.0])
    assert paired([], truth) == []
