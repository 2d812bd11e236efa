"""Mask heads for CGCNet's salient-instance-segmentation branch (paper III.D, Table II).

All four share one small interface so ``CGCRoIHeads`` can take any of them:

- ``forward(features, boxes, image_sizes) -> list[Tensor]``: mask logits for the boxes of each
  image (boxes in the coordinates of the resized, batched image; ``image_sizes`` its (h, w)).
- ``loss(logits, boxes, gt_masks) -> Tensor``: per-pixel binary cross-entropy (eq. 8) against each
  box's matched ground-truth (weak) mask, given as (n, h, w) at the resized image size.
- ``to_box_masks(logits, boxes, image_size, original_size) -> BoxMasks``: the probabilities in
  the original image, each held on its grid over the window where it can be salient
  (``boxes`` already in original coordinates; see ``cgc.model.box_masks``).

``GFRHead`` (the paper's), ``LFRHead`` and ``RoIMaskingHead`` predict a whole-image mask per
proposal from one whole-image FPN level; they differ only in how that feature map is prepared for
proposal i (``refine``). ``RoIAlignHead`` is Mask R-CNN's 28x28-per-box head.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import expand_boxes, expand_masks, project_masks_on_boxes
from torchvision.ops import MultiScaleRoIAlign

from cgc.errors import InputError
from cgc.model.box_masks import BoxMasks
from cgc.network_settings import (FPN_CHANNELS, MASK_HEADS, NETWORK, GFRSpec, LFRSpec, MaskHeadSpec,
                                  RoIAlignSpec, RoIMaskingSpec, WholeImageHeadSpec)


# --------------------------------------------------------------------------- box geometry


def enlarge_boxes(boxes: Tensor, per_side: float) -> Tensor:
    """Grow (x1, y1, x2, y2) boxes by ``per_side`` times their width/height on every side."""
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    delta = torch.stack([-widths, -heights, widths, heights], dim=1) * per_side
    return boxes + delta


def box_cells(boxes: Tensor, stride: float, height: int, width: int) -> Tensor:
    """(n, height, width) bool: the feature cells (of size ``stride`` pixels) each box overlaps.

    A box covers every cell it overlaps at all, so even a box smaller than a cell keeps one; parts
    outside the map are dropped (that is the clamping at image borders).
    """
    x1, y1, x2, y2 = (boxes / stride).unbind(dim=1)
    x2 = torch.maximum(x2, x1 + 1e-3)  # degenerate boxes still cover the cell they sit in
    y2 = torch.maximum(y2, y1 + 1e-3)
    xs = torch.arange(width, device=boxes.device, dtype=boxes.dtype)
    ys = torch.arange(height, device=boxes.device, dtype=boxes.dtype)
    in_x = (xs[None] < x2[:, None]) & (xs[None] + 1 > x1[:, None])
    in_y = (ys[None] < y2[:, None]) & (ys[None] + 1 > y1[:, None])
    return in_y[:, :, None] & in_x[:, None, :]


def cell_ranges(boxes: Tensor, stride: float, height: int, width: int) -> Tensor:
    """(n, 4) integer x0, y0, x1, y1 (exclusive): the bounding range of ``box_cells`` of each box."""
    x1, y1, x2, y2 = (boxes / stride).unbind(dim=1)
    x2 = torch.maximum(x2, x1 + 1e-3)
    y2 = torch.maximum(y2, y1 + 1e-3)
    # clamped with Python numbers: a limits tensor would be one more host-to-device copy per image
    return torch.stack([x1.floor().clamp(0, width), y1.floor().clamp(0, height),
                        x2.ceil().clamp(0, width), y2.ceil().clamp(0, height)], dim=1).long()


def global_feature_refine(
    feature: Tensor,
    boxes: Tensor,
    stride: float = 1.0,
    index: Tensor | None = None,
    window_per_side: float | None = None,
    fill: Tensor | None = None,
) -> Tensor:
    """Eq. 2, G_i = F - sum_j R_j + R_i, for the proposals ``index`` of ``boxes``: (k, C, H, W).

    ``feature`` is one image's (C, H, W) map; every proposal region is cut out and filled with the
    global average pooled feature of F, then proposal i's own region is pasted back, vectorised
    with box masks. With ``window_per_side`` (the LFR ablation) only the box enlarged by that
    fraction per side is kept and everything outside it is the fill value too. ``fill`` (C,) is
    given when ``feature`` is a crop of F (``crop_to_window``), whose own average is not F's.
    """
    channels, height, width = feature.shape
    if index is None:
        index = torch.arange(boxes.shape[0], device=boxes.device)
    cells = box_cells(boxes, stride, height, width)
    others = cells.any(dim=0)
    keep = cells[index] | ~others[None]
    if window_per_side is not None:
        keep = keep & box_cells(enlarge_boxes(boxes[index], window_per_side), stride, height, width)
    if fill is None:
        fill = feature.mean(dim=(1, 2))
    return torch.where(keep[:, None], feature[None], fill[None, :, None, None])


def crop_to_window(feature: Tensor, boxes: Tensor, stride: float,
                   window: tuple[int, int, int, int] | None) -> tuple[Tensor, Tensor]:
    """The (C, H, W) map cut to the cells ``window`` (x0, y0, x1, y1, exclusive), and ``boxes`` in the pixel
    coordinates of that crop; both unchanged for no window.

    The box cells of the shifted boxes on the crop are those of the boxes on the whole map, so
    a proposal's FCN input can be built over its crop alone, and the backward pass keeps that crop rather than
    a whole map per proposal.
    """
    if window is None:
        return feature, boxes
    x0, y0, x1, y1 = window
    shifted = boxes.clone()  # shifted by Python numbers: no host-to-device copy per proposal
    shifted[:, 0::2] -= x0 * stride
    shifted[:, 1::2] -= y0 * stride
    return feature[:, y0:y1, x0:x1], shifted


def ternary_roi_mask(boxes: Tensor, stride: float, height: int, width: int, ring_per_side: float) -> Tensor:
    """S4Net's ternary RoIMasking mask (n, H, W): +1 inside a box, -1 on a ring around it, 0 elsewhere.

    The ring is the box enlarged by ``ring_per_side`` of its width/height on each side, cut at the
    image border (no wrap-around).
    """
    inside = box_cells(boxes, stride, height, width)
    around = box_cells(enlarge_boxes(boxes, ring_per_side), stride, height, width) & ~inside
    return inside.to(boxes.dtype) - around.to(boxes.dtype)


def _power_of_two_ratio(larger: float, smaller: float) -> float:
    """The power of two closest to larger/smaller (feature strides are powers of two)."""
    return 2.0 ** round(math.log2(larger / smaller))


OUTSIDE_WINDOW_LOGIT = -30.0
"""The logit outside a proposal's window: probability 1e-13, finite in float16 and in log terms."""

RECEPTIVE_RADIUS = 4
"""Cells of context the SIS FCN sees on each side: one per 3x3 convolution (the deconvolution
and the 1x1 predictor add none)."""

LOGIT_CELLS_PER_FEATURE_CELL = 2
"""The predictor's stride-2 deconvolution doubles the feature level's resolution, on each side."""


# --------------------------------------------------------------------------- interface


def class_agnostic_mask_predictor(channels: int) -> MaskRCNNPredictor:
    """torchvision's deconv + 1x1 predictor with one output channel, its 1x1 layer Kaiming fan-in.

    torchvision initialises the 1x1 layer with Kaiming fan-out, std sqrt(2 / fan_out): with 91
    classes that is 0.15, with one class-agnostic channel 1.41, which started the mask loss near 8
    and made the RoIAlign head diverge within 30 iterations at lr 0.005. Fan-in (std sqrt(2 /
    channels)) starts the loss near ln 2. Detectron2's std 0.001 does too, but its tiny weights
    also scale down the gradient reaching the FCN: after 300 CPU-preset iterations the GFR head
    still predicted no pixel above 0.5.
    """
    predictor = MaskRCNNPredictor(channels, channels, 1)
    nn.init.kaiming_normal_(predictor.mask_fcn_logits.weight, mode="fan_in", nonlinearity="relu")
    nn.init.zeros_(predictor.mask_fcn_logits.bias)
    return predictor


class MaskHead(nn.Module):
    """The interface ``CGCRoIHeads`` calls; see the module docstring."""

    def forward(
        self,
        features: dict[str, Tensor],
        boxes: list[Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[Tensor]:
        raise NotImplementedError

    def loss(self, logits: list[Tensor], boxes: list[Tensor], gt_masks: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def to_box_masks(
        self, logits: Tensor, boxes: Tensor, image_size: tuple[int, int], original_size: tuple[int, int]
    ) -> BoxMasks:
        raise NotImplementedError


class WholeImageMaskHead(MaskHead):
    """Whole-image mask per proposal: ``refine`` the feature map for proposal i, then the SIS FCN.

    The SIS head (paper III.D): four conv3x3 (stride 1) + ReLU, then the paper's "dilated
    convolutional layer with stride 2" + ReLU, read here as a stride-2 *transposed* convolution
    (2x upsampling, as in Mask R-CNN's mask head: a strided ordinary convolution would halve a
    resolution the paper wants preserved), then a 1x1 predictor. These are torchvision's
    ``MaskRCNNHeads`` + ``MaskRCNNPredictor`` with one output channel (class-agnostic). On the
    stride-4 level "0" the logits are at stride 2 of the (resized) image.

    The "other proposals" suppressed for proposal i are all boxes of that image; ``chunk_size``
    bounds how many whole-image masks are upsampled at once in ``to_box_masks``.
    ``output_window_per_side`` (None: the whole image) limits each proposal's mask, and its loss,
    to the proposal's box grown by that fraction per side (see ``OUTPUT_WINDOW_PER_SIDE``).
    """

    def __init__(self, in_channels: int = FPN_CHANNELS, spec: WholeImageHeadSpec = GFRSpec()) -> None:
        super().__init__()
        self.featmap_name = spec.featmap_name
        self.chunk_size = spec.chunk_size
        self.output_window_per_side = spec.output_window_per_side
        self.fcn = MaskRCNNHeads(in_channels, (spec.channels,) * 4, dilation=1)
        self.predictor = class_agnostic_mask_predictor(spec.channels)

    def logits(self, refined: Tensor) -> Tensor:
        """The FCN and the predictor: (k, 1, 2h, 2w) (``LOGIT_CELLS_PER_FEATURE_CELL``)."""
        return self.predictor(self.fcn(refined))

    def refine(self, feature: Tensor, boxes: Tensor, stride: float, index: Tensor,
               window: tuple[int, int, int, int] | None = None) -> Tensor:
        """(k, C, H, W) input of the FCN for proposals ``index`` of this image's ``boxes``; with ``window`` (cells
        x0, y0, x1, y1) only that part of it."""
        raise NotImplementedError

    def base_map(self, feature: Tensor, boxes: Tensor, stride: float) -> Tensor:
        """(C, H, W): what ``refine`` gives every proposal outside the region it changes."""
        raise NotImplementedError

    def changed_boxes(self, boxes: Tensor) -> Tensor:
        """Pixel boxes outside which proposal i's refined map equals ``base_map``."""
        raise NotImplementedError

    def output_windows(self, boxes: Tensor, stride: float, height: int, width: int) -> Tensor | None:
        """(n, height, width) bool: the logit cells (``stride`` pixels) each proposal predicts; None: all."""
        if self.output_window_per_side is None:
            return None
        return box_cells(enlarge_boxes(boxes, self.output_window_per_side), stride, height, width)

    def forward(
        self,
        features: dict[str, Tensor],
        boxes: list[Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[Tensor]:
        """Per image, (n, 1, f*ceil(h/s), f*ceil(w/s)) logits over the image's valid region (f =
        ``LOGIT_CELLS_PER_FEATURE_CELL``).

        Outside each proposal's output window the logit is ``OUTSIDE_WINDOW_LOGIT`` (no gradient).

        Exact, but cheaper than running the FCN on n whole maps: G_i differs from one shared base
        map only inside a box, and the FCN (four 3x3 convolutions, then a 2x2 stride-2 deconvolution
        and a 1x1 predictor) sees ``RECEPTIVE_RADIUS`` cells around each cell. So the base map goes
        through the FCN once, and per proposal only a crop around its box (the box grown by twice
        the radius, so that the inner part grown by one radius is exact) is recomputed and pasted.
        """
        feature_map = features[self.featmap_name]
        stride = _power_of_two_ratio(max(h for h, _ in image_sizes), feature_map.shape[-2])
        radius, f = RECEPTIVE_RADIUS, LOGIT_CELLS_PER_FEATURE_CELL
        logits = []
        for i, (image_boxes, (h, w)) in enumerate(zip(boxes, image_sizes)):
            # Crop the batch padding: the global average must be over the image, not the padding.
            feature = feature_map[i, :, : math.ceil(h / stride), : math.ceil(w / stride)]
            height, width = feature.shape[-2:]
            if image_boxes.shape[0] == 0:
                logits.append(feature.new_zeros((0, 1, f * height, f * width)))
                continue
            base = self.logits(self.base_map(feature, image_boxes, stride)[None])[0]
            cells = cell_ranges(self.changed_boxes(image_boxes), stride, height, width).tolist()
            per_proposal = []
            indices = torch.arange(len(cells), device=feature.device)  # sliced per proposal: no copy each time
            for index, (x0, y0, x1, y1) in enumerate(cells):
                vx0, vy0, vx1, vy1 = max(0, x0 - radius), max(0, y0 - radius), min(width, x1 + radius), min(height, y1 + radius)
                cx0, cy0 = max(0, x0 - 2 * radius), max(0, y0 - 2 * radius)
                cx1, cy1 = min(width, x1 + 2 * radius), min(height, y1 + 2 * radius)
                refined = self.refine(feature, image_boxes, stride, indices[index : index + 1],
                                      window=(cx0, cy0, cx1, cy1))
                crop = self.logits(refined)[0]
                out = base.clone()
                out[:, f * vy0 : f * vy1, f * vx0 : f * vx1] = crop[:, f * (vy0 - cy0) : f * (vy1 - cy0), f * (vx0 - cx0) : f * (vx1 - cx0)]
                per_proposal.append(out)
            image_logits = torch.stack(per_proposal)
            windows = self.output_windows(image_boxes, stride / f, f * height, f * width)
            if windows is not None:
                image_logits = torch.where(windows[:, None], image_logits, OUTSIDE_WINDOW_LOGIT)
            logits.append(image_logits)
        return logits

    @staticmethod
    def output_stride(image_size: tuple[int, int], logits: Tensor) -> int:
        """Image pixels per logit cell: the smallest power of two whose cells cover the image.

        (Logits span 2 * ceil(h / stride) cells, so a ratio rounded to a power of two would be
        wrong for images only a few cells high.)
        """
        stride = 1
        while logits.shape[-2] * stride < image_size[0]:
            stride *= 2
        return stride

    def loss(self, logits: list[Tensor], boxes: list[Tensor], gt_masks: list[Tensor]) -> Tensor:
        """Eq. 8: per-pixel BCE against each instance's whole-image mask at logit resolution.

        Logit cell (y, x) is compared with the fraction of its pixels that are salient
        (``labels_at_logit_resolution``). Each proposal's BCE is the mean over its output window (the
        whole map without one), and the loss is the mean over proposals, so every proposal weighs the
        same whatever its size.
        """
        per_proposal = []
        for image_logits, image_boxes, masks in zip(logits, boxes, gt_masks):
            if image_logits.shape[0] == 0:
                continue
            targets = labels_at_logit_resolution(image_logits, masks)
            bce = F.binary_cross_entropy_with_logits(image_logits, targets, reduction="none").flatten(1)
            s = self.output_stride(tuple(masks.shape[-2:]), image_logits)
            windows = self.output_windows(image_boxes, s, *image_logits.shape[-2:])
            if windows is None:
                per_proposal.append(bce.mean(dim=1))
            else:
                weights = windows.flatten(1).to(bce.dtype)
                per_proposal.append((bce * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1))
        if not per_proposal:
            return sum(l.sum() for l in logits) * 0.0  # no positive proposal in the batch
        return torch.cat(per_proposal).mean()

    def to_box_masks(
        self, logits: Tensor, boxes: Tensor, image_size: tuple[int, int], original_size: tuple[int, int]
    ) -> BoxMasks:
        """The probabilities at the original image size (``boxes`` are not needed): the logits' sigmoid brought to
        the resized image's size, then resized to the original one, each only over its window."""
        h, w = image_size
        s = self.output_stride(image_size, logits)
        masks = []
        for chunk in logits.split(self.chunk_size):
            probs = F.interpolate(chunk.sigmoid(), scale_factor=s, mode="bilinear", align_corners=False)[..., :h, :w]
            masks += BoxMasks.from_image_grids(probs[:, 0], tuple(original_size)).masks
        return BoxMasks(masks, tuple(original_size))


def labels_at_logit_resolution(logits: Tensor, masks: Tensor) -> Tensor:
    """(n, 1, h, w): each whole-image mask (n, H, W) as the fraction of salient pixels per logit cell: eq. 8's target.

    The mask is zero-padded to the area the logits cover and average-pooled by the output stride.
    """
    height, width = masks.shape[-2:]
    stride = WholeImageMaskHead.output_stride((height, width), logits)
    cells_h, cells_w = logits.shape[-2:]
    padded = F.pad(masks[:, None].to(logits.dtype), (0, cells_w * stride - width, 0, cells_h * stride - height))
    return F.avg_pool2d(padded, stride) if stride > 1 else padded


class GFRHead(WholeImageMaskHead):
    """The paper's global feature refining module (eq. 2) + SIS head: CGCNet's default."""

    def __init__(self, in_channels: int = FPN_CHANNELS, spec: GFRSpec = GFRSpec()) -> None:
        super().__init__(in_channels, spec)
        self.window_per_side = spec.window_per_side if isinstance(spec, LFRSpec) else None  # None: the whole image

    def refine(self, feature: Tensor, boxes: Tensor, stride: float, index: Tensor,
               window: tuple[int, int, int, int] | None = None) -> Tensor:
        part, shifted = crop_to_window(feature, boxes, stride, window)
        return global_feature_refine(part, shifted, stride, index, self.window_per_side, fill=feature.mean(dim=(1, 2)))

    def base_map(self, feature: Tensor, boxes: Tensor, stride: float) -> Tensor:
        fill = feature.mean(dim=(1, 2))[:, None, None]
        if self.window_per_side is not None:  # LFR: everything outside the own window is the fill
            return fill.expand_as(feature)
        others = box_cells(boxes, stride, *feature.shape[-2:]).any(dim=0)
        return torch.where(others[None], fill, feature)

    def changed_boxes(self, boxes: Tensor) -> Tensor:
        return boxes if self.window_per_side is None else enlarge_boxes(boxes, self.window_per_side)


class LFRHead(GFRHead):
    """The local ablation: GFR restricted to the proposal box grown to (Hr + Hr/5, Wr + Wr/5).

    That is 1/10 of the box size on each side (``LFRSpec.window_per_side``); outside the window the
    feature is the global-average fill value.
    """

    def __init__(self, in_channels: int = FPN_CHANNELS, spec: LFRSpec = LFRSpec()) -> None:
        super().__init__(in_channels, spec)


class RoIMaskingHead(WholeImageMaskHead):
    """S4Net's ternary RoIMasking: whole-image feature times a +1 / -1 (ring) / 0 mask, then SIS head.

    ``ring_per_side=1/3``: S4Net's released code (``generate_bimasks`` in
    experiment/network_desp.py of RuochenFan/S4Net) sets -1 on the box grown by ``h//3`` and
    ``w//3`` on each side, then +1 inside the box; we follow the code, and cut the ring at the
    image border where the numpy slicing there would wrap around.
    """

    def __init__(self, in_channels: int = FPN_CHANNELS, spec: RoIMaskingSpec = RoIMaskingSpec()) -> None:
        super().__init__(in_channels, spec)
        self.ring_per_side = spec.ring_per_side

    def refine(self, feature: Tensor, boxes: Tensor, stride: float, index: Tensor,
               window: tuple[int, int, int, int] | None = None) -> Tensor:
        part, shifted = crop_to_window(feature, boxes, stride, window)
        mask = ternary_roi_mask(shifted[index], stride, *part.shape[-2:], self.ring_per_side)
        return part[None] * mask[:, None].to(part.dtype)

    def base_map(self, feature: Tensor, boxes: Tensor, stride: float) -> Tensor:
        return torch.zeros_like(feature)  # the ternary mask is 0 away from the box and its ring

    def changed_boxes(self, boxes: Tensor) -> Tensor:
        return enlarge_boxes(boxes, self.ring_per_side)


class RoIAlignHead(MaskHead):
    """Mask R-CNN's head: MultiScaleRoIAlign 14x14 -> four conv3x3 -> deconv -> 28x28 logits per box."""

    def __init__(self, in_channels: int = FPN_CHANNELS, spec: RoIAlignSpec = RoIAlignSpec()) -> None:
        super().__init__()
        self.roi_pool = MultiScaleRoIAlign(list(spec.featmap_names), spec.resolution, spec.sampling_ratio)
        self.fcn = MaskRCNNHeads(in_channels, (spec.channels,) * 4, dilation=1)
        self.predictor = class_agnostic_mask_predictor(spec.channels)

    def forward(
        self,
        features: dict[str, Tensor],
        boxes: list[Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> list[Tensor]:
        """28x28 logits per box."""
        logits = self.predictor(self.fcn(self.roi_pool(features, boxes, image_sizes)))
        return list(logits.split([b.shape[0] for b in boxes]))

    def loss(self, logits: list[Tensor], boxes: list[Tensor], gt_masks: list[Tensor]) -> Tensor:
        """Mask R-CNN's loss: BCE against the matched mask cropped to the box and resized to 28x28."""
        all_logits = torch.cat(logits)
        if all_logits.shape[0] == 0:
            return all_logits.sum() * 0.0
        size = all_logits.shape[-1]
        targets = [
            project_masks_on_boxes(masks, image_boxes, torch.arange(masks.shape[0], device=masks.device), size)
            for masks, image_boxes in zip(gt_masks, boxes)
            if image_boxes.shape[0] > 0
        ]
        return F.binary_cross_entropy_with_logits(all_logits[:, 0], torch.cat(targets))

    def to_box_masks(
        self, logits: Tensor, boxes: Tensor, image_size: tuple[int, int], original_size: tuple[int, int]
    ) -> BoxMasks:
        """Each box's 28x28 probabilities stretched over it, as torchvision's ``paste_masks_in_image`` pastes them
        (one cell of zeros around the grid, the box grown to match)."""
        grids, scale = expand_masks(logits.sigmoid(), padding=1)
        pixel_boxes = expand_boxes(boxes, scale).to(dtype=torch.int64)
        return BoxMasks.from_box_grids(grids[:, 0], pixel_boxes, tuple(original_size))


MASK_HEAD_CLASSES: dict[str, type[MaskHead]] = {"gfr": GFRHead, "lfr": LFRHead, "roialign": RoIAlignHead,
                                                 "roimasking": RoIMaskingHead}


def build_mask_head(spec: MaskHeadSpec = NETWORK.mask, in_channels: int = FPN_CHANNELS) -> MaskHead:
    """One of the four heads of Table II, from its spec (``cgc.network_settings.mask_head_spec`` makes one by name)."""
    if spec.name not in MASK_HEAD_CLASSES:
        raise InputError(f"unknown mask head {spec.name!r}; choose one of {', '.join(MASK_HEADS)}")
    return MASK_HEAD_CLASSES[spec.name](in_channels, spec)
