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

The means run over every pixel of the maps given (the paper's H x W): the trainer's CRF worker
(`cgc.refine.instance_update.decide_instance`) passes whole-image maps, so a small instance moves K
less than a big one. The loss with its gradient is `cgc.model.roi_heads.label_update_loss`.

Everything here is pure (arrays in, arrays out, no I/O) so the trainer can call it in worker
processes.
"""

from __future__ import annotations

import numpy as np

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
