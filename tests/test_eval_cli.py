"""`cgc eval --predictions`: table on stdout, metrics JSON on disk, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import rectangle

from cgc.cli import cgc
from cgc.coco import encode_mask

SHAPE = (30, 30)
A = rectangle(SHAPE, 0, 0, 10, 10)
B = rectangle(SHAPE, 15, 15, 27, 25)


def disc(center: tuple[int, int], radius: int) -> np.ndarray:
    ys, xs = np.mgrid[: SHAPE[0], : SHAPE[1]]
    return (ys - center[0]) ** 2 + (xs - center[1]) ** 2 <= radius ** 2


C = disc((15, 15), 8)


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    images = [{"id": 1, "file_name": "1.jpg", "height": 30, "width": 30, "attributes": ["OC"]},
              {"id": 2, "file_name": "2.jpg", "height": 30, "width": 30, "attributes": []}]
    truth = [(1, A), (1, B), (2, C)]
    gt = {"images": images, "categories": [{"id": 1, "name": "salient"}],
          "annotations": [{"id": k, "image_id": i, "category_id": 1, "iscrowd": 0, "area": float(m.sum()),
                           "segmentation": encode_mask(m)} for k, (i, m) in enumerate(truth, start=1)]}
    # a prediction folder numbers its pictures its own way: here 1.jpg is its image 2 and 2.jpg its image 1
    own_id = {1: 2, 2: 1}
    predictions = [{"image_id": own_id[i], "category_id": 1, "segmentation": encode_mask(m), "score": 0.9} for i, m in truth]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "results.json").write_text(json.dumps(predictions))
    (tmp_path / "pred" / "images.json").write_text(json.dumps(
        [{"id": own_id[image["id"]], "file_name": image["file_name"], "height": 30, "width": 30} for image in images]))
    return {"gt": tmp_path / "gt.json", "pred": tmp_path / "pred" / "results.json", "dir": tmp_path}


def run(*args: str):
    return CliRunner().invoke(cgc, ["eval", *args])


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.output


def test_eval_prints_table_and_writes_json(files: dict[str, Path]) -> None:
    out = files["dir"] / "metrics" / "metrics.json"
    result = run("--predictions", str(files["pred"]), "--data", str(files["gt"]), "--out", str(out))
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["AP"] == metrics["AP_r50"] == metrics["AP_r70"] == 100.0
    assert metrics["coco"]["AP"] == pytest.approx(100.0)
    assert metrics["score_threshold"] == 0.5 and metrics["images"] == 2
    assert metrics["per_attribute"]["OC"]["images"] == 1
    assert metrics["predictions_file"] == str(files["pred"])
    assert "APr0.5" in result.output and "100.00" in result.output and f"Wrote {out}" in result.output
    assert not list(out.parent.glob(".*.tmp"))


def test_eval_without_out_only_prints(files: dict[str, Path]) -> None:
    result = run("--predictions", str(files["pred"]), "--data", str(files["gt"]))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split()[:3] == ["all", "2", "100.00"]
    assert sorted(p.name for p in files["dir"].iterdir()) == ["gt.json", "pred"]


def test_eval_pairs_pictures_by_file_name_not_by_id(files: dict[str, Path]) -> None:
    """The folder's ids are not the ground truth's: paired by id, every prediction would land on the wrong picture."""
    for predictions in (files["pred"], files["pred"].parent):
        result = run("--predictions", str(predictions), "--data", str(files["gt"]))
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[1].split()[:3] == ["all", "2", "100.00"], result.output


def test_eval_refuses_results_it_cannot_pair(files: dict[str, Path]) -> None:
    (files["pred"].parent / "images.json").unlink()
    assert_one_line_error(run("--predictions", str(files["pred"]), "--data", str(files["gt"])), "--match-by-id")
    swapped = run("--predictions", str(files["pred"]), "--data", str(files["gt"]), "--match-by-id")
    assert swapped.exit_code == 0 and swapped.output.splitlines()[1].split()[:3] == ["all", "2", "0.00"], swapped.output
    (files["pred"].parent / "images.json").write_text(json.dumps(
        [{"id": 1, "file_name": "other.jpg", "height": 30, "width": 30}, {"id": 2, "file_name": "1.jpg", "height": 30, "width": 30}]))
    assert_one_line_error(run("--predictions", str(files["pred"]), "--data", str(files["gt"])),
                          "predictions for 1 pictures that the ground truth does not hold, matched by file name (other.jpg)")


def test_eval_reports_the_boxes_as_masks_baseline_and_takes_a_score_threshold(files: dict[str, Path]) -> None:
    out = files["dir"] / "boxes.json"
    result = run("--predictions", str(files["pred"]), "--data", str(files["gt"]), "--out", str(out))
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["boxes_as_masks"]["AP"] < metrics["AP"]  # the disc is not its box
    assert f"Boxes filled as masks (the baseline): AP {metrics['boxes_as_masks']['AP']:.2f}" in result.output
    result = run("--predictions", str(files["pred"]), "--data", str(files["gt"]), "--score-thr", "0.95",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["AP_r50"] == 0.0


def test_eval_unknown_image_id_is_a_one_line_error(files: dict[str, Path]) -> None:
    files["pred"].write_text(json.dumps([{"image_id": 42, "segmentation": encode_mask(A), "score": 0.9}]))
    assert_one_line_error(run("--predictions", str(files["pred"]), "--data", str(files["gt"])),
                          "image ids that its images.json does not list (42)")
    (files["pred"].parent / "images.json").unlink()
    assert_one_line_error(run("--predictions", str(files["pred"]), "--data", str(files["gt"]), "--match-by-id"),
                          "absent from the ground truth (42)")


def test_eval_malformed_files_are_one_line_errors(files: dict[str, Path]) -> None:
    files["pred"].write_text("[{")
    assert_one_line_error(run("--predictions", str(files["pred"]), "--data", str(files["gt"])), "not valid JSON")
    missing = files["dir"] / "nope.json"
    assert_one_line_error(run("--predictions", str(files["pred"]), "--data", str(missing)), str(missing))


def test_eval_needs_predictions(files: dict[str, Path]) -> None:
    result = run("--data", str(files["gt"]))
    assert result.exit_code == 2 and "--predictions" in result.output


def test_eval_rejects_out_of_range_threshold(files: dict[str, Path]) -> None:
    result = run("--predictions", str(files["pred"]), "--data", str(files["gt"]), "--score-thr", "1.5")
    assert result.exit_code == 2
