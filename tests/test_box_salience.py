"""Weak labels from boxes alone: GrabCut in each box, then the usual rule."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from click.testing import CliRunner

from cgc.cli import cgc
from cgc.weaklabels.box_salience import grabcut_box, inscribed_ellipse, salient_from_boxes
from cgc.weaklabels.priors import PriorSettings
from cgc.weaklabels.rules import instance_masks_from_boxes
from helpers import iou, rectangle

SHAPE = (120, 160)


def disc(cx: int, cy: int, radius: int) -> np.ndarray:
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[float]]]:
    """A red disc and a blue bar on a noisy grey-green background, in overlapping tight boxes."""
    rng = np.random.default_rng(seed)
    image = np.clip(np.array([110, 140, 120]) + rng.normal(0, 25, SHAPE + (3,)), 0, 255)
    red, blue = disc(55, 60, 30), rectangle(SHAPE, 80, 30, 130, 95)
    image[red] = np.clip(np.array([40, 40, 200]) + rng.normal(0, 15, (red.sum(), 3)), 0, 255)
    image[blue] = np.clip(np.array([200, 60, 40]) + rng.normal(0, 15, (blue.sum(), 3)), 0, 255)
    return image.astype(np.uint8), red, blue, [[25, 30, 86, 91], [80, 30, 130, 95]]


def test_grabcut_finds_each_object_in_its_box_and_only_there() -> None:
    image, red, blue, boxes = scene()
    cut = grabcut_box(image, np.array(boxes[0]))
    assert iou(cut, red) > 0.9
    assert not cut[:, 86:].any() and not cut[:30].any()
    salient, empty = salient_from_boxes(image, np.array(boxes))
    assert empty == [] and iou(salient, red | blue) > 0.9


def test_every_row_and_column_of_a_tight_box_is_crossed_and_a_thin_part_is_kept(monkeypatch) -> None:
    """A body with a one-pixel leg of a colour between the body's and the ground's: GrabCut alone drops the leg,
    the tight-box prior's pins bring most of it back."""
    import cgc.weaklabels.box_salience as box_salience

    noise = np.random.default_rng(0).normal(0, 25, (120, 160, 3))
    ys, xs = np.mgrid[:120, :160]
    body = ((xs - 80) / 30) ** 2 + ((ys - 45) / 20) ** 2 <= 1
    leg = (xs == 80) & (ys >= 45) & (ys < 95) & ~body
    picture = np.array([90, 140, 90]) + noise
    picture[body] = np.array([60, 60, 200]) + noise[body]
    picture[leg] = np.array([75, 100, 145]) + noise[leg]
    picture = np.clip(picture, 0, 255).astype(np.uint8)
    box = np.array([50, 25, 111, 95], float)
    kept = grabcut_box(picture, box)
    assert kept[25:95, 50:111].any(axis=1).all() and kept[25:95, 50:111].any(axis=0).all()
    assert kept[leg].sum() >= leg.sum() / 2 and iou(kept, body | leg) > 0.95
    monkeypatch.setattr(box_salience, "PINPOINT_ROUNDS", 0)
    unpinned = grabcut_box(picture, box)
    assert not unpinned[leg].any() and not unpinned[25:95, 50:111].any(axis=1).all()


def test_boxes_alone_give_instance_masks_close_to_the_truth() -> None:
    image, red, blue, boxes = scene()
    salient, _ = salient_from_boxes(image, np.array(boxes))
    masks = instance_masks_from_boxes(salient, boxes, image, PriorSettings(rule="appearance"))
    assert iou(masks[0], red) > 0.9 and iou(masks[1], blue) > 0.9


def test_a_box_cut_does_not_depend_on_what_was_cut_before(sample_dir: Path, true_box_file: Path) -> None:
    """GrabCut starts from k-means on OpenCV's random generator: the result must not depend on the call order."""
    record = json.loads(true_box_file.read_text())
    x, y, w, h = record["annotations"][0]["bbox"]
    image = cv2.imread(str(sample_dir / "imgs" / record["images"][0]["file_name"]))
    box = np.array([x, y, x + w, y + h])
    alone = grabcut_box(image, box)
    changed = False
    for draw in range(5):  # anything else that draws from the generator
        cv2.randu(np.zeros((10, 10)), 0, 1)
        again = grabcut_box(image, box)
        changed |= bool((again != alone).any())
    assert not changed


def test_a_box_whose_object_matches_its_surroundings_gets_the_inscribed_ellipse() -> None:
    image = np.full(SHAPE + (3,), 128, np.uint8)
    salient, empty = salient_from_boxes(image, np.array([[40, 30, 100, 90]]))
    assert empty == [0]
    assert (salient == inscribed_ellipse(np.array([40, 30, 100, 90]), *SHAPE)).all()
    assert salient[60, 70] and not salient[31, 41] and not salient[:, 100:].any()


def test_a_box_filling_the_picture_and_a_tiny_box_are_still_cut() -> None:
    image, red, _, _ = scene()
    whole = grabcut_box(image, np.array([0, 0, SHAPE[1], SHAPE[0]]))
    assert 0 < whole.sum() < whole.size
    tiny = grabcut_box(image, np.array([10, 10, 15, 15]))
    assert tiny.sum() == 25


def test_cli_builds_weak_labels_without_masks(sample_dir: Path, true_box_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"weak-{workers}"
        result = runner.invoke(cgc, ["weaklabels", "build", "--images", str(sample_dir / "imgs"), "--boxes",
                                     str(true_box_file), "--out", str(out), "--workers", workers])
        assert result.exit_code == 0, result.output
        assert "12 of 12 images" in result.output and "GrabCut" in result.output
        outputs.append((out / "annotations.json").read_bytes())
    assert outputs[0] == outputs[1]
    report = json.loads((tmp_path / "weak-1" / "report.json").read_text())
    assert report["masks"] is None
    truth = tmp_path / "truth.json"
    assert runner.invoke(cgc, ["export", "coco", "--format", "ilso", "--root", str(sample_dir), "--out", str(truth)]).exit_code == 0
    result = runner.invoke(cgc, ["weaklabels", "compare", "--labels", str(tmp_path / "weak-1" / "annotations.json"),
                                 "--truth", str(truth), "--json", str(tmp_path / "q.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "q.json").read_text())["mean_iou"] > 0.75


def test_boxes_alone_work_at_a_bounded_resolution_and_come_back_at_full_size(monkeypatch) -> None:
    """A picture 25 times the work budget is cut at the budget's size, and its masks come back at the picture's
    size, inside their boxes and on their objects."""
    from cgc.weaklabels import box_salience

    image, red, blue, boxes = scene()
    monkeypatch.setattr(box_salience, "WORK_PIXELS", SHAPE[0] * SHAPE[1])
    big = cv2.resize(image, None, fx=5, fy=5, interpolation=cv2.INTER_NEAREST)
    seen: list[tuple[int, int]] = []
    cut = box_salience.salient_from_boxes
    monkeypatch.setattr(box_salience, "salient_from_boxes", lambda picture, b: seen.append(picture.shape[:2]) or cut(picture, b))
    masks, empty = box_salience.instance_masks_from_boxes_alone(big, np.array(boxes) * 5, PriorSettings())
    assert seen == [SHAPE] and empty == []
    assert all(mask.shape == big.shape[:2] for mask in masks)
    for mask, truth, box in zip(masks, (red, blue), boxes):
        truth_big = cv2.resize(truth.astype(np.uint8), None, fx=5, fy=5, interpolation=cv2.INTER_NEAREST) > 0
        assert iou(mask, truth_big) > 0.85
        x0, y0, x1, y1 = (5 * v for v in box)
        assert not mask[:, :x0].any() and not mask[:, x1:].any() and not mask[:y0].any() and not mask[y1:].any()
    small, _ = box_salience.instance_masks_from_boxes_alone(image, np.array(boxes), PriorSettings())
    assert [m.shape for m in small] == [SHAPE, SHAPE]  # within the budget: the picture's own size, unscaled
