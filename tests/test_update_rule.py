"""Algorithm 1 and eqs. 5, 6, 9: K1/K2 by hand, keep vs replace, the loss's gradient, the choice of R.

Each test calls what training runs: the K1/K2 and the rule of the CRF worker, the heads' choice of
each instance's map and their loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cgc.model import NETWORK, build_cgcnet, changed
from cgc.model.roi_heads import label_update_loss
from cgc.refine.update_rule import DEFAULT_PHI, k1, k2, kl_to_label, should_replace

C = np.array([1.0, 0.0, 1.0, 0.5])
R = np.array([0.5, 0.2, 1.0, 0.5])


def test_k1_matches_a_hand_computation() -> None:
    sigma = 0.1
    terms = [1 * math.log(1 / 0.6 + 0.1), 0.0, 1 * math.log(1 / 1.1 + 0.1), 0.5 * math.log(0.5 / 0.6 + 0.1)]
    assert k1(R, C, sigma) == pytest.approx(sum(terms) / 4, rel=1e-12)
    assert k2(R, C, sigma) == k1(R, C, sigma)  # the same formula, other map
    assert kl_to_label(np.ones((2, 2)), np.ones((2, 2)), 0.0) == 0.0  # R = C = 1: log 1


def test_k2_with_default_sigma_charges_minus_log_sigma_per_eroded_pixel() -> None:
    c = np.array([1.0, 1.0, 0.0, 0.0])
    r_f = np.array([1.0, 0.0, 0.0, 1.0])  # one labelled pixel eroded, one background pixel added
    assert k2(r_f, c) == pytest.approx((math.log(1 / (1 + 1e-6) + 1e-6) + math.log(1 / 1e-6 + 1e-6)) / 4)
    assert k2(r_f, c) == pytest.approx(-math.log(1e-6) / 4, rel=1e-5)  # added background costs nothing


def test_rule_keeps_at_and_above_phi_and_replaces_below() -> None:
    assert not should_replace(0.0, 0.05, 0.05)  # K2 - K1 >= phi: keep
    assert not should_replace(0.1, 0.3, 0.05)
    assert should_replace(0.0, 0.0499, 0.05)  # K2 - K1 < phi: replace
    assert should_replace(0.3, 0.1, 0.05)


def test_rule_on_hand_built_maps() -> None:
    c = np.zeros((10, 10))
    c[2:8, 2:8] = 1.0  # the weak label: a 6x6 square
    r = np.where(c > 0, 0.6, 0.1)  # the network: unsure
    grown = np.where(c > 0, 0.95, 0.02)
    grown[1, 2:8] = 0.9  # the CRF: surer, and one row larger
    assert k2(grown, c) < k1(r, c) and should_replace(k1(r, c), k2(grown, c), DEFAULT_PHI)

    eroded = np.where(c > 0, 0.95, 0.0)
    eroded[2:8, 2:4] = 0.0  # the CRF erased a third of the label
    assert k2(eroded, c) - k1(r, c) >= DEFAULT_PHI and not should_replace(k1(r, c), k2(eroded, c), DEFAULT_PHI)


def test_update_loss_value_gradient_and_sign() -> None:
    """L_upd = K2 - K1 with K2 the worker's constant: value from eqs. 5-6, gradient through K1 only."""
    c = torch.tensor([[[[1.0, 1.0], [0.0, 0.5]]]])
    r_f = np.array([[0.9, 0.2], [0.1, 0.5]])
    logits = torch.tensor([[[[0.5, -1.0], [2.0, 0.0]]]], requires_grad=True)
    k2_value = k2(r_f, c[0, 0].numpy())
    loss = label_update_loss([logits], [c], [torch.tensor([0])], [{"label_k2": torch.tensor([k2_value])}], 1e-6)
    expected = k2_value - k1(torch.sigmoid(logits).detach()[0, 0].numpy(), c[0, 0].numpy())
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    grad = logits.grad[0, 0].flatten()
    assert grad[0] > 0 and grad[1] > 0 and grad[3] > 0  # descent lowers R where C > 0: raises KL(C || R)
    assert grad[2] == 0  # C = 0: no pull
    assert grad[1] > grad[0]  # strongest where the network is least sure of a labelled pixel


def test_each_instance_gets_its_best_mask_iou_proposal() -> None:
    """Among the proposals matched to an instance, the one whose map overlaps its label most (not the first)."""
    torch.manual_seed(0)
    heads = build_cgcnet(changed(NETWORK, backbone="mobilenet_v2", backbone_weights=None, min_size=32, max_size=32,
                                 mask={"channels": 8})).roi_heads
    label = torch.zeros(3, 1, 8, 8)
    label[:, :, 2:6, 2:6] = 1.0  # proposals 0 and 1 are matched to instance 0, proposal 2 to instance 1
    label[2] = 0.0
    label[2, :, 0:2, 6:8] = 1.0
    logits = torch.full((3, 1, 8, 8), -5.0)
    logits[0, :, 0:6, 0:6] = 5.0  # covers the label, and much more: IoU 16/36
    logits[1, :, 2:6, 2:5] = 5.0  # most of the label: IoU 12/16
    logits[2, :, 5:8, 0:3] = 5.0  # misses its label altogether: no map, the label is kept
    masks = torch.zeros(2, 16, 16)
    target = {"masks": masks, "image_id": torch.tensor(7), "annotation_ids": torch.tensor([70, 71])}
    found = heads.best_instance_maps([logits], [label], [torch.tensor([0, 0, 1])], [(16, 16)], [target])
    assert [(m.annotation_id, m.proposal) for m in found] == [(70, 1)]
    assert found[0].match_iou == pytest.approx(12 / 16) and found[0].stride == 2
