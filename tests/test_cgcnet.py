"""The whole network on tiny synthetic images: losses, learning, inference outputs, determinism."""

from __future__ import annotations

import pytest
import torch

from cgc.errors import InputError
from cgc.model import NETWORK, CGCNet, CGCRoIHeads, GFRHead, build_cgcnet, changed

LOSS_KEYS = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}


def tiny_cgcnet(mask_head: str = "gfr", **changes) -> CGCNet:
    """A CPU-sized CGCNet: random MobileNetV2, images kept near 96 x 128, narrow mask head; ``changes`` as
    ``cgc.model.changed`` takes them (a section by a dict)."""
    spec = changed(NETWORK, backbone="mobilenet_v2", backbone_weights=None, trainable_backbone_layers=5, min_size=96,
                   max_size=128,
                   rpn={"anchor_sizes": (16, 32, 64, 128, 256), "pre_nms_top_n_train": 300, "post_nms_top_n_train": 100,
                        "pre_nms_top_n_test": 200, "post_nms_top_n_test": 50},
                   box={"batch_size_per_image": 64}, mask={"name": mask_head, "channels": 32, "proposals_per_image": 8})
    return build_cgcnet(changed(spec, **changes))


def synthetic_image(height: int, width: int, boxes: list[tuple[int, int, int, int]]) -> tuple[torch.Tensor, dict]:
    """Dark noisy background with one bright ellipse per box; masks are the ellipses."""
    generator = torch.Generator().manual_seed(height * 1000 + width + len(boxes))
    image = 0.2 * torch.rand(3, height, width, generator=generator)
    masks = torch.zeros(len(boxes), height, width, dtype=torch.uint8)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
        inside = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1
        masks[i][inside] = 1
        image[:, inside] = torch.tensor([0.9, 0.5 + 0.1 * i, 0.2])[:, None]
    target = {
        "boxes": torch.tensor(boxes, dtype=torch.float32),
        "labels": torch.ones(len(boxes), dtype=torch.int64),
        "masks": masks,
    }
    return image, target


def batch_of_two() -> tuple[list[torch.Tensor], list[dict]]:
    a = synthetic_image(96, 128, [(8, 10, 50, 70), (60, 20, 120, 90), (30, 60, 70, 94)])
    b = synthetic_image(100, 120, [(20, 15, 90, 85)])
    return [a[0], b[0]], [a[1], b[1]]


@pytest.mark.parametrize("mask_head", ["gfr", "roialign"])
def test_training_mode_returns_finite_losses_for_a_batch_of_two(mask_head: str) -> None:
    torch.manual_seed(0)
    model = tiny_cgcnet(mask_head)
    model.train()
    images, targets = batch_of_two()
    losses = model(images, targets)
    assert set(losses) == LOSS_KEYS
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())
    sum(losses.values()).backward()
    mask_head_module = model.roi_heads.mask_head
    assert all(p.grad is not None for p in mask_head_module.parameters())
    assert model.backbone.fpn.inner_blocks[0][0].weight.grad is not None


@pytest.mark.parametrize("mask_head", ["gfr", "lfr", "roimasking", "roialign"])
def test_a_batch_without_instances_still_gives_every_trainable_parameter_a_gradient(mask_head: str) -> None:
    """What lets DDP run without find_unused_parameters: no parameter is left out of a step's graph."""
    torch.manual_seed(0)
    model = tiny_cgcnet(mask_head)
    model.train()
    image, target = synthetic_image(96, 128, [])
    target["boxes"] = torch.zeros((0, 4))
    losses = model([image, image.flip(-1)], [target, dict(target)])
    sum(losses.values()).backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []


def test_a_few_sgd_steps_lower_the_loss_on_one_image() -> None:
    torch.manual_seed(0)
    model = tiny_cgcnet("gfr")
    model.train()
    image, target = synthetic_image(96, 128, [(16, 16, 64, 80), (72, 24, 120, 72)])
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)

    def losses() -> dict[str, torch.Tensor]:
        torch.manual_seed(123)  # the same proposal sampling every time the loss is measured
        return model([image], [target])

    with torch.no_grad():
        before = losses()
    for _ in range(6):
        optimizer.zero_grad()
        sum(losses().values()).backward()
        optimizer.step()
    with torch.no_grad():
        after = losses()
    assert sum(after.values()) < sum(before.values())
    assert after["loss_mask"] < before["loss_mask"]


@pytest.mark.parametrize("mask_head", ["gfr", "roialign"])
def test_eval_mode_returns_detections_with_masks_at_the_original_size(mask_head: str) -> None:
    torch.manual_seed(0)
    model = tiny_cgcnet(mask_head, box={"score_thresh": 0.0, "detections_per_image": 20})
    model.eval()
    images, _ = batch_of_two()
    images = [images[0], torch.nn.functional.interpolate(images[1][None], size=(150, 180))[0]]
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2
    for detection, image in zip(detections, images):
        assert set(detection) == {"boxes", "scores", "labels", "masks"}
        n = detection["boxes"].shape[0]
        assert 0 < n <= 20
        assert detection["scores"].shape == (n,) and (detection["labels"] == 1).all()
        dense = detection["masks"].dense()
        assert len(detection["masks"]) == n and detection["masks"].image_size == tuple(image.shape[-2:])
        assert dense.shape == (n, 1, *image.shape[-2:]) and 0 <= dense.min() and dense.max() <= 1
        height, width = image.shape[-2:]
        assert (detection["boxes"][:, 2] <= width).all() and (detection["boxes"][:, 3] <= height).all()


def test_construction_is_deterministic_under_a_seed() -> None:
    torch.manual_seed(5)
    first = tiny_cgcnet("lfr").state_dict()
    torch.manual_seed(5)
    second = tiny_cgcnet("lfr").state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_builder_wires_the_papers_settings() -> None:
    model = build_cgcnet(changed(NETWORK, backbone="mobilenet_v2", backbone_weights=None, mask={"channels": 16}))
    heads = model.roi_heads
    assert isinstance(heads, CGCRoIHeads) and isinstance(heads.mask_head, GFRHead)
    assert heads.mask_head.featmap_name == "0"
    assert heads.detections_per_img == 80 and heads.nms_thresh == 0.5  # final NMS; the RPN keeps 0.7
    assert model.rpn.nms_thresh == 0.7 and model.mask_suppression.spec.method == "greedy"
    assert heads.box_predictor.cls_score.out_features == 2  # background, salient
    assert heads.box_head.fc7.out_features == 1024
    assert model.rpn.proposal_matcher.high_threshold == 0.7 and model.rpn.proposal_matcher.low_threshold == 0.3
    assert model.transform.min_size == (800,) and model.transform.max_size == 1333
    assert not any(p.requires_grad for p in model.backbone.body.parameters())  # the paper's frozen body


def test_mask_samples_are_capped_by_a_seedable_random_subset() -> None:
    heads = tiny_cgcnet("gfr", mask={"proposals_per_image": 4}).roi_heads
    proposals = [torch.arange(40, dtype=torch.float32)[:, None].repeat(1, 4) + torch.tensor([0.0, 0.0, 5.0, 5.0])]
    labels = [torch.tensor([1] * 10 + [0] * 30)]
    matched = [torch.zeros(40, dtype=torch.int64)]
    targets = [{"masks": torch.ones(1, 8, 8, dtype=torch.uint8)}]
    torch.manual_seed(3)
    boxes_a, masks_a = heads.select_mask_samples(proposals, matched, labels, targets)
    torch.manual_seed(3)
    boxes_b, _ = heads.select_mask_samples(proposals, matched, labels, targets)
    assert boxes_a[0].shape == (4, 4) and masks_a[0].shape == (4, 8, 8)
    assert torch.equal(boxes_a[0], boxes_b[0])
    assert (boxes_a[0][:, 0] < 10).all()  # only positives


def test_fpn_width_and_test_proposals_are_settings() -> None:
    torch.manual_seed(0)
    model = tiny_cgcnet("gfr", fpn_channels=64, rpn={"post_nms_top_n_test": 20}).eval()
    assert model.backbone.out_channels == 64
    assert model.rpn.post_nms_top_n() == 20
    images, _ = batch_of_two()
    with torch.no_grad():
        detections = model(images)
    assert all(len(d["masks"]) <= 20 for d in detections)


def test_the_builder_and_train_config_share_every_network_default() -> None:
    """`build_cgcnet()` and `cgc train` without options build the same network: one source for each default."""
    from cgc.config import TrainConfig

    assert TrainConfig().network == NETWORK


def test_a_changed_section_keeps_its_other_settings_and_a_typo_is_refused() -> None:
    spec = changed(NETWORK, mask={"name": "lfr", "channels": 16}, rpn={"nms_thresh": 0.6})
    assert spec.mask.name == "lfr" and spec.mask.channels == 16 and spec.mask.window_per_side == 0.1
    assert spec.mask.output_window_per_side == NETWORK.mask.output_window_per_side
    assert spec.rpn.nms_thresh == 0.6 and spec.rpn.anchor_sizes == NETWORK.rpn.anchor_sizes
    assert changed(spec, mask={"name": "roialign"}).mask.channels == 16  # what the heads share goes along
    with pytest.raises(InputError, match="chanels"):
        changed(NETWORK, mask={"chanels": 16})


@pytest.mark.parametrize("mask_head", ["gfr", "lfr", "roimasking", "roialign"])
def test_mixed_precision_training_step_and_inference(mask_head: str) -> None:
    """The mixed-precision path the trainer takes on a GPU, run here with CPU autocast (bfloat16)."""
    torch.manual_seed(0)
    model = tiny_cgcnet(mask_head)
    model.train()
    images, targets = batch_of_two()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        losses = model(images, targets)
    assert set(losses) == LOSS_KEYS and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        detections = model(images)
    for detection, image in zip(detections, images):
        dense = detection["masks"].dense()
        assert dense.dtype == torch.float32 and detection["boxes"].dtype == torch.float32
        assert dense.shape[-2:] == image.shape[-2:]
        assert torch.isfinite(dense).all()
