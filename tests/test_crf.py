"""Dense CRF refinement: it sharpens soft maps toward image edges, and the window changes nothing that matters."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import iou

from cgc.refine.crf import CRFParams, WindowSettings, crf_window, refine_instance, soft_from_binary
from cgc.sample import generate_scene

H, W = 120, 160


def edge_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A red box with sharp edges on a dull green field, with a little noise."""
    rng = np.random.default_rng(seed)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:] = (60, 90, 70)
    truth = np.zeros((H, W), bool)
    truth[35:85, 50:115] = True
    rgb[truth] = (200, 60, 50)
    return np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8), truth


def blurred(mask: np.ndarray, dilate: int, sigma: float) -> np.ndarray:
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)) if dilate else mask
    return cv2.GaussianBlur(np.asarray(grown, np.float32), (0, 0), sigma)


def test_crf_sharpens_a_blurred_mask_toward_the_colour_edge() -> None:
    rgb, truth = edge_scene()
    soft = blurred(truth, dilate=4, sigma=5)
    refined = refine_instance(soft, rgb, windowed=False)
    before, after = iou(soft >= 0.5, truth), iou(refined >= 0.5, truth)
    assert before < 0.8  # measured 0.78
    assert after > before + 0.15  # measured 1.0
    assert refined.dtype == np.float32 and refined.shape == (H, W)
    assert 0.0 <= refined.min() and refined.max() <= 1.0


def test_crf_is_deterministic_and_takes_non_contiguous_inputs() -> None:
    rgb, truth = edge_scene()
    soft = blurred(truth, dilate=2, sigma=4)
    first = refine_instance(soft, rgb)
    flipped = refine_instance(soft[:, ::-1], rgb[:, ::-1])  # negative strides
    np.testing.assert_array_equal(first, refine_instance(soft, rgb))
    assert iou(flipped[:, ::-1] >= 0.5, first >= 0.5) > 0.99


def test_windowed_crf_matches_the_whole_image_crf_on_a_centred_object() -> None:
    scene = generate_scene(np.random.SeedSequence([3, 1]), height=H, width=W)
    rgb = np.ascontiguousarray(scene.image[..., ::-1])
    centre = np.array([H / 2, W / 2])
    instance = min(scene.instances, key=lambda m: np.linalg.norm(np.argwhere(m).mean(0) - centre))
    soft = blurred(instance, dilate=2, sigma=3)
    whole = refine_instance(soft, rgb, windowed=False)
    windowed = refine_instance(soft, rgb, window=WindowSettings(min_margin=20, margin_fraction=0.3))
    assert iou(whole >= 0.5, windowed >= 0.5) > 0.97
    bounds = crf_window(soft, settings=WindowSettings(min_margin=20, margin_fraction=0.3))
    assert bounds is not None
    x0, y0, x1, y1 = bounds
    outside = np.ones((H, W), bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(windowed[outside], soft[outside])  # R_f = R outside the window


def test_window_is_the_support_box_enlarged_and_clamped() -> None:
    prob = np.zeros((H, W), np.float32)
    prob[50:60, 5:25] = 0.9
    settings = WindowSettings(support=0.05, min_margin=10, margin_fraction=0.5)
    assert crf_window(prob, settings=settings) == (0, 40, 35, 70)  # box 20x10 -> margins 10, 10
    assert crf_window(prob, box=(100, 20, 140, 40), settings=settings) == (80, 10, 160, 50)
    assert crf_window(np.zeros((H, W)), settings=settings) is None
    empty = refine_instance(np.zeros((H, W), np.float32), np.zeros((H, W, 3), np.uint8))
    assert not empty.any()


def test_soft_from_binary_lets_the_crf_move_a_hard_edge() -> None:
    rgb, truth = edge_scene()
    grown = cv2.dilate(truth.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    hard = refine_instance(grown.astype(np.float32), rgb, CRFParams(), box=(46, 31, 119, 89))
    soft = refine_instance(soft_from_binary(grown, 0.7), rgb, CRFParams(), box=(46, 31, 119, 89))
    assert iou(hard >= 0.5, grown) == 1.0  # a 0/1 map is too certain to move
    assert iou(soft >= 0.5, truth) > iou(grown, truth) + 0.1


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        refine_instance(np.zeros((10, 10)), np.zeros((10, 12, 3), np.uint8))
