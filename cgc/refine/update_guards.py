"""The guard on Algorithm 1's replacement of a weak label C by the CRF's map R_f, off by default.

Algorithm 1 replaces C by R_f >= 0.5 whenever K2 - K1 < phi, which also replaces good labels by
worse maps (docs/method/crf.md). The guard that measured best uses what the weak labels left
undecided:

- **shared pixels only** (``shared_only``): only the pixels that C and another instance's label
  both claim may change; the rest of C stays as it is. Those are the pixels the weak labels left
  undecided (the naive rule gives every salient pixel in two boxes to both). Pixels the labels
  already gave to one instance stay with it: the priors' builder decides shared pixels with colour
  models and a graph cut, and the maps of a short training decide them worse (docs/method/crf.md, "Dense CRF
  and label updates"), so its labels, which never overlap, are left as they are.

Five other guards were measured against it (a salient-region margin, a box margin, a quality
floor on IoU and on the map's confidence, and blending by confidence) and removed: none helped
(docs/method/crf.md).

Pure numpy, for the CRF workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cgc.settings import option


@dataclass(frozen=True)
class UpdateGuards:
    """Which guards are on (off: Algorithm 1 as written); see the module docstring."""

    shared_only: bool = option(
        False, "Change only the pixels that another instance's label claims too, which the weak labels left "
        "undecided; every other pixel keeps its label. Measured best with label_update.phi 0.15 (docs/method/crf.md).",
        advanced=True)

    @property
    def any(self) -> bool:
        return self.shared_only


def shared_pixels(label: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels this label and another instance's label both claim."""
    return label & others


def guarded_label(label: np.ndarray, r_f: np.ndarray, others: np.ndarray,
                  guards: UpdateGuards) -> tuple[np.ndarray | None, str]:
    """The label Algorithm 1's replacement gives under ``guards``: (C_next, "") or (None, why C stays).

    ``label`` C and ``others`` (the union of the image's other labels) are bool (H, W); ``r_f`` the CRF's map.
    """
    proposal = r_f >= 0.5
    if guards.shared_only:
        proposal = np.where(shared_pixels(label, others), proposal, label)
    if not proposal.any():
        return None, "empty after the guards"
    if np.array_equal(proposal, label):
        return None, "unchanged under the guards"
    return proposal, ""
