"""Algorithm 1 and eqs. 5, 6, 9: K1/K2 by hand, keep vs replace, the loss's gradient, per-image matching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cgc.model.update import (DEFAULT_PHI, k1, k2, kl_to_label, match_proposals, should_replace, update_image_labels,
                              update_label, update_loss)

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
    label, replaced, k1_value, k2_value = update_label(c, r, grown, DEFAULT_PHI)
    assert replaced and k2_value < k1_value
    np.testing.assert_array_equal(label, grown.astype(np.float32))

    eroded = np.where(c > 0, 0.95, 0.0)
    eroded[2:8, 2:4] = 0.0  # the CRF erased a third of the label
    label, replaced, k1_value, k2_value = update_label(c, r, eroded, DEFAULT_PHI)
    assert not replaced and k2_value - k1_value >= DEFAULT_PHI
    np.testing.assert_array_equal(label, c.astype(np.float32))


def test_update_loss_value_gradient_target_and_sign() -> None:
    c = torch.tensor([[1.0, 1.0, 0.0, 0.5]], requires_grad=True)
    r_f = torch.tensor([[0.9, 0.2, 0.1, 0.5]], requires_grad=True)
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0]], requires_grad=True)
    loss = update_loss(logits, c, r_f)
    expected = k2(r_f.detach().numpy(), c.detach().numpy()) - k1(torch.sigmoid(logits).detach().numpy(), c.detach().numpy())
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert c.grad is None and r_f.grad is None  # the CRF's map and the label are constants
    grad = logits.grad[0]
    assert grad[0] > 0 and grad[1] > 0 and grad[3] > 0  # descent lowers R where C > 0: raises KL(C || R)
    assert grad[2] == 0  # C = 0: no pull
    assert grad[1] > grad[0]  # strongest where the network is least sure of a labelled pixel

    probabilities = torch.sigmoid(logits.detach()).requires_grad_(True)
    same = update_loss(probabilities, c, r_f, from_logits=False)
    assert same.item() == pytest.approx(loss.item(), rel=1e-6)


def square(shape: tuple[int, int], y0: int, x0: int, size: int, value: float = 1.0) -> np.ndarray:
    out = np.zeros(shape, np.float32)
    out[y0:y0 + size, x0:x0 + size] = value
    return out


def test_each_weak_instance_gets_its_best_mask_iou_proposal() -> None:
    shape = (80, 100)
    rgb = np.full(shape + (3,), 40, np.uint8)
    rgb[10:40, 10:40] = (220, 40, 40)  # instance 0
    rgb[45:75, 60:90] = (40, 40, 220)  # instance 1
    labels = [square(shape, 8, 8, 34), square(shape, 45, 60, 30), square(shape, 0, 95, 5)]  # the third: no proposal
    predictions = [
        square(shape, 45, 62, 28, 0.8),  # overlaps label 1 best
        square(shape, 0, 0, 60, 0.7),  # big: overlaps label 0, but worse than the next
        square(shape, 10, 10, 30, 0.7),  # label 0's best
    ]
    assert [p for p, _ in match_proposals(labels, predictions)] == [2, 0, None]
    updates = update_image_labels(labels, predictions, rgb)
    assert [u.proposal for u in updates] == [2, 0, None]
    assert updates[0].match_iou == pytest.approx(900 / (34 * 34))
    for update in updates[:2]:
        assert update.replaced == (update.k2 - update.k1 < DEFAULT_PHI)
        assert update.label.shape == shape and update.label.dtype == np.float32
        assert 0.5 < update.iou_label_refined <= 1.0
    assert not updates[2].replaced and math.isnan(updates[2].k1)
    np.testing.assert_array_equal(updates[2].label, labels[2])
    assert update_image_labels([], predictions, rgb) == []
