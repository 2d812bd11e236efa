"""The paper's AP^r / AP on hand-computed cases, COCO mask AP against pycocotools directly."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import iou, rectangle
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cgc.coco import encode_mask
from cgc.errors import InputError
from cgc.evaluation import (
    ALPHAS,
    evaluate_predictions,
    fill_boxes_as_masks,
    format_metrics_table,
    load_ground_truth,
    matched_instances,
)

SHAPE = (40, 40)
A = rectangle(SHAPE, 0, 0, 10, 10)     # 100 px
B = rectangle(SHAPE, 20, 20, 30, 30)   # 100 px, far from A
A_AT_06 = rectangle(SHAPE, 0, 0, 10, 6)  # inside A, IoU 60/100 = 0.6


def image(image_id: int, attributes: list[str] | None = None) -> dict:
    entry = {"id": image_id, "file_name": f"{image_id}.jpg", "height": SHAPE[0], "width": SHAPE[1]}
    if attributes is not None:
        entry["attributes"] = attributes
    return entry


def ground_truth(masks_by_image: dict[int, list[np.ndarray]], attributes: dict[int, list[str]] | None = None) -> dict:
    images = [image(i, (attributes or {}).get(i)) for i in masks_by_image]
    annotations = []
    for image_id, masks in masks_by_image.items():
        for mask in masks:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "segmentation": encode_mask(mask), "area": float(mask.sum())})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "salient"}]}


def result(image_id: int, mask: np.ndarray, score: float = 0.9) -> dict:
    return {"image_id": image_id, "category_id": 1, "segmentation": encode_mask(mask), "score": score}


def test_hand_built_masks_have_the_intended_iou() -> None:
    assert iou(A_AT_06, A) == pytest.approx(0.6)
    assert iou(A, B) == 0.0


def test_perfect_prediction_scores_100_everywhere() -> None:
    metrics = evaluate_predictions(ground_truth({1: [A, B]}), [result(1, A), result(1, B)])
    assert metrics["AP"] == metrics["AP_r50"] == metrics["AP_r70"] == 100.0
    assert all(value == 100.0 for value in metrics["ap_r"].values())
    assert metrics["coco"]["AP"] == pytest.approx(100.0)
    assert metrics["units"] == "percent"


def test_one_of_two_found_at_iou_06() -> None:
    metrics = evaluate_predictions(ground_truth({1: [A, B]}), [result(1, A_AT_06)])
    assert metrics["AP_r50"] == 50.0
    assert metrics["AP_r70"] == 0.0
    # Found at alpha 0.50, 0.55, 0.60 (IoU >= alpha), missed at the seven higher thresholds.
    expected = {"0.50": 50.0, "0.55": 50.0, "0.60": 50.0, "0.65": 0.0, "0.70": 0.0,
                "0.75": 0.0, "0.80": 0.0, "0.85": 0.0, "0.90": 0.0, "0.95": 0.0}
    assert metrics["ap_r"] == expected
    assert metrics["AP"] == pytest.approx((50 + 50 + 50) / 10)  # = 15


def test_duplicate_prediction_does_not_count_twice() -> None:
    metrics = evaluate_predictions(ground_truth({1: [A, B]}), [result(1, A, 0.9), result(1, A, 0.8)])
    assert metrics["AP_r50"] == 50.0  # a per-prediction count would give 100
    assert metrics["AP"] == 50.0


def test_false_positive_does_not_raise_or_lower_ap_r() -> None:
    gt = ground_truth({1: [A, B]})
    alone = evaluate_predictions(gt, [result(1, A)])
    with_fp = evaluate_predictions(gt, [result(1, A), result(1, rectangle(SHAPE, 32, 0, 40, 8))])
    assert alone["AP_r50"] == with_fp["AP_r50"] == 50.0
    assert with_fp["coco"]["AP"] <= alone["coco"]["AP"]


def test_maximum_matching_beats_greedy_on_overlapping_truth() -> None:
    # Two overlapping true instances; P1 fits both at alpha 0.7, P2 only the first. Greedy by
    # score (P1 takes its best, the first) finds one; the maximum matching finds both.
    first, second = rectangle(SHAPE, 0, 0, 10, 10), rectangle(SHAPE, 0, 2, 10, 12)
    p1, p2 = rectangle(SHAPE, 0, 0, 10, 11), rectangle(SHAPE, 0, 0, 10, 9)
    assert iou(p1, first) > iou(p1, second) >= 0.7 and iou(p2, first) >= 0.7 > iou(p2, second)
    metrics = evaluate_predictions(ground_truth({1: [first, second]}), [result(1, p1, 0.9), result(1, p2, 0.8)])
    assert metrics["AP_r70"] == 100.0
    # One prediction still covers only one of them, though it overlaps both by more than 0.7.
    assert evaluate_predictions(ground_truth({1: [first, second]}), [result(1, p1)])["AP_r70"] == 50.0


def test_matched_instances_on_an_iou_matrix() -> None:
    ious = np.array([[0.9, 0.8], [0.95, 0.1], [0.6, 0.0]])
    assert matched_instances(ious, 0.5) == 2
    assert matched_instances(ious, 0.85) == 1
    assert matched_instances(ious, 0.99) == 0
    assert matched_instances(np.zeros((0, 3)), 0.5) == 0


def test_score_threshold() -> None:
    gt = ground_truth({1: [A, B]})
    predictions = [result(1, A, 0.9), result(1, B, 0.3)]
    assert evaluate_predictions(gt, predictions)["AP_r50"] == 50.0
    assert evaluate_predictions(gt, predictions, score_threshold=0.3)["AP_r50"] == 100.0  # score >= threshold
    assert evaluate_predictions(gt, predictions, score_threshold=0.95)["AP_r50"] == 0.0
    # COCO AP ignores the threshold: it ranks all predictions.
    assert evaluate_predictions(gt, predictions, score_threshold=0.95)["coco"]["AP"] == pytest.approx(100.0)


def test_image_without_ground_truth_is_left_out_and_counted() -> None:
    gt = ground_truth({1: [A], 2: [], 3: [B]})
    metrics = evaluate_predictions(gt, [result(1, A), result(2, B)])  # image 3 missed, image 2 has only an FP
    assert metrics["images"] == 3
    assert metrics["images_without_ground_truth"] == 1
    assert metrics["images_evaluated"] == 2
    assert metrics["AP_r50"] == 50.0  # (1 + 0) / 2, not (1 + 0 + 0) / 3


def test_no_ground_truth_at_all_gives_none() -> None:
    metrics = evaluate_predictions(ground_truth({1: []}), [result(1, A)])
    assert metrics["AP"] is None and metrics["AP_r50"] is None and metrics["coco"]["AP"] is None
    assert "n/a" in format_metrics_table(metrics)[1]


def test_ap_is_the_mean_over_ten_alphas_computed_by_hand() -> None:
    # Image 1: A found at IoU 0.6, B found exactly. Image 2: A found at IoU 0.8 (80 of 100 px).
    a_at_08 = rectangle(SHAPE, 0, 0, 10, 8)
    gt = ground_truth({1: [A, B], 2: [A]})
    metrics = evaluate_predictions(gt, [result(1, A_AT_06), result(1, B), result(2, a_at_08)])
    per_alpha = []
    for alpha in ALPHAS:
        image1 = ((0.6 >= alpha - 1e-9) + 1) / 2
        image2 = float(0.8 >= alpha - 1e-9)
        per_alpha.append(100 * (image1 + image2) / 2)
    assert [metrics["ap_r"][f"{a:.2f}"] for a in ALPHAS] == pytest.approx(per_alpha)
    # alphas 0.50-0.60: (1 + 1)/2; 0.65-0.80: (0.5 + 1)/2; 0.85-0.95: (0.5 + 0)/2
    assert metrics["AP"] == pytest.approx((3 * 100 + 4 * 75 + 3 * 25) / 10)
    assert metrics["AP_r70"] == pytest.approx(75.0)


def disc(center: tuple[int, int], radius: int) -> np.ndarray:
    ys, xs = np.mgrid[: SHAPE[0], : SHAPE[1]]
    return (ys - center[0]) ** 2 + (xs - center[1]) ** 2 <= radius ** 2


def direct_cocoeval(gt: dict, predictions: list[dict]) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        gt_coco = COCO()
        gt_coco.dataset = json.loads(json.dumps(gt))
        gt_coco.createIndex()
        dt_coco = gt_coco.loadRes(json.loads(json.dumps(predictions)))
        evaluator = COCOeval(gt_coco, dt_coco, iouType="segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


def test_coco_ap_matches_pycocotools_run_directly() -> None:
    rng = np.random.default_rng(0)
    masks = {1: [disc((10, 10), 6), disc((28, 28), 9)], 2: [A, B], 3: [disc((20, 20), 15)]}
    gt = ground_truth(masks)
    predictions = []
    for image_id, truths in masks.items():
        for mask in truths:
            noisy = mask ^ (rng.random(SHAPE) < 0.08)  # imperfect copy
            predictions.append(result(image_id, noisy, float(rng.uniform(0.1, 1.0))))
        predictions.append(result(image_id, rng.random(SHAPE) < 0.1, float(rng.uniform(0.1, 1.0))))  # junk
    stats = direct_cocoeval(gt, predictions)
    coco = evaluate_predictions(gt, predictions)["coco"]
    for index, name in enumerate(["AP", "AP50", "AP75", "APs", "APm", "APl"]):
        expected = None if stats[index] < 0 else 100 * stats[index]
        assert coco[name] == pytest.approx(expected), name
    assert 0 < coco["AP"] < 100


def test_polygon_ground_truth_and_category_ids_are_ignored() -> None:
    polygon_gt = {"images": [image(1)], "categories": [{"id": 7, "name": "dog"}],
                  "annotations": [{"id": 5, "image_id": 1, "category_id": 7,
                                   "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]]}]}
    rasterised = load_ground_truth(polygon_gt)["annotations"][0]
    assert rasterised["category_id"] == 1 and rasterised["iscrowd"] == 0 and rasterised["area"] > 0
    prediction = {"image_id": 1, "category_id": 3, "segmentation": rasterised["segmentation"], "score": 0.7}
    metrics = evaluate_predictions(polygon_gt, [prediction])
    assert metrics["AP"] == 100.0 and metrics["coco"]["AP"] == pytest.approx(100.0)


def test_predictions_as_coco_dataset_with_scores(tmp_path: Path) -> None:
    gt = ground_truth({1: [A, B]})
    dataset = ground_truth({1: [A]})
    dataset["annotations"][0]["score"] = 0.8
    (tmp_path / "pred.json").write_text(json.dumps(dataset))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    assert evaluate_predictions(tmp_path / "gt.json", tmp_path / "pred.json")["AP_r50"] == 50.0


def test_fill_boxes_as_masks_uses_bbox_else_tight_box() -> None:
    images = [image(1)]
    with_box = dict(result(1, A_AT_06), bbox=[2.0, 3.0, 4.0, 5.0])
    without_box = result(1, disc((20, 20), 5))
    filled = fill_boxes_as_masks([with_box, without_box], images)
    assert with_box["segmentation"] == encode_mask(A_AT_06)  # input untouched
    assert filled[0]["segmentation"] == encode_mask(rectangle(SHAPE, 2, 3, 6, 8))
    assert filled[1]["segmentation"] == encode_mask(rectangle(SHAPE, 15, 15, 26, 26))
    assert filled[1]["score"] == without_box["score"]


def test_box_baseline_scores_below_true_masks_on_round_shapes() -> None:
    masks = {1: [disc((10, 10), 7), disc((28, 26), 9)], 2: [disc((20, 20), 12)]}
    gt = ground_truth(masks)
    predictions = [result(i, m) for i, ms in masks.items() for m in ms]
    true_masks = evaluate_predictions(gt, predictions)
    boxes = true_masks["boxes_as_masks"]  # always scored beside the masks
    assert true_masks["AP"] == 100.0
    assert boxes["AP"] < true_masks["AP"]
    assert boxes["AP_r50"] == 100.0  # a disc fills pi/4 of its box: IoU 0.79
    assert boxes["coco"]["AP"] < true_masks["coco"]["AP"]


def test_per_attribute_breakdown() -> None:
    gt = ground_truth({1: [A], 2: [A, B], 3: [B]}, attributes={1: ["OC"], 2: ["OC", "SC"], 3: []})
    metrics = evaluate_predictions(gt, [result(1, A), result(2, A)])  # image 2: one of two; image 3 missed
    assert metrics["AP_r50"] == pytest.approx(100 * (1 + 0.5 + 0) / 3)
    breakdown = metrics["per_attribute"]
    assert sorted(breakdown) == ["OC", "SC"]
    assert breakdown["OC"]["images"] == 2 and breakdown["OC"]["AP_r50"] == pytest.approx(75.0)
    assert breakdown["SC"]["images"] == 1 and breakdown["SC"]["AP"] == pytest.approx(50.0)
    assert breakdown["SC"]["coco"]["AP"] < breakdown["OC"]["coco"]["AP"] <= 100
    assert [line.split()[0] for line in format_metrics_table(metrics)[1:4]] == ["all", "OC", "SC"]


def test_no_breakdown_without_attributes() -> None:
    assert "per_attribute" not in evaluate_predictions(ground_truth({1: [A]}), [result(1, A)])


@pytest.mark.parametrize(("predictions", "message"), [
    ([{"image_id": 99, "segmentation": encode_mask(A), "score": 0.5}], "absent from the ground truth"),
    ([{"image_id": 1, "segmentation": encode_mask(A)}], "score"),
    ([{"image_id": 1, "segmentation": encode_mask(np.zeros((5, 5), bool)), "score": 0.5}], "differs from image"),
    ([{"image_id": 1, "segmentation": {"size": [40, 40], "counts": 17}, "score": 0.5}], "unreadable segmentation"),
    ([{"segmentation": encode_mask(A), "score": 0.5}], "image_id"),
    ({"info": {}}, "annotations"),
    ("not a list", "results list"),
])
def test_bad_predictions_raise_input_error_naming_the_file(tmp_path: Path, predictions: object, message: str) -> None:
    path = tmp_path / "pred.json"
    path.write_text(json.dumps(predictions))
    with pytest.raises(InputError, match=message) as caught:
        evaluate_predictions(ground_truth({1: [A]}), path, match_by_id=True)
    assert caught.value.path == str(path)


def test_bad_ground_truth_raises_input_error(tmp_path: Path) -> None:
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": [{"id": 1}], "annotations": []}))
    with pytest.raises(InputError, match="height") as caught:
        evaluate_predictions(path, [])
    assert caught.value.path == str(path)
    path.write_text("{broken")
    with pytest.raises(InputError, match="not valid JSON"):
        evaluate_predictions(path, [])


def test_precision_recall_and_predictions_per_instance_at_the_threshold() -> None:
    # Image 1: A found twice (one is a duplicate), B missed; image 2: no truth, one false positive;
    # image 3: B found, plus a prediction under the threshold that does not count.
    gt = ground_truth({1: [A, B], 2: [], 3: [B]})
    predictions = [result(1, A, 0.9), result(1, A_AT_06, 0.8), result(2, B, 0.7), result(3, B, 0.9), result(3, A, 0.2)]
    point = evaluate_predictions(gt, predictions, score_threshold=0.5)["at_score_threshold"]
    assert point["matched"] == 2
    assert point["precision"] == pytest.approx(100 * 2 / 4)
    assert point["recall"] == pytest.approx(100 * 2 / 3)
    assert point["predictions_per_instance"] == pytest.approx(4 / 3)
    low = evaluate_predictions(gt, predictions, score_threshold=0.1)["at_score_threshold"]
    assert low["matched"] == 2 and low["predictions_per_instance"] == pytest.approx(5 / 3)
    assert "precision 50.00 %, recall 66.67 %" in "\n".join(format_metrics_table(evaluate_predictions(gt, predictions)))


def test_operating_point_without_predictions_or_truth() -> None:
    point = evaluate_predictions(ground_truth({1: [A]}), [])["at_score_threshold"]
    assert point["precision"] is None and point["recall"] == 0.0 and point["predictions_per_instance"] == 0.0
    point = evaluate_predictions(ground_truth({1: []}), [result(1, A)])["at_score_threshold"]
    assert point["precision"] == 0.0 and point["recall"] is None and point["predictions_per_instance"] is None


def test_a_prediction_on_a_crowd_region_is_neither_hit_nor_false_positive() -> None:
    """A crowd region is not an instance to find: a prediction lying on it does not count against precision (as
    COCOeval ignores it), while one on a true instance next to the crowd still counts."""
    crowd = rectangle(SHAPE, 0, 0, 20, 20)
    gt = ground_truth({1: [B, crowd]})
    gt["annotations"][1]["iscrowd"] = 1
    on_crowd = rectangle(SHAPE, 2, 2, 12, 12)  # wholly inside the crowd region
    point = evaluate_predictions(gt, [result(1, B), result(1, on_crowd, 0.8)])["at_score_threshold"]
    assert point["matched"] == 1 and point["precision"] == pytest.approx(100.0)
    assert point["predictions_per_instance"] == pytest.approx(1.0)
    astray = rectangle(SHAPE, 30, 0, 40, 10)  # on neither: a false positive as before
    point = evaluate_predictions(gt, [result(1, B), result(1, astray, 0.8)])["at_score_threshold"]
    assert point["precision"] == pytest.approx(50.0)
