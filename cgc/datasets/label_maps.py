"""Reading mask PNGs (binary salient-region masks and instance label maps), and writing label maps.

Binary masks (DUT-OMRON, SOC `gt/`, saliency predictions) come as 0/255, 0/1, 0/100, 16-bit or
even RGB(A) files; `read_binary_mask` accepts all of them because the weak-label builder reads
thousands and should not care how each was saved.

Instance label maps come in two flavours:

* indexed (palette "P", grayscale "L", 16/32-bit "I;16"/"I"): 0 is background, every other value
  is one instance, ordered by value. The value 255 is treated as "ignore / boundary" (the
  PASCAL VOC convention many segmentation datasets copy), never as an instance.
* colour ("RGB"/"RGBA", e.g. SOC's `Instance gt`): every distinct non-black colour is one
  instance, ordered by where the colour first appears in raster order, so that the result is
  the same on every run. In RGBA maps, fully transparent pixels count as background. White is
  an ordinary instance colour here (there is no ignore colour).

cgc writes label maps indexed, ILSO style, with one palette (`write_instance_label_map`): the
sample data's true instances and `cgc predict`'s masks look alike in any viewer.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from cgc.datasets.pictures import decode_as_shown, oriented, picture_header, read_file_bytes, refuse_above_limit
from cgc.errors import InputError

IGNORE_INDEX = 255
"""Value in an indexed (palette/grayscale) instance map that marks ignore/boundary pixels."""


def read_binary_mask(path: str | Path) -> np.ndarray:
    """Read a saved salient-region mask as a boolean HxW array, whatever its bit depth and values.

    Every pixel above half of the mask's own maximum is salient: a two-valued mask reads exactly
    whatever its two values are (0/255, 0/1, 0/100, 0/2, 16-bit, float), and a soft saliency map
    is cut at half its peak. Colour masks use the maximum over the colour channels (alpha is
    ignored), so a mask saved as RGB still reads correctly. Palette masks are read by index,
    whatever colours the palette gives them: index 0 is background. The header is read once, by
    Pillow (size limit, EXIF orientation), as for pictures.
    """
    path = Path(path)
    data = read_file_bytes(path, "mask")
    header = picture_header(path, path)
    indices = palette_indices(path)
    if indices is not None:
        return oriented(indices, header.orientation) != 0
    array = decode_as_shown(data, header, path, cv2.IMREAD_UNCHANGED)
    if array.ndim == 3:
        array = array[..., :3].max(axis=2) if array.shape[2] >= 3 else array[..., 0]
    if np.issubdtype(array.dtype, np.floating):
        array = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
    peak = array.max() if array.size else 0
    return array > peak / 2 if peak > 0 else np.zeros(array.shape, bool)


def palette_indices(path: Path) -> np.ndarray | None:
    """The index array of a palette PNG, or None for any other file (read by OpenCV instead)."""
    try:
        with Image.open(path) as image:
            if image.mode != "P":
                return None
            return np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None  # OpenCV reports the file


def index_map_to_masks(label_map: np.ndarray) -> list[np.ndarray]:
    """Indexed HxW map -> one boolean mask per value other than 0 (background) and 255 (ignore)."""
    values = np.unique(label_map)
    return [label_map == value for value in values if value != 0 and value != IGNORE_INDEX]


def colour_map_to_masks(rgb: np.ndarray, alpha: np.ndarray | None = None) -> list[np.ndarray]:
    """HxWx3 colour map -> one boolean mask per non-black colour, in order of first appearance."""
    rgb = rgb.astype(np.uint32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    if alpha is not None:
        codes = np.where(alpha > 0, codes, 0)
    flat = codes.ravel()
    colours, first_seen, inverse = np.unique(flat, return_index=True, return_inverse=True)
    inverse = inverse.reshape(codes.shape)
    order = np.argsort(first_seen, kind="stable")
    return [inverse == j for j in order if colours[j] != 0]


def read_instance_label_map(path: str | Path) -> tuple[list[np.ndarray], tuple[int, int]]:
    """Read an instance label map (indexed or colour PNG) -> (boolean HxW masks, (height, width)).

    Uses PIL rather than cv2 because cv2 expands palette PNGs to colours, which would lose the
    instance indices. The size is returned separately because an image with no salient object
    has no masks but still has a size. Unreadable files raise InputError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("instance map not found", path)
    try:
        with Image.open(path) as image:
            refuse_above_limit(*image.size, path)
            image.load()
            mode = image.mode
            array = np.array(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"cannot read instance map ({exc})", path) from None
    height, width = array.shape[:2]
    if mode == "1":
        masks = [array.astype(bool)] if array.any() else []
    elif mode in ("P", "L", "I", "I;16", "I;16B", "I;16L"):
        masks = index_map_to_masks(array)
    elif mode in ("LA", "PA"):
        masks = index_map_to_masks(np.where(array[..., 1] > 0, array[..., 0], 0))
    elif mode == "RGB":
        masks = colour_map_to_masks(array)
    elif mode == "RGBA":
        masks = colour_map_to_masks(array[..., :3], alpha=array[..., 3])
    else:
        raise InputError(f"unsupported instance map mode {mode!r} (expected palette, grayscale or RGB)", path)
    return masks, (int(height), int(width))


def instance_palette() -> list[int]:
    """A 256-colour PNG palette: black background, distinct colours for instances 1..255."""
    rng = np.random.default_rng(12345)
    colours = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]
    colours += [tuple(int(c) for c in rng.integers(40, 256, 3)) for _ in range(256 - len(colours))]
    return [channel for colour in colours for channel in colour]


def write_instance_label_map(path: str | Path, labels: np.ndarray) -> None:
    """An indexed PNG of `labels` (uint8: 0 background, 1..K instances) with the instance palette."""
    image = Image.fromarray(np.asarray(labels, np.uint8), mode="P")
    image.putpalette(instance_palette())
    image.save(path)
