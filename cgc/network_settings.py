"""The names of the network's interchangeable parts, and its defaults, torch-free.

The command line offers them without loading torch; the model package and TrainConfig both take
their defaults from here, so that `build_cgcnet()` and `cgc train` build the same network.
"""

from dataclasses import dataclass

BACKBONES = ("resnet50", "resnet101", "resnext101_32x8d", "vgg16", "mobilenet_v2")
MASK_HEADS = ("gfr", "lfr", "roialign", "roimasking")
MASK_SUPPRESSION_METHODS = ("greedy", "matrix", "overlap", "none")
MASK_RESCORE_METHODS = ("none", "maskness")
MASK_THRESHOLD = 0.5  # the mask probability at which a mask claims a pixel (suppression, rescoring, predictions)

MASK_OTHERS = ("proposals", "labelled")
MASK_OUTPUT_STRIDES = (2, 1)  # 1: a second learned 2x upsampling (measured worse; docs/method/mask-heads.md)
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
class NetworkDefaults:
    """The settings `cgc train` exposes, at the paper's values (Mask R-CNN's where the paper is silent)."""

    backbone: str = "resnet101"
    mask_head: str = "gfr"
    mask_head_channels: int = 256
    mask_output_stride: int = 2  # whole-image heads: image pixels per logit (the paper's one stride-2 deconvolution)
    mask_box_coords: bool = False  # whole-image heads: the proposal's box coordinates as three more FCN inputs
    mask_dilation: int = 1  # whole-image heads: dilation of the FCN's four 3x3 convolutions
    mask_proposals_per_image: int = 16  # positive proposals per image trained by the mask head
    mask_others: str = "proposals"
    box_batch_size_per_image: int = 512
    box_nms_thresh: float = 0.5  # the final detection NMS (torchvision's; the paper's 0.7 is the RPN's)
    mask_suppression: str = "greedy"
    mask_suppression_iou: float = 0.3  # best of greedy mask NMS's thresholds (docs/method/evaluation.md)
    mask_rescore: str = "maskness"  # each score times its mask's mean probability, before suppression (docs/method/evaluation.md)
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)  # one per FPN level (strides 4-64), for inputs of min_size
    rpn_batch_size_per_image: int = 256
    rpn_test_proposals: int = 1000
    min_size: int = 800
    max_size: int = 1333


NETWORK = NetworkDefaults()
