"""Small helpers the tests share (imported as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import numpy as np


def rectangle(shape: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0
