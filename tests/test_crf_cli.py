"""`cgc crf refine` and `cgc crf tune` on a tiny generated prediction folder, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cgc.cli import cgc
from cgc.coco import decode_mask, encode_mask, mask_bbox_xywh
from cgc.sample import generate_scene

H, W = 120, 160


def perturbed(mask: np.ndarray, index: int) -> np.ndarray:
    """A predicted mask: the truth grown or shrunk by a few pixels."""
    kernel = np.ones((7, 7), np.uint8)
    grown = cv2.dilate if index % 2 == 0 else cv2.erode
    out = grown(mask.astype(np.uint8), kernel).astype(bool)
    return out if out.any() else mask


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("crf")
    images_dir, predictions_dir = root / "imgs", root / "pred"
    images_dir.mkdir()
    predictions_dir.mkdir()
    images, results, gt_images, gt_annotations = [], [], [], []
    for index in range(3):
        scene = generate_scene(np.random.SeedSequence([11, index]), height=H, width=W)
        name = f"scene_{index}.png"
        cv2.imwrite(str(images_dir / name), scene.image)
        images.append({"id": index + 1, "file_name": name, "height": H, "width": W})
        gt_images.append({"id": 100 + index, "file_name": name, "height": H, "width": W})
        for number, truth in enumerate(scene.instances[:2]):
            mask = perturbed(truth, number)
            results.append({"image_id": index + 1, "category_id": 1, "segmentation": encode_mask(mask),
                            "bbox": mask_bbox_xywh(mask), "score": 0.9 - 0.1 * number})
        for truth in scene.instances:
            gt_annotations.append({"id": len(gt_annotations) + 1, "image_id": 100 + index, "category_id": 1,
                                   "segmentation": encode_mask(truth), "bbox": mask_bbox_xywh(truth),
                                   "area": float(truth.sum()), "iscrowd": 0})
    (predictions_dir / "images.json").write_text(json.dumps(images))
    (predictions_dir / "results.json").write_text(json.dumps(results))
    gt = root / "gt.json"
    gt.write_text(json.dumps({"images": gt_images, "annotations": gt_annotations, "categories": [{"id": 1, "name": "salient"}]}))
    return {"root": root, "images": images_dir, "predictions": predictions_dir, "gt": gt}


def run(*args: str) -> "object":
    return CliRunner().invoke(cgc, [str(arg) for arg in args], catch_exceptions=False)


def test_crf_refine_writes_refined_results(folders: dict[str, Path]) -> None:
    out = folders["root"] / "refined"
    result = run("crf", "refine", "--predictions", folders["predictions"], "--images", folders["images"], "--out", out,
                 "--workers", "2")
    assert result.exit_code == 0, result.output
    before = json.loads((folders["predictions"] / "results.json").read_text())
    assert f"{len(before)} instances in 3 images" in result.output
    after = json.loads((out / "results.json").read_text())
    assert [(r["image_id"], r["score"]) for r in after] == [(r["image_id"], r["score"]) for r in before]
    changed = 0
    for old, new in zip(before, after):
        new_mask = decode_mask(new["segmentation"], H, W)
        assert new["bbox"] == mask_bbox_xywh(new_mask) and new_mask.any()
        changed += int((new_mask != decode_mask(old["segmentation"], H, W)).any())
    assert changed >= 4
    assert json.loads((out / "images.json").read_text()) == json.loads((folders["predictions"] / "images.json").read_text())


def test_crf_tune_searches_coarse_then_fine_and_refine_takes_its_best(folders: dict[str, Path]) -> None:
    out = folders["root"] / "tune.json"
    result = run("crf", "tune", "--predictions", folders["predictions"], "--gt", folders["gt"], "--images",
                 folders["images"], "--subset", "2", "--w1-range", "2:1:4", "--theta-alpha-range", "60:5:70",
                 "--theta-beta-range", "13", "--workers", "1", "--out", out)
    assert result.exit_code == 0, result.output
    tuned = json.loads(out.read_text())
    coarse = [s for s in tuned["evaluated"] if s["stage"] == "coarse"]
    assert sorted((s["w1"], s["theta_alpha"]) for s in coarse) == [(2, 60), (2, 70), (4, 60), (4, 70)]
    best_coarse = max(coarse, key=lambda s: s["mean_iou"])
    near_w1 = [v for v in (2, 3, 4) if abs(v - best_coarse["w1"]) <= 1]
    near_alpha = [v for v in (60, 65, 70) if abs(v - best_coarse["theta_alpha"]) <= 5]
    fine = [(s["w1"], s["theta_alpha"]) for s in tuned["evaluated"] if s["stage"] == "fine"]
    assert sorted(fine) == sorted({(a, b) for a in near_w1 for b in near_alpha} - {(best_coarse["w1"], best_coarse["theta_alpha"])})
    predictions = json.loads((folders["predictions"] / "results.json").read_text())
    assert tuned["images"] == 2 and tuned["instances"] == sum(r["image_id"] in (1, 2) for r in predictions)
    assert tuned["best"]["mean_iou"] == max(s["mean_iou"] for s in tuned["evaluated"])
    assert tuned["best"]["mean_iou"] > tuned["baseline_mean_iou"]
    assert f"Best of {len(tuned['evaluated'])} settings on 2 images" in result.output

    refined = run("crf", "refine", "--predictions", folders["predictions"], "--images", folders["images"], "--out",
                  folders["root"] / "tuned", "--params", out, "--workers", "1")
    assert refined.exit_code == 0, refined.output
    assert f"w1={tuned['best']['w1']:g}" in refined.output
    assert f"theta_alpha={tuned['best']['theta_alpha']:g}" in refined.output
    overridden = run("crf", "refine", "--predictions", folders["predictions"], "--images", folders["images"], "--out",
                     folders["root"] / "tuned", "--params", out, "--w1", "9", "--workers", "1")
    assert overridden.exit_code == 0, overridden.output  # an option given beside --params wins over the JSON
    assert "w1=9" in overridden.output and f"theta_alpha={tuned['best']['theta_alpha']:g}" in overridden.output


def one_line_error(result: "object", *fragments: str) -> None:
    assert result.exit_code == 1
    message = result.output.strip()
    assert message.startswith("Error: ") and "\n" not in message and "Traceback" not in message
    for fragment in fragments:
        assert fragment in message


def test_refine_bad_inputs(folders: dict[str, Path], tmp_path: Path) -> None:
    args = ["--images", folders["images"], "--out", tmp_path / "out"]
    one_line_error(run("crf", "refine", "--predictions", tmp_path, *args), "images.json", "not found")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "images.json").write_text(json.dumps([{"id": 1, "file_name": "missing.png", "height": H, "width": W}]))
    results = json.loads((folders["predictions"] / "results.json").read_text())[:1]
    (bad / "results.json").write_text(json.dumps([{**results[0], "image_id": 1}]))
    one_line_error(run("crf", "refine", "--predictions", bad, *args), "missing.png", "not found")
    (bad / "images.json").write_text(json.dumps([{"id": 1, "file_name": "scene_0.png", "height": H + 1, "width": W}]))
    one_line_error(run("crf", "refine", "--predictions", bad, *args), "results.json", "differs from image")
    taller = encode_mask(np.pad(decode_mask(results[0]["segmentation"], H, W), ((0, 1), (0, 0))))
    (bad / "results.json").write_text(json.dumps([{**results[0], "image_id": 1, "segmentation": taller}]))
    one_line_error(run("crf", "refine", "--predictions", bad, *args), "scene_0.png", f"{H}x{W}", f"{H + 1}x{W}")
    (bad / "results.json").write_text(json.dumps([{**results[0], "image_id": 1}])[:-5])
    one_line_error(run("crf", "refine", "--predictions", bad, *args), "not valid JSON")


def test_tune_bad_inputs(folders: dict[str, Path], tmp_path: Path) -> None:
    args = ["--predictions", folders["predictions"], "--images", folders["images"], "--out", tmp_path / "t.json"]
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": [{"id": 1, "file_name": "other.png", "height": H, "width": W}], "annotations": []}))
    one_line_error(run("crf", "tune", "--gt", gt, *args), "gt.json", "no image of images.json has ground truth")
    result = run("crf", "tune", "--gt", folders["gt"], "--w1-range", "5:1:2", *args)
    assert result.exit_code == 2 and "--w1-range" in result.output
