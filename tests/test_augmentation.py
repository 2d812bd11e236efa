"""Training augmentation: the seeded colour jitter of the data, and the scale jitter of the model's transform."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from cgc.model.transform import ScaleJitterTransform
from cgc.training.data import WeakLabelDataset, batch_requests, jittered_colours
from cgc.training.engine import train
from helpers import short_run, tiny_config


def test_colour_jitter_is_drawn_per_slot_and_leaves_the_flips_as_they_were() -> None:
    plain = [request for iteration in range(6) for request in batch_requests(5, 3, iteration, 2, 0.5)]
    jittered = [request for iteration in range(6) for request in batch_requests(5, 3, iteration, 2, 0.5, 0.4)]
    assert [(r.index, r.flip, r.slot) for r in plain] == [(r.index, r.flip, r.slot) for r in jittered]
    assert all(r.colour is None for r in plain)
    colours = [r.colour for r in jittered]
    assert len(set(colours)) == len(colours)  # one draw per slot
    for brightness, contrast, saturation, hue in colours:
        assert all(0.6 <= factor <= 1.4 for factor in (brightness, contrast, saturation)) and abs(hue) <= 0.1
    assert colours == [r.colour for iteration in range(6) for r in batch_requests(5, 3, iteration, 2, 0.5, 0.4)]
    assert colours != [r.colour for iteration in range(6) for r in batch_requests(5, 4, iteration, 2, 0.5, 0.4)]


def test_the_dataset_changes_the_colours_and_not_the_labels(tiny_labels: tuple[Path, Path]) -> None:
    dataset = WeakLabelDataset(*tiny_labels)
    plain_image, plain_target = dataset[batch_requests(len(dataset), 0, 0, 1, 0.0)[0]]
    request = batch_requests(len(dataset), 0, 0, 1, 0.0, 0.5)[0]
    image, target = dataset[request]
    assert image.shape == plain_image.shape and 0 <= image.min() and image.max() <= 1
    assert (image - plain_image).abs().mean() > 0.01
    assert torch.allclose(image, jittered_colours(plain_image, request.colour))
    for key in ("boxes", "masks", "annotation_ids", "slot", "flipped"):
        assert torch.equal(target[key], plain_target[key]), key


def test_unit_factors_leave_a_picture_as_it_is() -> None:
    picture = torch.rand(3, 20, 30)
    assert torch.allclose(jittered_colours(picture, (1.0, 1.0, 1.0, 0.0)), picture, atol=1e-5)
    darker = jittered_colours(picture, (0.5, 1.0, 1.0, 0.0))
    assert torch.allclose(darker, picture * 0.5, atol=1e-6)


def sizes_seen(transform: ScaleJitterTransform, draws: int, shape: tuple[int, int] = (480, 854)) -> set[tuple[int, int]]:
    picture = torch.rand(3, *shape)
    target = {"boxes": torch.tensor([[10.0, 20.0, 400.0, 300.0]]), "masks": torch.zeros(1, *shape, dtype=torch.uint8)}
    sizes = set()
    for _ in range(draws):
        batch, targets = transform([picture], [dict(target)] if transform.training else None)
        sizes.add(tuple(batch.image_sizes[0]))
    return sizes


def test_scale_jitter_resizes_training_pictures_within_its_range_and_eval_pictures_as_before() -> None:
    torch.manual_seed(0)
    jitter = ScaleJitterTransform(240, 320, [0.5] * 3, [0.25] * 3, scale_jitter=0.25).train()
    sizes = sizes_seen(jitter, 20)
    assert len(sizes) > 5 and max(width for _, width in sizes) > 340 and min(width for _, width in sizes) < 300
    assert all(180 * 0.75 - 1 <= height <= 180 * 1.25 + 1 and 320 * 0.75 - 1 <= width <= 320 * 1.25 + 1
               for height, width in sizes)  # a 16:9 picture: the longer side binds, and it is jittered too
    assert jitter.min_size == (240,) and jitter.max_size == 320  # the limits themselves never change
    fixed = sizes_seen(GeneralizedRCNNTransform(240, 320, [0.5] * 3, [0.25] * 3).train(), 2)
    assert len(fixed) == 1 and sizes_seen(jitter.eval(), 3) == fixed
    assert sizes_seen(ScaleJitterTransform(240, 320, [0.5] * 3, [0.25] * 3).train(), 5) == fixed


def test_scale_jitter_resizes_the_boxes_and_masks_with_their_picture() -> None:
    torch.manual_seed(3)
    jitter = ScaleJitterTransform(240, 320, [0.5] * 3, [0.25] * 3, scale_jitter=0.3).train()
    masks = torch.zeros(1, 90, 160, dtype=torch.uint8)
    masks[0, 30:60, 40:120] = 1
    target = {"boxes": torch.tensor([[40.0, 30.0, 120.0, 60.0]]), "labels": torch.ones(1, dtype=torch.int64),
              "masks": masks}
    batch, (resized,) = jitter([torch.rand(3, 90, 160)], [target])
    height, width = batch.image_sizes[0]
    assert (height, width) != (180, 320)  # jittered
    assert torch.allclose(resized["boxes"], torch.tensor([[40.0, 30.0, 120.0, 60.0]]) * torch.tensor(
        [width / 160, height / 90] * 2))
    rows, columns = resized["masks"][0].nonzero(as_tuple=True)
    assert abs(columns.min().item() - 40 * width / 160) <= 1 and abs(rows.max().item() + 1 - 60 * height / 90) <= 1


def test_scale_jitter_draws_the_same_sizes_under_the_same_seed() -> None:
    jitter = ScaleJitterTransform(240, 320, [0.5] * 3, [0.25] * 3, scale_jitter=0.3).train()
    draws = []
    for _ in range(2):
        torch.manual_seed(7)
        draws.append([tuple(jitter([torch.rand(3, 100, 150)])[0].image_sizes[0]) for _ in range(4)])
    assert draws[0] == draws[1]


def test_the_settings_reach_the_model_and_the_loader(tiny_labels: tuple[Path, Path], tmp_path: Path) -> None:
    from cgc.model.factory import model_from_config

    config = tiny_config(tiny_labels, tmp_path / "run", **short_run(2, data={"colour_jitter": 0.3},
                                                                    network={"scale_jitter": 0.2}))
    assert model_from_config(config, load_backbone_weights=False).transform.scale_jitter == 0.2
    with pytest.raises(Exception, match="colour_jitter"):
        tiny_config(tiny_labels, tmp_path / "bad", data={"colour_jitter": 1.5})


@pytest.mark.slow
def test_a_run_with_both_jitters_resumes_with_the_same_losses(tiny_labels: tuple[Path, Path], tmp_path: Path) -> None:
    from test_train import logged_losses

    augment = {"data": {"colour_jitter": 0.4}, "network": {"scale_jitter": 0.3}}
    straight = tiny_config(tiny_labels, tmp_path / "straight", **short_run(4, 2, **augment))
    train(straight, progress=False)
    halted = straight.changed(run={"out": str(tmp_path / "halted")}, solver={"iterations": 2})
    train(halted, progress=False)
    train(halted.changed(solver={"iterations": 4}), resume=True, progress=False)
    expected, resumed = logged_losses(tmp_path / "straight"), logged_losses(tmp_path / "halted")
    for iteration in (3, 4):
        assert resumed[iteration] == pytest.approx(expected[iteration], rel=1e-5, abs=1e-6)
    plain = tiny_config(tiny_labels, tmp_path / "plain", **short_run(4, 2))
    train(plain, progress=False)
    assert logged_losses(tmp_path / "plain")[1] != pytest.approx(expected[1], rel=1e-6)
