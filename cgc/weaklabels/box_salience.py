"""The salient region from boxes alone, for users who have boxes but no SOD masks.

Each consensus box is cut with GrabCut (OpenCV's `grabCut`, Rother et al. 2004): everything
outside the box, in a margin around it, is background, so that the background colour model
learns the box's surroundings, including what neighbouring boxes hold alone; everything inside
the box is probably foreground. The union of the boxes' foregrounds stands in for the SOD mask,
and the rule chosen for `weaklabels build` then gives each pixel to one box as usual.

The consensus boxes are tight: an instance crosses every row and every column of its box (the
tight-box prior of Lempitsky et al., "Image segmentation with a bounding box prior", ICCV 2009,
which the `appearance` rule enforces too). GrabCut alone often drops an instance's thin parts, a
leg or a wheel, on the lines where they are all there is. So, as Lempitsky et al. do, each row or
column of a box that the cut misses gets its pixel whose colour fits the box's foreground best
(against its background) pinned to the foreground, and GrabCut runs again from there, up to
PINPOINT_ROUNDS times.

Where GrabCut keeps nothing of a box (the object's colours are those of its surroundings), the
ellipse inscribed in the box stands in: a tight box is centred on its instance and touches it on
all four sides, and a rough label teaches more than none, which would teach that the object is
background.

GrabCut's colour models start from k-means, which draws from OpenCV's random generator; it is
seeded before every box, so a box's cut depends only on the picture and the box, whichever
process and whichever order handles it.

GrabCut's cost grows with the pixels it models, so the whole boxes-alone mode (GrabCut, then the
rule) works on the picture scaled down to at most WORK_PIXELS pixels, and each instance mask is
brought back to the full size (bilinear, at half) and cut to its box: a 2048x1365 photo costs what
a 770x520 one does, and a box's outline is a statistic of its colours, not of its pixel count.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cgc.weaklabels.appearance import colour_bins, colour_cost
from cgc.weaklabels.priors import PriorSettings, box_masks, pixel_box
from cgc.weaklabels.rules import instance_masks_from_boxes

WORK_PIXELS = 400_000  # boxes alone work on at most this many pixels (e.g. 770x520)
ITERATIONS = 5  # GrabCut's own default in its paper's experiments; more barely changes the cut
MARGIN = 0.5  # the background ring around a box, as a fraction of its longer side
MIN_MARGIN = 8  # pixels: a small box still needs a ring wide enough to learn a colour model
MIN_SAMPLES = 50  # pixels each colour model needs (5 GMM components and their covariances)
RNG_SEED = 0
PINPOINT_ROUNDS = 1  # cuts redone for the tight-box prior; a second moved mean IoU by 0.002 at most
PINPOINT_ITERATIONS = 2  # GrabCut iterations of each redone cut


def inscribed_ellipse(box: np.ndarray, height: int, width: int) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in box)
    ys, xs = np.mgrid[:height, :width] + 0.5
    rx, ry = max(0.5, (x1 - x0) / 2), max(0.5, (y1 - y0) / 2)
    return ((xs - (x0 + x1) / 2) / rx) ** 2 + ((ys - (y0 + y1) / 2) / ry) ** 2 <= 1.0


def grabcut_box(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Boolean foreground of one box (x1, y1, x2, y2 pixels) in a BGR picture; the whole box if too small to cut,
    and nothing if GrabCut keeps nothing."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = pixel_box(box, height, width)
    foreground = np.zeros((height, width), bool)
    if (x1 - x0) * (y1 - y0) < MIN_SAMPLES:
        foreground[y0:y1, x0:x1] = True
        return foreground
    margin = max(MIN_MARGIN, int(round(MARGIN * max(x1 - x0, y1 - y0))))
    cx0, cy0, cx1, cy1 = max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)
    labels = np.full((cy1 - cy0, cx1 - cx0), cv2.GC_BGD, np.uint8)
    labels[y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0] = cv2.GC_PR_FGD
    if (labels == cv2.GC_BGD).sum() < MIN_SAMPLES:  # the box fills the picture: its border is the best guess
        frame = max(1, int(round(0.05 * min(x1 - x0, y1 - y0))))
        labels[:frame], labels[-frame:], labels[:, :frame], labels[:, -frame:] = (cv2.GC_PR_BGD,) * 4
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    if crop.ndim == 2:
        crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    inside = (slice(y0 - cy0, y1 - cy0), slice(x0 - cx0, x1 - cx0))
    run_grabcut(crop, labels, ITERATIONS)
    bins = None  # the colour histograms' bins, needed only once a line is missed
    for _round in range(PINPOINT_ROUNDS):
        kept = cut_foreground(labels)
        missed_rows, missed_columns = np.flatnonzero(~kept[inside].any(axis=1)), np.flatnonzero(~kept[inside].any(axis=0))
        if not kept.any() or (len(missed_rows) == 0 and len(missed_columns) == 0):
            break
        bins = colour_bins(crop) if bins is None else bins
        fit = (colour_cost(bins, ~kept & (labels != cv2.GC_FGD)) - colour_cost(bins, kept))[inside]
        box_labels = labels[inside]  # a view: pins land in `labels`
        box_labels[missed_rows, np.argmax(fit[missed_rows], axis=1)] = cv2.GC_FGD
        box_labels[np.argmax(fit[:, missed_columns], axis=0), missed_columns] = cv2.GC_FGD
        run_grabcut(crop, labels, PINPOINT_ITERATIONS)
    foreground[y0:y1, x0:x1] = cut_foreground(labels[inside])
    return foreground


def cut_foreground(labels: np.ndarray) -> np.ndarray:
    """The pixels GrabCut's labels keep: sure and probable foreground."""
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def run_grabcut(picture: np.ndarray, labels: np.ndarray, iterations: int) -> None:
    """GrabCut from the labels (updated in place), its colour models learnt afresh from them under a fixed seed."""
    cv2.setRNGSeed(RNG_SEED)
    cv2.grabCut(picture, labels, None, np.zeros((1, 65)), np.zeros((1, 65)), iterations, cv2.GC_INIT_WITH_MASK)


def salient_from_boxes(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """The union of every box's GrabCut foreground (an estimate of the salient-region mask), and the indices
    of the boxes where GrabCut kept nothing and the inscribed ellipse stands in."""
    height, width = image.shape[:2]
    salient, empty = np.zeros((height, width), bool), []
    for index, box in enumerate(np.asarray(boxes, dtype=float).reshape(-1, 4)):
        foreground = grabcut_box(image, box)
        if not foreground.any():
            foreground = inscribed_ellipse(box, height, width)
            empty.append(index)
        salient |= foreground
    return salient, empty


def instance_masks_from_boxes_alone(image: np.ndarray, boxes: np.ndarray, settings: PriorSettings
                                    ) -> tuple[list[np.ndarray], list[int]]:
    """One mask per box from the picture and its boxes alone, at a bounded resolution (module docstring); and the
    indices of the boxes where GrabCut kept nothing."""
    height, width = image.shape[:2]
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    scale = min(1.0, math.sqrt(WORK_PIXELS / (height * width)))
    if scale == 1.0:
        salient, empty = salient_from_boxes(image, boxes)
        return instance_masks_from_boxes(salient, boxes, image, settings), empty
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    factors = np.array([size[0] / width, size[1] / height] * 2)
    salient, empty = salient_from_boxes(small, boxes * factors)
    masks = instance_masks_from_boxes(salient, boxes * factors, small, settings)
    return [full_size(mask, box, height, width) for mask, box in zip(masks, boxes)], empty


def full_size(mask: np.ndarray, box: np.ndarray, height: int, width: int) -> np.ndarray:
    """A mask made on a scaled-down picture, brought back to the full size and cut to its box."""
    full = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) >= 0.5
    return full & box_masks(box[None], height, width)[0]
