"""Weak-label cases from fully labelled pictures, and scoring a rule on one: `cgc weaklabels case` and `compare`."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_utils

from cgc.cli import cgc
from cgc.datasets import instances_to_coco, read_ilso
from cgc.fileio import atomic_write_json
from cgc.weaklabels.cases import MaskDefects, write_weak_label_case
from cgc.weaklabels.quality import compare_to_truth


@pytest.fixture(scope="module")
def truth(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's true instances as a COCO file: the fully labelled pictures a user would have."""
    path = tmp_path_factory.mktemp("truth") / "truth.json"
    atomic_write_json(path, instances_to_coco(read_ilso(sample_dir), "sample truth"))
    return path


def union_of_truth(truth: Path) -> dict[str, np.ndarray]:
    data = json.loads(truth.read_text())
    unions = {}
    for image in data["images"]:
        masks = [mask_utils.decode(a["segmentation"]) for a in data["annotations"] if a["image_id"] == image["id"]]
        unions[image["file_name"]] = np.any(masks, axis=0) if masks else np.zeros((image["height"], image["width"]), bool)
    return unions


def test_a_case_holds_the_union_mask_and_consensus_boxes_and_is_the_same_on_every_run(
        sample_dir: Path, truth: Path, tmp_path: Path) -> None:
    summary = write_weak_label_case(truth, sample_dir / "imgs", tmp_path / "case", seed=3, progress=False)
    unions = union_of_truth(truth)
    assert summary.pictures == len(unions) and summary.skipped == []
    for name, union in unions.items():
        written = cv2.imread(str(tmp_path / "case" / "masks" / f"{Path(name).stem}.png"), cv2.IMREAD_GRAYSCALE) > 0
        assert np.array_equal(written, union), name
    boxes = json.loads((tmp_path / "case" / "boxes.json").read_text())
    assert {image["file_name"] for image in boxes["images"]} == set(unions)
    assert 0.8 * summary.instances <= summary.boxes <= 1.2 * summary.instances
    again = write_weak_label_case(truth, sample_dir / "imgs", tmp_path / "again", seed=3, progress=False)
    write_weak_label_case(truth, sample_dir / "imgs", tmp_path / "other", seed=4, progress=False)
    export = (tmp_path / "case" / "labelstudio_export.json").read_text()
    assert again == summary and (tmp_path / "again" / "labelstudio_export.json").read_text() == export
    assert (tmp_path / "other" / "labelstudio_export.json").read_text() != export


def test_degraded_masks_differ_from_the_union_as_real_sod_masks_do(sample_dir: Path, truth: Path,
                                                                  tmp_path: Path) -> None:
    write_weak_label_case(truth, sample_dir / "imgs", tmp_path / "case", seed=0, defects=MaskDefects(miss_rate=1.0),
                          progress=False)
    changed, ious = 0, []
    for name, union in union_of_truth(truth).items():
        written = cv2.imread(str(tmp_path / "case" / "masks" / f"{Path(name).stem}.png"), cv2.IMREAD_GRAYSCALE) > 0
        changed += not np.array_equal(written, union)
        ious.append((written & union).sum() / max(1, (written | union).sum()))
    assert changed == len(ious) and 0.3 < np.mean(ious) < 0.99  # each degraded, none unrecognisable on average


def test_case_build_and_compare_from_the_command_line(sample_dir: Path, truth: Path, tmp_path: Path) -> None:
    """The recipe the case command prints: build from the case, then score with the overlap split and the ceiling."""
    runner = CliRunner()
    case = tmp_path / "case"
    made = runner.invoke(cgc, ["weaklabels", "case", "--truth", str(truth), "--images", str(sample_dir / "imgs"),
                               "--out", str(case)])
    assert made.exit_code == 0 and "cgc weaklabels build" in made.output, made.output
    built = runner.invoke(cgc, ["weaklabels", "build", "--images", str(sample_dir / "imgs"), "--masks",
                                str(case / "masks"), "--boxes", str(case / "boxes.json"), "--out", str(tmp_path / "w"),
                                "--workers", "1"])
    assert built.exit_code == 0, built.output
    args = ["weaklabels", "compare", "--labels", str(tmp_path / "w" / "annotations.json"), "--truth", str(truth)]
    compared = runner.invoke(cgc, [*args, "--boxes", str(case / "boxes.json"), "--masks", str(case / "masks"),
                                   "--json", str(tmp_path / "q.json")])
    assert compared.exit_code == 0 and "whose box overlaps another" in compared.output, compared.output
    quality = json.loads((tmp_path / "q.json").read_text())
    assert quality["mean_iou"] <= quality["ceiling_mean_iou"] <= 1.0 and quality["overlapping_instances"] > 0
    assert quality["mean_iou_overlapping"] < quality["mean_iou_apart"]  # the hard part is where boxes share pixels
    alone = runner.invoke(cgc, [*args, "--masks", str(case / "masks")])
    assert alone.exit_code == 2 and "--masks needs --boxes" in alone.output


def test_the_ceiling_of_the_truth_itself_is_perfect(sample_dir: Path, truth: Path, tmp_path: Path) -> None:
    """Scoring the truth as labels: 1 everywhere, and the ceiling (the truth cut to its mask and box) close to 1."""
    write_weak_label_case(truth, sample_dir / "imgs", tmp_path / "case", progress=False)
    quality = compare_to_truth(truth, truth, tmp_path / "case" / "boxes.json", tmp_path / "case" / "masks")
    assert quality.mean_iou == quality.mean_iou_apart == 1.0
    assert 0.9 < quality.ceiling_mean_iou < 1.0  # jittered consensus boxes cut a little off some instances
