"""One picture's detected masks, held where they can be salient, at the network's resolution.

A mask head predicts on a small grid: Mask R-CNN's 28x28 cells per box, or the whole-image heads'
map at the resized picture's resolution. Pasted as one full-picture float map per detection (as
torchvision's `paste_masks_in_image` does), 80 detections of a 12-megapixel photo take 3.8 GB,
and everything after (duplicate suppression, one instance per pixel) walked those maps: about
1 GB per megapixel in all. Here each detection keeps its grid and the *window* of the picture
where its bilinear resize can reach the mask threshold; the picture-sized probabilities of one
window are computed when asked for (`probabilities`), one detection at a time, and dropped again.

Only pixels at or above the threshold matter downstream (binary masks, their IoU, maskness, the
owner of each pixel), and bilinear interpolation is a weighted mean of four grid cells, so a pixel
whose four cells are all below the threshold is below it too: the window loses nothing. The
resize itself is PyTorch's bilinear interpolation (`align_corners=False`), computed for the
window's rows and columns only (`resize_window`, checked against `F.interpolate` in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import Tensor

from cgc.network_settings import MASK_THRESHOLD

SUPPORT_MARGIN = 1e-6  # grid cells this close below the threshold still count: float rounding of the weighted mean


def float32_ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator rounded once to float32, as PyTorch computes a resize's scale."""
    return float(np.float32(numerator) / np.float32(denominator))


@dataclass(frozen=True)
class AxisMap:
    """How picture pixels along one axis read a grid: pixel p is grid position `scale * (p - origin + 0.5) - 0.5`
    (at least 0), drawn only for p in [origin, origin + extent); the grid has `size` cells."""

    origin: int
    extent: int
    scale: float
    size: int

    def cells(self, start: int, stop: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """For picture pixels start..stop-1: the two grid cells each reads and their weights, as PyTorch computes them."""
        position = torch.arange(start - self.origin, stop - self.origin, dtype=torch.float32)
        source = (torch.tensor(self.scale, dtype=torch.float32) * (position + 0.5) - 0.5).clamp(min=0)
        first = source.floor().long().clamp(max=self.size - 1)
        second_weight = (source - first).clamp(0, 1)
        second = first + (first < self.size - 1).long()
        return first, second, 1 - second_weight, second_weight

    def drawn(self, length: int) -> tuple[int, int]:
        """The picture pixels (start, stop) the grid is drawn on, within a picture of `length` pixels."""
        return max(self.origin, 0), min(self.origin + self.extent, length)

    def reach(self, low: int, high: int, length: int) -> tuple[int, int]:
        """The drawn pixels (start, stop) that read a grid cell in low..high (inclusive); an empty range if none."""
        start, stop = self.drawn(length)
        if start >= stop or low > high:
            return start, start
        first, second, _, _ = self.cells(start, stop)
        hits = torch.nonzero((second >= low) & (first <= high)).flatten()
        if len(hits) == 0:
            return start, start
        return start + int(hits[0]), start + int(hits[-1]) + 1


@dataclass
class GridMask:
    """One detection's mask: probabilities on its grid (only the cells the window reads are kept), how the
    picture reads the grid (`y`, `x`), and the window (x0, y0, x1, y1) of the picture where it may be salient."""

    values: Tensor  # the kept cells' probabilities
    top: int  # grid cell of values[0, 0]
    left: int
    y: AxisMap
    x: AxisMap
    window: tuple[int, int, int, int]

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.window
        return max(0, x1 - x0) * max(0, y1 - y0)


def resize_window(mask: GridMask) -> Tensor:
    """The picture's probabilities over `mask.window`: `F.interpolate(grid, size=picture, mode="bilinear",
    align_corners=False)` (or torchvision's paste of a box's grid), for the window's pixels only."""
    x0, y0, x1, y1 = mask.window
    if x1 <= x0 or y1 <= y0:
        return mask.values.new_zeros((max(0, y1 - y0), max(0, x1 - x0)))
    rows0, rows1, row_w0, row_w1 = (t.to(mask.values.device) for t in mask.y.cells(y0, y1))
    cols0, cols1, col_w0, col_w1 = (t.to(mask.values.device) for t in mask.x.cells(x0, x1))
    values = mask.values.float()
    upper = values.index_select(0, rows0 - mask.top)
    lower = values.index_select(0, rows1 - mask.top)
    left0, left1 = cols0 - mask.left, cols1 - mask.left
    upper = upper.index_select(1, left0) * col_w0 + upper.index_select(1, left1) * col_w1
    lower = lower.index_select(1, left0) * col_w0 + lower.index_select(1, left1) * col_w1
    return upper * row_w0[:, None] + lower * row_w1[:, None]


def grid_mask(grid: Tensor, y: AxisMap, x: AxisMap, image_size: tuple[int, int],
              threshold: float = MASK_THRESHOLD) -> GridMask:
    """A detection's `GridMask` from its whole grid: the window is where a cell at the threshold reaches."""
    salient = grid >= threshold - SUPPORT_MARGIN
    rows, columns = salient.any(dim=1).nonzero().flatten(), salient.any(dim=0).nonzero().flatten()
    if len(rows) == 0:
        return GridMask(grid.new_zeros((0, 0)), 0, 0, y, x, (0, 0, 0, 0))
    y0, y1 = y.reach(int(rows[0]), int(rows[-1]), image_size[0])
    x0, x1 = x.reach(int(columns[0]), int(columns[-1]), image_size[1])
    if y1 <= y0 or x1 <= x0:
        return GridMask(grid.new_zeros((0, 0)), 0, 0, y, x, (0, 0, 0, 0))
    rows_read, columns_read = y.cells(y0, y1), x.cells(x0, x1)
    r0, r1 = int(rows_read[0].min()), int(rows_read[1].max())
    c0, c1 = int(columns_read[0].min()), int(columns_read[1].max())
    return GridMask(grid[r0 : r1 + 1, c0 : c1 + 1].clone(), r0, c0, y, x, (x0, y0, x1, y1))


class BoxMasks:
    """The masks of one picture's detections, each a `GridMask`; picture-sized maps only on demand."""

    def __init__(self, masks: Sequence[GridMask], image_size: tuple[int, int],
                 rles: dict[float, list[dict[str, Any]]] | None = None) -> None:
        self.masks = list(masks)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self._rles = rles or {}  # per threshold, each mask's RLE, once made

    def __len__(self) -> int:
        return len(self.masks)

    @classmethod
    def from_image_grids(cls, grids: Tensor, image_size: tuple[int, int],
                         threshold: float = MASK_THRESHOLD) -> BoxMasks:
        """(n, h, w) probabilities covering the whole picture, resized to `image_size` (H, W) as
        `F.interpolate(size=image_size, mode="bilinear", align_corners=False)` would."""
        height, width = image_size
        h, w = grids.shape[-2:]
        y, x = AxisMap(0, height, float32_ratio(h, height), h), AxisMap(0, width, float32_ratio(w, width), w)
        return cls([grid_mask(grid, y, x, image_size, threshold) for grid in grids], image_size)

    @classmethod
    def from_box_grids(cls, grids: Tensor, boxes: Tensor, image_size: tuple[int, int],
                       threshold: float = MASK_THRESHOLD) -> BoxMasks:
        """(n, g, g) probabilities per box (x1, y1, x2, y2 integer pixels, ends included), each stretched over its
        box as torchvision's `paste_mask_in_image` does."""
        masks = []
        for grid, (bx0, by0, bx1, by1) in zip(grids, boxes.tolist()):
            width, height = max(int(bx1 - bx0 + 1), 1), max(int(by1 - by0 + 1), 1)
            y = AxisMap(int(by0), height, float32_ratio(grid.shape[0], height), grid.shape[0])
            x = AxisMap(int(bx0), width, float32_ratio(grid.shape[1], width), grid.shape[1])
            masks.append(grid_mask(grid, y, x, image_size, threshold))
        return cls(masks, image_size)

    @classmethod
    def from_dense(cls, probabilities: Tensor | np.ndarray, threshold: float = MASK_THRESHOLD) -> BoxMasks:
        """Picture-sized (n, H, W) or (n, 1, H, W) probabilities (for tests and small pictures)."""
        maps = torch.as_tensor(np.asarray(probabilities) if isinstance(probabilities, np.ndarray) else probabilities)
        maps = maps.float().reshape(len(maps), *maps.shape[-2:])
        return cls.from_image_grids(maps, tuple(maps.shape[-2:]), threshold)

    def select(self, index: Tensor | Sequence[int]) -> BoxMasks:
        """The masks at `index`, in that order."""
        chosen = index.tolist() if isinstance(index, Tensor) else list(index)
        rles = {threshold: [made[i] for i in chosen] for threshold, made in self._rles.items()}
        return BoxMasks([self.masks[i] for i in chosen], self.image_size, rles)

    def to(self, device: torch.device | str) -> BoxMasks:
        moved = [GridMask(m.values.to(device), m.top, m.left, m.y, m.x, m.window) for m in self.masks]
        return BoxMasks(moved, self.image_size, dict(self._rles))

    def window(self, i: int) -> tuple[int, int, int, int]:
        return self.masks[i].window

    def probabilities(self, i: int) -> Tensor:
        """Detection i's probabilities over its window (x0, y0, x1, y1), at the picture's resolution."""
        return resize_window(self.masks[i])

    def binary(self, i: int, threshold: float = MASK_THRESHOLD) -> np.ndarray:
        """Detection i's mask over its window, as a numpy bool array."""
        return (self.probabilities(i) >= threshold).cpu().numpy()

    def rles(self, threshold: float = MASK_THRESHOLD) -> list[dict[str, Any]]:
        """Each detection's binary mask as COCO RLE (pycocotools' compressed form), made once per threshold."""
        if threshold not in self._rles:
            canvas = np.zeros(self.image_size, np.uint8, order="F")
            rles = []
            for i in range(len(self)):
                x0, y0, x1, y1 = self.window(i)
                canvas[y0:y1, x0:x1] = self.binary(i, threshold)
                rles.append(mask_utils.encode(canvas))
                canvas[y0:y1, x0:x1] = 0
            self._rles[threshold] = rles
        return self._rles[threshold]

    def maskness(self, threshold: float = MASK_THRESHOLD) -> Tensor:
        """(n,) the mean probability over the pixels each mask claims; 0 for an empty mask (SOLOv2's maskness)."""
        values = []
        for i in range(len(self)):
            probabilities = self.probabilities(i)
            claimed = probabilities >= threshold
            values.append(float((probabilities * claimed).sum() / claimed.sum().clamp(min=1)))
        return torch.tensor(values, dtype=torch.float32)

    def dense(self) -> Tensor:
        """(n, 1, H, W) picture-sized probabilities, zero outside each window: only for small pictures and tests."""
        maps = torch.zeros((len(self), 1, *self.image_size))
        for i in range(len(self)):
            x0, y0, x1, y1 = self.window(i)
            maps[i, 0, y0:y1, x0:x1] = self.probabilities(i).cpu()
        return maps
