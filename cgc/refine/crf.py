"""Fully connected CRF refinement of one instance's soft map (the paper's eqs. 3-4).

A two-label CRF (background / this instance) in the Kraehenbuehl & Koltun formulation, solved
with pydensecrf's mean-field inference:

    E(M) = -sum_i log P(m_i) + sum_{i,j} [m_i != m_j] *
           ( w1 exp(-|p_i-p_j|^2 / 2 theta_alpha^2 - |I_i-I_j|^2 / 2 theta_beta^2)   appearance
           + w2 exp(-|p_i-p_j|^2 / 2 theta_gamma^2) )                                smoothness

The whole-image CRF costs about 0.5 s per instance at 400x300, and it is run once per instance
for every label update and for every setting of the parameter search. Almost all of that time
is spent far from the instance, where the answer cannot change: so `refine_instance` runs the
CRF only on the instance's box enlarged by a margin, and keeps the input map outside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cgc.settings import check_settings, option


# The soft map a thresholded mask becomes before the CRF (soft_from_binary): the best of 0.6 / 0.7 / 0.8 / 0.9 / 0.95
# on perturbed masks of the sample scenes.
HARD_MASK_CONFIDENCE = 0.7


@dataclass(frozen=True)
class CRFParams:
    """The CRF's settings; defaults are the paper's final values (w1, w2, theta_a, theta_b, theta_g) = (4, 3, 70, 13, 1).

    `clip` keeps probabilities in [clip, 1 - clip] before -log, so that a pixel the network is
    certain about still has a finite unary (a clip of 1e-4 caps the unary gap at 9.2, above the
    largest pairwise pull w1 + w2 = 7, so confident pixels stay put and uncertain ones move).
    """

    w1: float = option(4.0, "Appearance kernel weight.", minimum=0)
    w2: float = option(3.0, "Smoothness kernel weight.", minimum=0)
    theta_alpha: float = option(70.0, "Appearance kernel: position scale (pixels).", minimum=0, above_minimum=True)
    theta_beta: float = option(13.0, "Appearance kernel: colour scale (0-255 units).", minimum=0, above_minimum=True)
    theta_gamma: float = option(1.0, "Smoothness kernel: position scale (pixels).", minimum=0, above_minimum=True)
    iterations: int = option(10, "Mean-field iterations.", minimum=1)
    clip: float = 1e-4

    def __post_init__(self) -> None:
        check_settings(self)  # a tuned JSON and the Python API too, not only the options


@dataclass(frozen=True)
class WindowSettings:
    """Where the windowed CRF runs: the box of pixels with probability > `support`, enlarged on
    each side by max(`min_margin`, `margin_fraction` * box side), clamped to the image."""

    support: float = 0.05
    min_margin: int = 50
    margin_fraction: float = 0.3


def crf_foreground(prob: np.ndarray, rgb: np.ndarray, params: CRFParams = CRFParams()) -> np.ndarray:
    """Foreground marginal of the two-label dense CRF over the whole of `prob` / `rgb` (no window)."""
    import pydensecrf.densecrf as dcrf

    prob = np.asarray(prob, dtype=np.float32)
    if prob.ndim != 2 or rgb.shape[:2] != prob.shape or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"need an HxW map and an HxWx3 image, got {prob.shape} and {rgb.shape}")
    height, width = prob.shape
    p = np.clip(prob, params.clip, 1.0 - params.clip).reshape(-1)
    unary = np.ascontiguousarray(np.stack([-np.log1p(-p), -np.log(p)]), dtype=np.float32)  # (2, N): bg, fg
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=params.theta_gamma, compat=params.w2)
    crf.addPairwiseBilateral(sxy=params.theta_alpha, srgb=params.theta_beta,
                             rgbim=np.ascontiguousarray(rgb, dtype=np.uint8), compat=params.w1)
    marginals = np.asarray(crf.inference(params.iterations), dtype=np.float32)
    return marginals[1].reshape(height, width)


def crf_window(prob: np.ndarray, box: tuple[int, int, int, int] | None = None,
               settings: WindowSettings = WindowSettings()) -> tuple[int, int, int, int] | None:
    """The (x0, y0, x1, y1) pixel window (exclusive ends) the windowed CRF runs on; None if no support.

    `box` (x0, y0, x1, y1) overrides the soft map's support box, e.g. the proposal's box.
    """
    height, width = prob.shape
    if box is None:
        ys, xs = np.nonzero(prob > settings.support)
        if len(xs) == 0:
            return None
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    else:
        x0, y0 = int(np.floor(box[0])), int(np.floor(box[1]))
        x1, y1 = int(np.ceil(box[2])), int(np.ceil(box[3]))
    margin_x = max(settings.min_margin, int(round(settings.margin_fraction * (x1 - x0))))
    margin_y = max(settings.min_margin, int(round(settings.margin_fraction * (y1 - y0))))
    x0, y0 = max(0, x0 - margin_x), max(0, y0 - margin_y)
    x1, y1 = min(width, x1 + margin_x), min(height, y1 + margin_y)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def refine_instance(prob: np.ndarray, rgb: np.ndarray, params: CRFParams = CRFParams(),
                    box: tuple[float, float, float, float] | None = None, windowed: bool = True,
                    window: WindowSettings = WindowSettings()) -> np.ndarray:
    """R_f: the instance's foreground probability `prob` (HxW, 0..1) refined by the dense CRF on `rgb` (HxWx3 uint8, RGB).

    With `windowed` (the default) the CRF runs only on the instance's enlarged box and R_f = R
    outside it: the same answer near the instance (mean IoU at 0.5 of 0.99 to the whole-image
    CRF on the sample scenes, see benchmarks/crf_cost.py) at a fifth of the cost.
    """
    prob = np.asarray(prob, dtype=np.float32)
    if not windowed:
        return crf_foreground(prob, rgb, params)
    if rgb.shape[:2] != prob.shape:
        raise ValueError(f"map {prob.shape} and image {rgb.shape[:2]} differ in size")
    bounds = crf_window(prob, None if box is None else tuple(box), window)  # type: ignore[arg-type]
    refined = prob.copy()
    if bounds is None:
        return refined
    x0, y0, x1, y1 = bounds
    refined[y0:y1, x0:x1] = crf_foreground(prob[y0:y1, x0:x1], rgb[y0:y1, x0:x1], params)
    return refined


def soft_from_binary(mask: np.ndarray, confidence: float = HARD_MASK_CONFIDENCE) -> np.ndarray:
    """A hard mask as a soft map (`confidence` inside, 1 - `confidence` outside), so the CRF may move its edge.

    Predictions on disk are thresholded masks; fed as 0/1 the clipped unary would outweigh any
    pairwise term and the CRF would change nothing.
    """
    return np.where(np.asarray(mask, bool), np.float32(confidence), np.float32(1.0 - confidence))
