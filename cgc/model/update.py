"""The label-update scheme (Algorithm 1, eqs. 5, 6 and 9): when to replace a weak label by the CRF's map.

R is an instance's predicted map, R_f = CRF(R), C the current weak label (all HxW, 0..1):

    K1(R, C)   = 1/(H W) sum_i C_i log(C_i / (R_i   + sigma) + sigma)     (eq. 5)
    K2(R_f, C) = 1/(H W) sum_i C_i log(C_i / (R_f_i + sigma) + sigma)     (eq. 6)
    C_next = C if K2 - K1 >= phi else R_f                                  (Algorithm 1, phi = 0.05)
    L_upd = K2 - K1                                                        (eq. 9)

sigma: the paper calls it "a regularization constant" and gives no value. We use 1e-6: it only
matters where R -> 0 on a labelled pixel, where it caps that pixel's term at -log(sigma) = 13.8
nats (a pixel the CRF erodes out of C costs that much, which is what makes K2 - K1 >= phi catch
"excessive erosion"), and it is large enough to stay finite in float32. Everything else in the
formula is the paper's, including the odd "+ sigma" inside the log (with C_i = 0 a term is
0 * log(sigma) = 0).

The means run over every pixel of the maps given (the paper's H x W): the per-image function
below passes whole-image maps, so a small instance moves K less than a big one.

Everything here is pure (arrays in, arrays out, no I/O) so the trainer can call it in worker
processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cgc.model.crf import CRFParams, WindowSettings, refine_instance

if TYPE_CHECKING:
    import torch

DEFAULT_SIGMA = 1e-6
DEFAULT_PHI = 0.05  # Table III: the best of 0.01 ... 0.2


def kl_to_label(prediction: np.ndarray, label: np.ndarray, sigma: float = DEFAULT_SIGMA) -> float:
    """Mean_i C_i log(C_i / (P_i + sigma) + sigma): K1 with P = R, K2 with P = R_f (eqs. 5-6)."""
    p = np.asarray(prediction, dtype=np.float64)
    c = np.asarray(label, dtype=np.float64)
    if p.shape != c.shape:
        raise ValueError(f"prediction {p.shape} and label {c.shape} differ in shape")
    if p.size == 0:
        return 0.0
    return float(np.mean(c * np.log(c / (p + sigma) + sigma)))


def k1(r: np.ndarray, c: np.ndarray, sigma: float = DEFAULT_SIGMA) -> float:
    """K1(R, C), eq. 5: how far the network's map R is from the weak label C."""
    return kl_to_label(r, c, sigma)


def k2(r_f: np.ndarray, c: np.ndarray, sigma: float = DEFAULT_SIGMA) -> float:
    """K2(R_f, C), eq. 6: how far the CRF-refined map R_f is from the weak label C."""
    return kl_to_label(r_f, c, sigma)


def should_replace(k1_value: float, k2_value: float, phi: float = DEFAULT_PHI) -> bool:
    """Algorithm 1: replace C by R_f when K2 - K1 < phi; keep C when K2 - K1 >= phi.

    The CRF is trusted unless it moves the map much further from C than the network already
    was (typically by eroding labelled pixels).
    """
    return bool(k2_value - k1_value < phi)


def update_label(c: np.ndarray, r: np.ndarray, r_f: np.ndarray, phi: float = DEFAULT_PHI,
                 sigma: float = DEFAULT_SIGMA) -> tuple[np.ndarray, bool, float, float]:
    """C_next for one instance by Algorithm 1, with whether it was replaced, K1 and K2."""
    k1_value, k2_value = k1(r, c, sigma), k2(r_f, c, sigma)
    replaced = should_replace(k1_value, k2_value, phi)
    return (np.asarray(r_f if replaced else c, dtype=np.float32), replaced, k1_value, k2_value)


def update_loss(r: "torch.Tensor", c: "torch.Tensor", r_f: "torch.Tensor", sigma: float = DEFAULT_SIGMA,
                from_logits: bool = True) -> "torch.Tensor":
    """L_upd = K2(R_f, C) - K1(R, C) (eq. 9), a scalar mean over every pixel of every map given.

    `r` holds the mask head's logits (or probabilities with `from_logits=False`); `c` and `r_f`
    are constants (R_f comes out of the non-differentiable CRF), so only -K1 carries gradient.

    What the gradient does: dK1/dR_i = -C_i^2 / ((R_i + sigma)(C_i + sigma (R_i + sigma))) <= 0, so
    dL/dR_i >= 0 and gradient descent *lowers* R wherever C > 0, i.e. it raises KL(C || R) --
    the opposite of fitting C. Through the sigmoid the push on a logit is about C_i (1 - R_i)
    per pixel (bounded, unlike the 1/sigma slope in probability space, hence the logits input):
    strongest on labelled pixels the network is not yet sure of, vanishing where it is
    confident. It counters over-confidence on noisy positives; L_seg pulls the other way. This
    is the paper's loss as written; weigh it and measure its effect.
    """
    import torch

    probability = torch.sigmoid(r) if from_logits else r
    c = c.detach().to(probability.dtype)
    r_f = r_f.detach().to(probability.dtype)
    k1_value = torch.mean(c * torch.log(c / (probability + sigma) + sigma))
    k2_value = torch.mean(c * torch.log(c / (r_f + sigma) + sigma))
    return k2_value - k1_value


@dataclass
class InstanceUpdate:
    """The label update of one weak instance: what the trainer needs and what to log."""

    instance: int  # index into the image's weak labels
    proposal: int | None  # index of the matched proposal, None if none overlaps it
    match_iou: float  # mask IoU (at 0.5) between C and the matched proposal's R
    replaced: bool
    k1: float
    k2: float
    iou_label_refined: float  # IoU (at 0.5) between C and R_f: how much C would change (1 = not at all)
    label: np.ndarray  # C_next, float32 HxW (R_f if replaced, else C)


def _binary_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every row of `a` (n, P) and of `b` (m, P), boolean pixel rows."""
    af, bf = a.astype(np.float32), b.astype(np.float32)
    inter = af @ bf.T
    union = af.sum(1)[:, None] + bf.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def match_proposals(labels: Sequence[np.ndarray], predictions: Sequence[np.ndarray]) -> list[tuple[int | None, float]]:
    """For each weak label C_j, the proposal whose map R (at 0.5) has the highest mask IoU with C_j (at 0.5).

    Mask IoU, not box IoU: where a small instance stands in front of a big one their boxes
    overlap heavily and a box match can hand C_j the other instance's map; the update compares
    maps, so maps decide the match. Ties go to the lower proposal index (e.g. the higher score
    when proposals are sorted). Labels no proposal overlaps get (None, 0.0).
    """
    if not labels or not predictions:
        return [(None, 0.0)] * len(labels)
    c = np.stack([np.asarray(label).reshape(-1) >= 0.5 for label in labels])
    r = np.stack([np.asarray(pred).reshape(-1) >= 0.5 for pred in predictions])
    ious = _binary_iou_matrix(c, r)
    out: list[tuple[int | None, float]] = []
    for row in ious:
        best = int(np.argmax(row))
        out.append((best, float(row[best])) if row[best] > 0 else (None, 0.0))
    return out


def update_image_labels(labels: Sequence[np.ndarray], predictions: Sequence[np.ndarray], rgb: np.ndarray,
                        boxes: Sequence[Sequence[float]] | None = None, params: CRFParams = CRFParams(),
                        phi: float = DEFAULT_PHI, sigma: float = DEFAULT_SIGMA, windowed: bool = True,
                        window: WindowSettings = WindowSettings()) -> list[InstanceUpdate]:
    """Algorithm 1 for every weak instance of one image.

    `labels`: the current weak masks C_j (HxW, bool or 0..1); `predictions`: the proposals'
    maps R (HxW probabilities, pasted into the image); `boxes`: the proposals' (x0, y0, x1, y1)
    boxes, used as the CRF window's core if given (else R's support); `rgb`: HxWx3 uint8.
    Each C_j gets its best mask-IoU proposal R, R_f = CRF(R), then keep-or-replace by
    K2 - K1 vs phi. A C_j without an overlapping proposal is kept as it is (K1 = K2 = nan).
    """
    updates = []
    for index, (proposal, match_iou) in enumerate(match_proposals(labels, predictions)):
        c = np.asarray(labels[index], dtype=np.float32)
        if proposal is None:
            updates.append(InstanceUpdate(index, None, 0.0, False, float("nan"), float("nan"), 1.0, c))
            continue
        r = np.asarray(predictions[proposal], dtype=np.float32)
        box = None if boxes is None else tuple(float(v) for v in boxes[proposal])
        r_f = refine_instance(r, rgb, params, box=box, windowed=windowed, window=window)  # type: ignore[arg-type]
        label, replaced, k1_value, k2_value = update_label(c, r, r_f, phi, sigma)
        change = _binary_iou_matrix((c >= 0.5).reshape(1, -1), (r_f >= 0.5).reshape(1, -1))[0, 0]
        updates.append(InstanceUpdate(index, proposal, match_iou, replaced, k1_value, k2_value, float(change), label))
    return updates
