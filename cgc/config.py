"""A training run's settings, section by section, saved beside every run (config.json).

`TrainConfig` holds five sections: `data` (the weak labels, their pictures, augmentation),
`network` (the `NetworkSpec` that `build_cgcnet` takes whole), `solver` (SGD and its schedule),
`run` (where and how it runs) and `label_update` (Algorithm 1, its CRF and guards). Each default
is stated once, in its section's dataclass. A setting is named by its path (`solver.lr`,
`network.mask.channels`): `cgc train --set PATH=VALUE`, a settings file and the presets use the
paths; the options of `cgc train` are the data, run and solver settings users change most.

Defaults are what cgc recommends: the paper's network and schedule (IV.A), with the departures
measured to help. Presets are files beside this module (`presets/NAME.json`): `default` (no
change), `cpu` (a small network, 1500 iterations in about 40 minutes on two cores) and `paper` (every
setting the paper states, each with its source). Options given explicitly win over a preset.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cgc.devices import DEVICES
from cgc.errors import InputError
from cgc.network_settings import MASK_HEAD_SPECS, GFRSpec, NetworkSpec
from cgc.refine.crf import CRFParams
from cgc.refine.update_guards import UpdateGuards
from cgc.refine.update_rule import DEFAULT_PHI, DEFAULT_SIGMA
from cgc.settings import check_settings, flattened, merged, nested, option, with_settings



@dataclass(frozen=True)
class DataSettings:
    """What the network learns from: the weak labels, their pictures, and how they are augmented."""

    annotations: str = ""  # COCO weak labels (annotations.json from `cgc weaklabels build`): --data
    images: str = ""  # folder of the pictures: --images
    hflip: float = option(0.5, "Horizontal flip probability.", minimum=0, maximum=1, advanced=True)
    colour_jitter: float = option(
        0.0, "Colour augmentation s: brightness, contrast and saturation scaled by factors drawn from [1 - s, 1 + s], "
        "hue shifted by up to s / 4; 0 turns it off.", minimum=0, maximum=0.9, advanced=True)


@dataclass(frozen=True)
class SolverSettings:
    """SGD and its schedule; the paper's (IV.A): lr 0.0025, momentum 0.9, weight decay 1e-4, batch 4, 16k
    iterations, lr divided by 10 at 8k."""

    lr: float = option(0.0025, "SGD learning rate.", minimum=0, above_minimum=True)
    momentum: float = option(0.9, "SGD momentum.", minimum=0, maximum=1, advanced=True)
    weight_decay: float = option(1e-4, "SGD weight decay.", minimum=0, advanced=True)
    batch_size: int = option(4, "Images per iteration, all processes together.", minimum=1)
    iterations: int = option(16000, "Training iterations.", minimum=1)
    lr_steps: tuple[int, ...] = option((8000,), "Comma-separated iterations where lr is divided by 10.")
    lr_gamma: float = 0.1
    warmup_iterations: int = option(0, "Linear lr warm-up.", minimum=0, advanced=True)


@dataclass(frozen=True)
class RunSettings:
    """Where the run goes and how it runs."""

    out: str = ""  # run folder: checkpoints, config.json, metrics.csv, tensorboard/
    init_from: str | None = None  # fine-tuning: the checkpoint whose weights the run starts from
    seed: int = option(0, "Seed of every random draw.")
    device: str = option("auto", "Where to train; auto: cuda if present.", choices=DEVICES)
    amp: bool = option(True, "Mixed precision, used on CUDA only.", advanced=True)
    checkpoint_every: int = option(1000, "Iterations between checkpoints.", minimum=1, advanced=True)
    keep_checkpoints: int = 3
    loader_workers: int = option(2, "Data-loading processes.", minimum=0)


def tuned_crf(path: str | Path) -> dict[str, Any]:
    """The best setting of a `cgc crf tune` file as the CRF section's values (`--set label_update.crf=FILE`)."""
    from cgc.refine.tune import read_tuned_params

    return asdict(read_tuned_params(Path(path), CRFParams()))


@dataclass(frozen=True)
class LabelUpdateSettings:
    """The label update (Algorithm 1, eq. 9; cgc/training/label_update.py), off unless ``every`` > 0."""

    every: int = option(
        0, "Label update (Algorithm 1): write a round of CRF-refined labels to RUN/labels/ every this many iterations "
        "and train on it; 0 turns the scheme off.", minimum=0, flag="update-every")
    start: int | None = option(
        None, "First iteration whose predictions may update labels, and from which L_upd is added.", minimum=0,
        default_text="a quarter of the iterations", advanced=True)  # settled() fixes it, so that --resume keeps it
    phi: float = option(
        DEFAULT_PHI, "Keep a label when K2 - K1 >= phi, else replace it by the CRF's map (Table III).", minimum=0,
        advanced=True)
    sigma: float = DEFAULT_SIGMA  # the "regularization constant" in K1 / K2 (eqs. 5-6)
    # 0, not the paper's 1: at lambda = 1 the mask head stops predicting once L_upd starts (docs/method/crf.md), since
    # its gradient cancels the BCE's on every labelled pixel
    weight: float = option(
        0.0, "lambda in L = L_bb + L_seg + lambda * L_upd (the paper: 1, which stops the mask head: docs/method/crf.md); "
        "0: the label rounds without L_upd.", minimum=0, experimental=True)
    crf: CRFParams = field(default_factory=CRFParams, metadata={"advanced": True, "from_file": tuned_crf})
    guards: UpdateGuards = field(default_factory=UpdateGuards)  # on Algorithm 1's replacements; off: as written
    crf_workers: int = option(1, "CRF worker processes for the label update (0: in the training process).", minimum=0,
                              advanced=True)

    @property
    def on(self) -> bool:
        return self.every > 0


@dataclass(frozen=True)
class TrainConfig:
    """A training run's settings, section by section; the network section is what `build_cgcnet` takes."""

    data: DataSettings = field(default_factory=DataSettings)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    solver: SolverSettings = field(default_factory=SolverSettings)
    run: RunSettings = field(default_factory=RunSettings)
    label_update: LabelUpdateSettings = field(default_factory=LabelUpdateSettings)

    def __post_init__(self) -> None:
        check_settings(self)  # config.json and the Python API too, not only the options: no NaN, no wrong kind

    @property
    def update_start_iteration(self) -> int:
        start = self.label_update.start
        return self.solver.iterations // 4 if start is None else start

    def changed(self, **sections: dict[str, Any]) -> TrainConfig:
        """These settings with some changed, a dict per section (``solver={"iterations": 4}``); the rest kept."""
        return with_settings(self, sections)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


PRESET_FOLDER = Path(__file__).with_name("presets")
DEFAULT_PRESET = "default"


@dataclass(frozen=True)
class Preset:
    """A preset file (`presets/NAME.json`): settings over TrainConfig's defaults, section by section, what it is for,
    and, for each setting by its path, why it has that value (`sources` in the paper's preset: where the paper states
    it)."""

    name: str
    summary: str  # one line, for --help
    description: str
    settings: dict[str, Any]  # nested: {"solver": {"lr": 0.005}, "network": {"mask": {"name": "roialign"}}}
    notes: dict[str, str]  # by dotted path: {"solver.lr": "..."}


def read_settings_file(path: str | Path, what: str) -> dict[str, Any]:
    """A settings file as the presets are written, {"settings": {SECTION: {NAME: VALUE}}} and any notes beside it: the
    whole file, its settings checked to name TrainConfig settings. A file of the earlier flat form ({NAME: VALUE} with
    the old names: lr, mask_head...) is read as its sections."""
    from cgc.fileio import read_json

    values = read_json(path, what)
    if not isinstance(values, dict) or not isinstance(values.get("settings"), dict):
        raise InputError('expected {"settings": {SECTION: {NAME: VALUE, ...}}}, as the presets are written', path)
    settings = values["settings"]
    if settings and not any(isinstance(value, dict) for value in settings.values()):
        settings = sections_of_flat(settings, path)
    settings = nested({key: tuple(value) if isinstance(value, list) else value
                       for key, value in flattened(settings).items()})
    try:
        with_settings(TrainConfig(), settings)
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


def resolve_config(preset: str = DEFAULT_PRESET, **sections: dict[str, Any]) -> TrainConfig:
    """TrainConfig's defaults, then the preset's settings, then ``sections``: each a dict of one section's settings
    (``solver={"iterations": 300}, network={"mask": {"name": "gfr"}}``), changing only the settings it names."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return settled(with_settings(TrainConfig(), merged(PRESETS[preset].settings, sections)))


def fine_tuning_config(trained: TrainConfig, checkpoint: str | Path, **sections: dict[str, Any]) -> TrainConfig:
    """A trained run's settings for fine-tuning its weights (`checkpoint`) on new data, ``sections`` on top.

    Its label update starts off: its label rounds and update schedule belong to its own data.
    """
    fresh = {"label_update": {"every": 0, "start": None}, "run": {"init_from": str(checkpoint)}}
    config = replace(trained, label_update=replace(trained.label_update, crf=CRFParams()))
    return settled(with_settings(config, merged(fresh, sections)))


def settled(config: TrainConfig) -> TrainConfig:
    """The configuration as it is saved: label_update.start fixed (so that --resume with more iterations keeps it),
    and checked."""
    if config.label_update.start is None:
        config = replace(config, label_update=replace(config.label_update, start=config.update_start_iteration))
    return check_config(config)


def check_config(config: TrainConfig) -> TrainConfig:
    """Settings that cannot work together, as an InputError naming the setting (each setting's own kind and range
    are checked when the config is made: `check_settings`; each network section checks its own values)."""
    update = config.label_update
    if update.crf != CRFParams() and not update.on:
        raise InputError("label_update.crf sets the label update's CRF: it needs --update-every")
    if update.on and config.network.mask.name == "roialign":
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


def config_from_values(values: dict[str, Any], source: str | Path) -> TrainConfig:
    """A saved configuration (config.json, or the copy inside a checkpoint), section by section; keys of other
    versions are ignored, and a file of the earlier flat form is read as its sections."""
    if not isinstance(values, dict):
        raise InputError("not a cgc run configuration (expected an object of settings)", source)
    try:
        if "network" not in values:
            # non-strict: the flat form recorded every whole-image setting whatever the head (GFR's `others` for
            # RoIMasking too), and a setting the run's head does not have changed nothing in it
            values = sections_of_flat(values, source, saved_run=True)
        return with_settings(TrainConfig(), without_removed(values, source), strict=False)
    except InputError as exc:
        raise InputError(str(exc), source) from None


# The flat settings of run folders and settings files written before the sections (December 2026), by their paths.
FLAT_NAMES = {
    "data": "data.annotations", "images": "data.images", "hflip": "data.hflip",
    "backbone": "network.backbone", "backbone_weights": "network.backbone_weights",
    "trainable_backbone_layers": "network.trainable_backbone_layers", "fpn_channels": "network.fpn_channels",
    "min_size": "network.min_size", "max_size": "network.max_size",
    "mask_head": "network.mask.name", "mask_head_channels": "network.mask.channels",
    "mask_proposals_per_image": "network.mask.proposals_per_image", "mask_window": "network.mask.output_window_per_side",
    "mask_output_stride": "network.mask.output_stride", "mask_box_coords": "network.mask.box_coords",
    "mask_dilation": "network.mask.dilation", "mask_others": "network.mask.others",
    "box_batch_size_per_image": "network.box.batch_size_per_image", "box_nms_thresh": "network.box.nms_thresh",
    "mask_suppression": "network.suppression.method", "mask_suppression_iou": "network.suppression.iou_threshold",
    "mask_rescore": "network.suppression.rescore", "rpn_batch_size_per_image": "network.rpn.batch_size_per_image",
    "rpn_test_proposals": "network.rpn.post_nms_top_n_test", "anchor_sizes": "network.rpn.anchor_sizes",
    **{name: f"solver.{name}" for name in ("lr", "momentum", "weight_decay", "batch_size", "iterations", "lr_steps",
                                           "lr_gamma", "warmup_iterations")},
    **{name: f"run.{name}" for name in ("out", "init_from", "seed", "device", "amp", "checkpoint_every",
                                        "keep_checkpoints", "loader_workers")},
    "update_every": "label_update.every", "update_start": "label_update.start", "update_phi": "label_update.phi",
    "update_sigma": "label_update.sigma", "update_weight": "label_update.weight", "update_crf": "label_update.crf",
    "crf_workers": "label_update.crf_workers", "update_region_margin": "label_update.guards.region_margin",
    "update_box_margin": "label_update.guards.box_margin", "update_min_iou": "label_update.guards.min_iou",
    "update_min_confidence": "label_update.guards.min_confidence",
    "update_blend": "label_update.guards.blend_confidence", "update_shared_only": "label_update.guards.shared_only",
}
# Settings cgc no longer has, measured not to help (docs/method/mask-heads.md, crf.md), each with the value at which it
# changed nothing: a saved run that kept that value loads as it always did, and one that changed it is refused
# rather than rebuilt as another network.
REMOVED = {"network.mask.output_stride": 2, "network.mask.box_coords": False, "network.mask.dilation": 1,
           "network.mask.others": "proposals", "label_update.guards.region_margin": None,
           "label_update.guards.box_margin": None, "label_update.guards.min_iou": 0.0,
           "label_update.guards.min_confidence": 0.0, "label_update.guards.blend_confidence": None}
GFR_ONLY = ("network.mask.others",)  # read by GFR and its local variant (LFR) only: other heads ignored its value


def without_removed(sections: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """A saved run's sections without the removed settings; refused if it changed one of them."""
    flat = flattened(sections)
    head = MASK_HEAD_SPECS.get(flat.get("network.mask.name", type(NetworkSpec().mask).name))
    if head is None or not issubclass(head, GFRSpec):
        flat = {path: value for path, value in flat.items() if path not in GFR_ONLY}
    for path, harmless in REMOVED.items():
        if path in flat and flat[path] != harmless:
            raise InputError(f"the run was trained with {path}={flat[path]}, a setting this version of cgc no longer "
                             f"has (measured not to help); only {harmless} can be loaded", source)
    return nested({path: value for path, value in flat.items() if path not in REMOVED})


# What runs saved before a setting existed did instead: their scores (and the threshold calibrated on them) stay theirs.
BEFORE_RECORDED = {"mask_rescore": "none"}
WHOLE_IMAGE_ONLY = ("mask_window", "mask_output_stride", "mask_box_coords", "mask_dilation", "mask_others")


def sections_of_flat(values: dict[str, Any], source: str | Path, saved_run: bool = False) -> dict[str, Any]:
    """Settings of the flat form (one name per setting, before the sections) as sections. A saved run's file
    (``saved_run``) may hold names of other versions, which are ignored, and settings it predates take their
    earlier behaviour (``BEFORE_RECORDED``); a settings file's unknown names are refused."""
    unknown = sorted(set(values) - set(FLAT_NAMES))
    if unknown and not saved_run:
        raise InputError(f"unknown training settings: {', '.join(unknown)}", source)
    values = BEFORE_RECORDED | values if saved_run else values
    if values.get("mask_head") == "roialign":  # the flat form recorded the whole-image heads' settings for every head
        values = {key: value for key, value in values.items() if key not in WHOLE_IMAGE_ONLY}
    if values.get("update_crf") is None:
        values = {key: value for key, value in values.items() if key != "update_crf"}
    return nested({FLAT_NAMES[key]: value for key, value in values.items() if key in FLAT_NAMES})


PRESETS = read_presets()
CPU_PRESET = flattened(PRESETS["cpu"].settings)  # the option help shows where it changes a default
