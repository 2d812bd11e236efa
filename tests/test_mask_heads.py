"""The four mask heads: eq. 2 exactly on a hand-built map, LFR windows, RoIMasking values, shapes,
gradients and losses."""

from __future__ import annotations

import math

import pytest
import torch

from cgc.model.mask_heads import (
    OUTSIDE_WINDOW_LOGIT,
    MASK_HEAD_CLASSES,
    GFRHead,
    LFRHead,
    RoIAlignHead,
    RoIMaskingHead,
    box_cells,
    build_mask_head,
    global_feature_refine,
    ternary_roi_mask,
)
from cgc.network_settings import MASK_HEAD_SPECS, GFRSpec, RoIAlignSpec, RoIMaskingSpec, mask_head_spec

WHOLE_IMAGE_HEADS = [GFRHead, LFRHead, RoIMaskingHead]


def head_of(head_class, in_channels: int, **spec):
    """A head of `head_class` whose spec has these settings (the two registries pair them by name)."""
    name = next(name for name, registered in MASK_HEAD_CLASSES.items() if registered is head_class)
    return head_class(in_channels, MASK_HEAD_SPECS[name](**spec))

# A padded batch of 64 x 96 holding images of 64 x 80 and 60 x 72: FPN levels at strides 4-32.
IMAGE_SIZES = [(64, 80), (60, 72)]
BOXES = [torch.tensor([[4.0, 4.0, 40.0, 30.0], [30.0, 20.0, 76.0, 60.0]]), torch.tensor([[10.0, 8.0, 50.0, 50.0]])]
CHANNELS = 8


def make_features(requires_grad: bool = True) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    sizes = {"0": (16, 24), "1": (8, 12), "2": (4, 6), "3": (2, 3), "pool": (1, 2)}
    return {k: torch.randn(2, CHANNELS, *hw, requires_grad=requires_grad) for k, hw in sizes.items()}


def make_masks() -> list[torch.Tensor]:
    masks = []
    for boxes, (h, w) in zip(BOXES, IMAGE_SIZES):
        m = torch.zeros(len(boxes), h, w, dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
            m[i, y1 + 2 : y2 - 2, x1 + 2 : x2 - 2] = 1
        masks.append(m)
    return masks


# --------------------------------------------------------------------------- eq. 2 by hand


def test_gfr_follows_equation_2_on_a_hand_built_feature_map() -> None:
    torch.manual_seed(0)
    feature = torch.randn(3, 8, 10)  # C, H, W at stride 1: boxes are in cell units
    boxes = torch.tensor([[1.0, 1.0, 4.0, 4.0], [5.0, 2.0, 9.0, 6.0], [3.0, 3.0, 6.0, 5.0]])  # box 2 overlaps 0 and 1
    gap = feature.mean(dim=(1, 2))
    refined = global_feature_refine(feature, boxes)
    assert refined.shape == (3, 3, 8, 10)

    regions = torch.zeros(3, 8, 10, dtype=torch.bool)
    for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
        regions[i, y1:y2, x1:x2] = True
    union = regions.any(dim=0)
    for i in range(3):
        own = regions[i]
        others = union & ~own
        g = refined[i]
        assert torch.equal(g[:, own], feature[:, own])  # R_i pasted back (overlaps included)
        assert torch.equal(g[:, ~union], feature[:, ~union])  # background untouched
        assert torch.allclose(g[:, others], gap[:, None].expand(-1, int(others.sum())))  # others = GAP
    # Proposal 0: the part of box 2 outside box 0 is suppressed, the shared part is kept.
    assert torch.equal(refined[0][:, 3, 3], feature[:, 3, 3])
    assert torch.allclose(refined[0][:, 4, 4], gap)


def test_gfr_maps_image_boxes_to_feature_cells_they_overlap() -> None:
    cells = box_cells(torch.tensor([[4.0, 4.0, 12.0, 9.0], [20.0, 20.0, 20.0, 20.0]]), stride=4, height=8, width=8)
    assert cells[0].nonzero()[:, 0].unique().tolist() == [1, 2]  # y 4..9 -> rows 1 and 2
    assert cells[0].nonzero()[:, 1].unique().tolist() == [1, 2]  # x 4..12 -> cols 1, 2
    assert cells[1].sum() == 1  # a degenerate box still owns the cell it sits in


@pytest.mark.parametrize("head_class", WHOLE_IMAGE_HEADS)
def test_fcn_input_over_a_window_is_that_window_of_the_whole_input(head_class) -> None:
    """The fast forward builds each proposal's input over its crop alone: the same cells as over the whole map,
    with GFR's fill still the whole map's average."""
    torch.manual_seed(0)
    head = head_of(head_class, CHANNELS, channels=16)
    feature, boxes = torch.randn(CHANNELS, 16, 24), BOXES[0]
    whole = head.refine(feature, boxes, 4.0, torch.tensor([1]))
    part = head.refine(feature, boxes, 4.0, torch.tensor([1]), window=(3, 2, 17, 11))
    assert part.shape == (1, CHANNELS, 9, 14)
    torch.testing.assert_close(part, whole[:, :, 2:11, 3:17])


def test_lfr_keeps_gfr_inside_the_enlarged_box_and_fills_outside() -> None:
    torch.manual_seed(0)
    feature = torch.randn(2, 40, 40)
    boxes = torch.tensor([[10.0, 10.0, 30.0, 20.0], [0.0, 25.0, 8.0, 35.0]])
    gfr = global_feature_refine(feature, boxes)
    lfr = global_feature_refine(feature, boxes, window_per_side=0.1)
    gap = feature.mean(dim=(1, 2))
    window = torch.zeros(40, 40, dtype=torch.bool)
    window[9:21, 8:32] = True  # (Hr + Hr/5) x (Wr + Wr/5): 1 row / 2 columns more on every side
    assert torch.equal(lfr[0][:, window], gfr[0][:, window])
    assert torch.allclose(lfr[0][:, ~window], gap[:, None].expand(-1, int((~window).sum())))
    assert not torch.equal(gfr[0][:, ~window], lfr[0][:, ~window])


def test_roi_masking_ternary_values_and_border_clamping() -> None:
    boxes = torch.tensor([[4.0, 4.0, 8.0, 8.0], [0.0, 0.0, 4.0, 4.0]])
    mask = ternary_roi_mask(boxes, stride=1, height=12, width=12, ring_per_side=0.5)
    assert set(mask.unique().tolist()) == {-1.0, 0.0, 1.0}
    expected = torch.zeros(12, 12)
    expected[2:10, 2:10] = -1
    expected[4:8, 4:8] = 1
    assert torch.equal(mask[0], expected)
    # A box at the top-left corner: the ring stops at the border, nothing wraps to the far side.
    corner = torch.zeros(12, 12)
    corner[0:6, 0:6] = -1
    corner[0:4, 0:4] = 1
    assert torch.equal(mask[1], corner)
    assert RoIMaskingHead().ring_per_side == pytest.approx(1 / 3)  # S4Net's released code


def test_roi_masking_head_input_is_feature_times_ternary_mask() -> None:
    head = RoIMaskingHead(2, RoIMaskingSpec(channels=4, ring_per_side=0.5))
    feature = torch.randn(2, 12, 12)
    boxes = torch.tensor([[4.0, 4.0, 8.0, 8.0]])
    refined = head.refine(feature, boxes, 1.0, torch.tensor([0]))
    mask = ternary_roi_mask(boxes, 1.0, 12, 12, 0.5)
    assert torch.equal(refined[0], feature * mask[0])


# --------------------------------------------------------------------------- shapes and gradients



@pytest.mark.parametrize("head_class", WHOLE_IMAGE_HEADS)
def test_whole_image_heads_shapes_gradients_and_image_masks(head_class) -> None:
    torch.manual_seed(0)
    head = head_of(head_class, CHANNELS, channels=16, chunk_size=1)
    features = make_features()
    logits = head(features, BOXES, IMAGE_SIZES)
    assert [tuple(l.shape) for l in logits] == [(2, 1, 32, 40), (1, 1, 30, 36)]  # stride 2, valid region
    loss = head.loss(logits, BOXES, make_masks())
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert features["0"].grad is not None and features["0"].grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())

    masks = head.to_box_masks(logits[1].detach(), BOXES[1], IMAGE_SIZES[1], (120, 144)).dense()
    assert masks.shape == (1, 1, 120, 144)
    assert 0 <= masks.min() and masks.max() <= 1


def test_gfr_image_masks_do_not_depend_on_the_chunk_size() -> None:
    """`chunk_size` only bounds how many masks are upsampled at once: every proposal still gets its own mask."""
    torch.manual_seed(0)
    logits = torch.randn(5, 1, 32, 40)
    boxes = torch.tensor([[4.0, 4.0, 40.0, 30.0]] * 5)
    whole = GFRHead(CHANNELS, GFRSpec(channels=8, chunk_size=16)).to_box_masks(logits, boxes, (64, 80), (120, 150)).dense()
    chunked = GFRHead(CHANNELS, GFRSpec(channels=8, chunk_size=2)).to_box_masks(logits, boxes, (64, 80), (120, 150)).dense()
    assert whole.shape == chunked.shape == (5, 1, 120, 150)
    assert torch.allclose(whole, chunked, atol=1e-6)


@pytest.mark.parametrize("name", ["gfr", "roialign"])
def test_box_masks_are_the_picture_sized_masks_over_their_windows(name: str) -> None:
    """Held on the grid and resized window by window, the masks are what pasting every detection as a picture-sized
    map gave (torchvision's paste for RoIAlign; two bilinear resizes for the whole-image heads), to float rounding,
    and nothing at or above 0.5 lies outside a window."""
    import torch.nn.functional as F
    from torchvision.models.detection.roi_heads import paste_masks_in_image

    torch.manual_seed(0)
    head = build_mask_head(mask_head_spec(name, channels=8), in_channels=CHANNELS)
    boxes = torch.tensor([[4.0, 6.0, 40.0, 30.0], [30.5, 2.2, 79.0, 63.0], [0.0, 0.0, 8.0, 5.0]])
    if name == "roialign":
        logits = 4 * torch.randn(3, 1, 28, 28)
        expected = paste_masks_in_image(logits.sigmoid(), boxes, (131, 163))
    else:
        logits = torch.full((3, 1, 32, 40), -8.0)  # salient only around each box, as the output window makes it
        for logit, (x0, y0, x1, y1) in zip(logits, (boxes / 2).long().tolist()):
            logit[:, y0:y1, x0:x1] = 4 * torch.randn(1, y1 - y0, x1 - x0)
        expected = F.interpolate(F.interpolate(logits.sigmoid(), scale_factor=2, mode="bilinear", align_corners=False),
                                 size=(131, 163), mode="bilinear", align_corners=False)
    masks = head.to_box_masks(logits, boxes, (64, 80), (131, 163))
    dense = masks.dense()
    salient = expected >= 0.5
    assert torch.equal(dense >= 0.5, salient) and salient.any()
    torch.testing.assert_close(dense[salient], expected[salient], atol=1e-5, rtol=0)
    assert sum(masks.masks[i].area for i in range(3)) < 3 * 131 * 163  # windows, not whole pictures


def test_whole_image_loss_targets_are_aligned_with_the_logits() -> None:
    head = GFRHead(CHANNELS, GFRSpec(channels=8))
    masks = make_masks()
    logits = [torch.zeros(len(b), 1, 2 * -(-h // 4), 2 * -(-w // 4)) for b, (h, w) in zip(BOXES, IMAGE_SIZES)]
    right, wrong = [], []
    for l, m in zip(logits, masks):
        target = torch.nn.functional.avg_pool2d(m[:, None].float(), 2)  # sizes are even here
        padded = torch.zeros_like(l)
        padded[..., : target.shape[-2], : target.shape[-1]] = target
        right.append(20 * (padded - 0.5))
        wrong.append(-20 * (padded - 0.5))
    assert head.loss(right, BOXES, masks) < 0.1 < head.loss(wrong, BOXES, masks)


def test_roialign_head_shapes_gradients_and_pasted_masks() -> None:
    torch.manual_seed(0)
    head = RoIAlignHead(CHANNELS, RoIAlignSpec(channels=16))
    features = make_features()
    logits = head(features, BOXES, IMAGE_SIZES)
    assert [tuple(l.shape) for l in logits] == [(2, 1, 28, 28), (1, 1, 28, 28)]
    loss = head.loss(logits, BOXES, make_masks())
    assert torch.isfinite(loss)
    loss.backward()
    assert sum(features[k].grad.abs().sum() for k in "0123" if features[k].grad is not None) > 0
    assert all(p.grad is not None for p in head.parameters())
    masks = head.to_box_masks(logits[0].detach(), BOXES[0], IMAGE_SIZES[0], IMAGE_SIZES[0]).dense()
    assert masks.shape == (2, 1, 64, 80)
    assert masks[0, 0, 50:, :].max() == 0  # pasted inside the box only (box 0 ends at y = 30)


@pytest.mark.parametrize("name", ["gfr", "lfr", "roimasking", "roialign"])
def test_heads_accept_images_without_boxes(name: str) -> None:
    head = build_mask_head(mask_head_spec(name, channels=8), in_channels=CHANNELS)
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    logits = head(make_features(), empty, IMAGE_SIZES)
    assert [l.shape[0] for l in logits] == [0, 0]
    masks = [torch.zeros(0, h, w, dtype=torch.uint8) for h, w in IMAGE_SIZES]
    assert head.loss(logits, empty, masks).item() == 0.0
    assert head.to_box_masks(logits[0], empty[0], IMAGE_SIZES[0], (10, 20)).dense().shape == (0, 1, 10, 20)


def test_tiny_images_keep_logits_and_targets_aligned() -> None:
    head = GFRHead(CHANNELS, GFRSpec(channels=8))
    features = {"0": torch.randn(1, CHANNELS, 2, 2)}  # a 6 x 8 image padded to 8 x 8 (stride 4)
    boxes = [torch.tensor([[1.0, 1.0, 5.0, 5.0]])]
    logits = head(features, boxes, [(6, 8)])
    assert logits[0].shape == (1, 1, 4, 4)
    assert torch.isfinite(head.loss(logits, boxes, [torch.ones(1, 6, 8, dtype=torch.uint8)]))
    assert head.to_box_masks(logits[0], boxes[0], (6, 8), (6, 8)).dense().shape == (1, 1, 6, 8)


@pytest.mark.parametrize("head_name", ["gfr", "lfr", "roimasking"])
def test_local_recompute_equals_running_the_fcn_on_every_whole_map(head_name: str) -> None:
    """The fast forward (shared base map + per-box crops) must give the dense answer exactly."""
    torch.manual_seed(0)
    output_stride = 2
    head = build_mask_head(mask_head_spec(head_name, channels=16), in_channels=32).eval()
    feature = torch.randn(1, 32, 30, 40)
    boxes = torch.tensor([[10.0, 12.0, 70.0, 90.0], [50.0, 20.0, 150.0, 110.0], [0.0, 0.0, 30.0, 25.0], [140.0, 100.0, 160.0, 120.0]])
    fast = head({"0": feature}, [boxes], [(120, 160)])[0]
    height, width = 120 // output_stride, 160 // output_stride
    dense = head.logits(head.refine(feature[0], boxes, 4.0, torch.arange(4)))
    windows = head.output_windows(boxes, float(output_stride), height, width)
    dense = torch.where(windows[:, None], dense, torch.tensor(OUTSIDE_WINDOW_LOGIT))
    assert fast.shape == dense.shape == (4, 1, height, width)
    torch.testing.assert_close(fast, dense, atol=1e-4, rtol=1e-4)
    masks = head.to_box_masks(fast, boxes, (120, 160), (120, 160)).dense()
    assert masks.shape == (4, 1, 120, 160)
    targets = torch.zeros(4, 120, 160, dtype=torch.uint8)
    assert torch.isfinite(head.loss([fast], [boxes], [targets]))


@pytest.mark.parametrize("name", ["gfr", "lfr", "roimasking", "roialign"])
def test_fresh_heads_start_near_one_half(name: str) -> None:
    """torchvision's Kaiming fan-out init of a one-channel logits layer gives logits near 20 here (loss 8 in training)."""
    torch.manual_seed(0)
    head = build_mask_head(mask_head_spec(name, channels=64), in_channels=CHANNELS)
    features = {key: 5 * value for key, value in make_features(requires_grad=False).items()}  # FPN-like magnitudes
    logits = head(features, BOXES, IMAGE_SIZES)
    predicted = [l[l != OUTSIDE_WINDOW_LOGIT] for l in logits]  # the whole-image heads' output windows
    assert max(p.abs().max().item() for p in predicted) < 5
    assert head.loss(logits, BOXES, make_masks()).item() < 1.0


# --------------------------------------------------------------------------- output window


@pytest.mark.parametrize("head_class", WHOLE_IMAGE_HEADS)
def test_whole_image_heads_predict_only_inside_the_grown_box(head_class) -> None:
    torch.manual_seed(0)
    head = head_of(head_class, CHANNELS, channels=16, output_window_per_side=0.25)
    features = make_features()
    logits = head(features, BOXES, IMAGE_SIZES)
    # Image 1's box (10, 8, 50, 50) grown by 10 / 10.5 px per side, in stride-2 logit cells: x 0..30, y 0..30.
    outside = torch.ones(30, 36, dtype=torch.bool)
    outside[0:30, 0:30] = False
    assert torch.all(logits[1][0, 0][outside] == OUTSIDE_WINDOW_LOGIT)
    assert torch.all(logits[1][0, 0][~outside] != OUTSIDE_WINDOW_LOGIT)
    head.loss(logits, BOXES, make_masks()).backward()
    assert features["0"].grad.abs().sum() > 0
    masks = head.to_box_masks(logits[1].detach(), BOXES[1], IMAGE_SIZES[1], IMAGE_SIZES[1]).dense()
    assert masks[0, 0, :, 62:].max() < 1e-6  # nothing right of the window (x 60) once upsampled


def test_windowed_loss_is_the_mean_over_proposals_of_each_windows_mean_bce() -> None:
    head = GFRHead(CHANNELS, GFRSpec(channels=8, output_window_per_side=0.0))
    boxes = [torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 8.0, 8.0]])]  # 2x2 and 4x4 logit cells at stride 2
    masks = [torch.zeros(2, 8, 8, dtype=torch.uint8)]
    logits = [torch.full((2, 1, 4, 4), OUTSIDE_WINDOW_LOGIT)]
    logits[0][0, 0, :2, :2] = 0.0  # BCE ln 2 on each of the small box's 4 cells
    logits[0][1, 0] = 0.0  # ln 2 on all 16 cells of the big box
    # Per-proposal means are ln 2 and ln 2: a pooled mean over cells would weigh the big box 4x.
    assert head.loss(logits, boxes, masks).item() == pytest.approx(math.log(2))
    logits[0][1, 0] = 2.0  # the big box now costs softplus(2) per cell
    expected = (math.log(2) + math.log1p(math.exp(2))) / 2
    assert head.loss(logits, boxes, masks).item() == pytest.approx(expected, rel=1e-5)


def test_without_a_window_the_loss_is_the_whole_maps_mean() -> None:
    head = GFRHead(CHANNELS, GFRSpec(channels=8, output_window_per_side=None))
    logits = head(make_features(), BOXES, IMAGE_SIZES)
    assert all(torch.all(l != OUTSIDE_WINDOW_LOGIT) for l in logits)
    boxes = [torch.tensor([[0.0, 0.0, 4.0, 4.0]])]
    zero = [torch.zeros(1, 1, 4, 4)]
    assert head.loss(zero, boxes, [torch.zeros(1, 8, 8, dtype=torch.uint8)]).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("setting, message", [
    ({"output_window_per_side": -0.5}, "network.mask.output_window_per_side -0.5: must be at least 0"),
    ({"channels": 0}, "network.mask.channels 0: must be at least 1"),
])
def test_a_head_spec_refuses_values_no_head_can_build(setting: dict, message: str) -> None:
    from cgc.errors import InputError

    with pytest.raises(InputError, match=message):
        GFRSpec(**setting)


def test_the_head_option_offers_exactly_the_registered_heads() -> None:
    """The mask-head option's choices are declared before the specs exist: they must stay the registry's names."""
    from cgc.network_settings import MASK_HEADS

    assert tuple(MASK_HEAD_SPECS) == MASK_HEADS == tuple(MASK_HEAD_CLASSES)
    assert GFRSpec.__dataclass_fields__["name"].metadata["choices"] == MASK_HEADS
