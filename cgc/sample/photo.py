"""Photo-style sample scenes: real photo textures, real and articulated silhouettes, chosen hard cases.

The flat scenes of `scenes.py` are easy: vivid blobs on a muted field. These are built from
photographs that ship inside the scikit-image wheel (`skimage/data/`; all public domain or CC0,
see docs/formats.md), so that objects and backgrounds carry real texture, and each scene is one of
the cases that make weak labels hard:

- isolated: instances apart from each other (the easy reference);
- overlapping: two instances of similar texture (crops of one photograph) that overlap;
- enclosed: a small instance inside a big one's box, in front of it;
- resting-on: an upright instance resting on a wide one, like a person on a sofa;
- low-contrast: an instance textured from the background's own photograph.

The binary salient masks get the defects of real SOD ground truth (jagged edges, small holes,
thin parts missed); the instance maps stay exact. Every scene is a pure function of its seed.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from cgc.coco import binary_mask_iou
from cgc.sample.scenes import Scene, is_usable_instance, object_shape, visible_masks

SCENE_KINDS = ("isolated", "overlapping", "enclosed", "resting-on", "low-contrast")
# Backgrounds: texture photographs, tinted, or other photographs zoomed in until nothing in them looks like an
# object (a whole astronaut in the background would be salient to any viewer, yet absent from the masks).
TEXTURE_BACKGROUNDS = ("grass", "gravel", "brick")
ZOOMED_BACKGROUNDS = ("coffee", "rocket", "chelsea", "astronaut", "camera")
MIN_SOD_IOU = 0.85  # SOD ground truth is imperfect, not wrong: its defects never cost more than this
TEXTURE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "retina", "brick", "gravel", "grass")


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled photographs as BGR uint8 (grey ones as three equal channels)."""
    import skimage.data

    picture = getattr(skimage.data, name)()
    if picture.ndim == 2:
        return np.repeat(picture[..., None], 3, axis=2)
    return np.ascontiguousarray(picture[..., ::-1])


@lru_cache(maxsize=None)
def horse_silhouette() -> np.ndarray:
    """skimage's horse: a real silhouette with legs, tail and ears, cropped to its box."""
    import skimage.data

    horse = ~skimage.data.horse()
    ys, xs = np.nonzero(horse)
    return horse[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def photo_crop(rng: np.random.Generator, name: str, height: int, width: int, zoom: tuple[float, float] = (1.0, 2.0)) -> np.ndarray:
    """A random crop of a photograph, rescaled (zoomed in by `zoom` beyond covering the frame) and maybe
    mirrored, as float BGR."""
    source = photo(name)
    scale = max(height / source.shape[0], width / source.shape[1]) * rng.uniform(*zoom)
    resized = cv2.resize(source, (max(width, round(source.shape[1] * scale)), max(height, round(source.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top = int(rng.integers(0, resized.shape[0] - height + 1))
    left = int(rng.integers(0, resized.shape[1] - width + 1))
    crop = resized[top: top + height, left: left + width].astype(np.float32)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def background(rng: np.random.Generator, height: int, width: int) -> tuple[str, np.ndarray]:
    """The photograph a scene's background comes from, and the background itself."""
    if rng.random() < 0.5:
        name = TEXTURE_BACKGROUNDS[int(rng.integers(0, len(TEXTURE_BACKGROUNDS)))]
        tint = cv2.cvtColor(np.uint8([[[rng.integers(0, 180), rng.integers(40, 140), 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
        return name, photo_crop(rng, name, height, width) * (tint.astype(np.float32) / 255.0)
    name = ZOOMED_BACKGROUNDS[int(rng.integers(0, len(ZOOMED_BACKGROUNDS)))]
    return name, photo_crop(rng, name, height, width, zoom=(3.0, 6.0))


def shifted_colour(rng: np.random.Generator, texture: np.ndarray) -> np.ndarray:
    """The same texture with its hue turned and its saturation raised a little: one photo, many objects."""
    hsv = cv2.cvtColor(np.clip(texture, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(0, 180)) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(1.0, 1.6) + rng.uniform(0, 60), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)


def articulated_shape(rng: np.random.Generator, height: int, width: int, centre: tuple[float, float],
                      radius: float) -> np.ndarray:
    """An elliptic body with two to four thin limbs, and sometimes a handle: non-convex, with thin parts."""
    mask = np.zeros((height, width), np.uint8)
    cx, cy = centre
    axes = (max(3, int(radius * rng.uniform(0.55, 0.8))), max(3, int(radius * rng.uniform(0.35, 0.55))))
    angle = float(rng.uniform(0, 180))
    cv2.ellipse(mask, (int(cx), int(cy)), axes, angle, 0, 360, 1, -1)
    thickness = max(2, int(radius * rng.uniform(0.08, 0.16)))
    for _ in range(int(rng.integers(2, 5))):
        direction = rng.uniform(0, 2 * np.pi)
        start = (cx + 0.6 * axes[0] * np.cos(direction), cy + 0.6 * axes[1] * np.sin(direction))
        length = radius * rng.uniform(0.5, 0.9)
        bend = direction + rng.uniform(-0.6, 0.6)
        end = (start[0] + length * np.cos(bend), start[1] + length * np.sin(bend))
        cv2.line(mask, (int(start[0]), int(start[1])), (int(end[0]), int(end[1])), 1, thickness)
    if rng.random() < 0.4:  # a handle: an open ring on one side
        side = float(rng.choice([0.0, 180.0])) + angle
        ring_centre = (int(cx + axes[0] * np.cos(np.radians(side))), int(cy + axes[0] * np.sin(np.radians(side))))
        ring = max(4, int(radius * 0.35))
        cv2.ellipse(mask, ring_centre, (ring, ring), side, -100, 100, 1, max(2, thickness // 2 + 1))
    return mask.astype(bool)


def horse_shape(rng: np.random.Generator, height: int, width: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    """The horse silhouette scaled to about `radius`, maybe mirrored, placed at `centre`."""
    horse = horse_silhouette()
    scale = 2 * radius / max(horse.shape)
    size = (max(4, round(horse.shape[1] * scale)), max(4, round(horse.shape[0] * scale)))
    resized = cv2.resize(horse.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    if rng.random() < 0.5:
        resized = resized[:, ::-1]
    mask = np.zeros((height, width), bool)
    top, left = int(centre[1] - size[1] / 2), int(centre[0] - size[0] / 2)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(height, top + size[1]), min(width, left + size[0])
    if y1 > y0 and x1 > x0:
        mask[y0:y1, x0:x1] = resized[y0 - top: y1 - top, x0 - left: x1 - left]
    return mask


def any_shape(rng: np.random.Generator, height: int, width: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    kind = rng.integers(0, 3)
    if kind == 0:
        return horse_shape(rng, height, width, centre, radius)
    if kind == 1:
        return articulated_shape(rng, height, width, centre, radius)
    return object_shape(rng, height, width, centre, radius)


def layout(rng: np.random.Generator, kind: str, height: int, width: int) -> list[tuple[tuple[float, float], float, str]]:
    """(centre, radius, shape role) of each instance, back to front, for one kind of scene."""
    short = min(height, width)

    def anywhere(radius: float) -> tuple[float, float]:
        return (rng.uniform(radius, width - radius), rng.uniform(radius, height - radius))

    if kind == "overlapping":
        radius = short * rng.uniform(0.18, 0.26)
        first = anywhere(radius * 1.6)
        angle, distance = rng.uniform(0, 2 * np.pi), radius * rng.uniform(0.9, 1.4)
        second = (first[0] + distance * np.cos(angle), first[1] + distance * np.sin(angle))
        return [(first, radius, "any"), (second, radius * rng.uniform(0.8, 1.1), "any")]
    if kind == "enclosed":
        big = short * rng.uniform(0.32, 0.42)
        centre = anywhere(big)
        small = short * rng.uniform(0.07, 0.12)
        inner = (centre[0] + rng.uniform(-0.4, 0.4) * big, centre[1] + rng.uniform(-0.4, 0.4) * big)
        return [(centre, big, "any"), (inner, small, "blob")]
    if kind == "resting-on":
        wide = short * rng.uniform(0.3, 0.38)
        base = (rng.uniform(0.35, 0.65) * width, height - wide * rng.uniform(0.55, 0.8))
        upright = short * rng.uniform(0.16, 0.22)
        sitter = (base[0] + rng.uniform(-0.5, 0.5) * wide, base[1] - 0.35 * wide - 0.6 * upright)
        return [(base, wide, "wide"), (sitter, upright, "upright")]
    count = int(rng.integers(1, 4))
    return [(anywhere(short * 0.2), short * rng.uniform(0.1, 0.2), "any") for _ in range(count)]


def role_shape(rng: np.random.Generator, role: str, height: int, width: int, centre: tuple[float, float],
               radius: float) -> np.ndarray:
    if role == "wide":  # a sofa-like block: a wide rounded box with a back
        mask = np.zeros((height, width), np.uint8)
        cx, cy = centre
        cv2.rectangle(mask, (int(cx - radius * 1.3), int(cy - radius * 0.35)), (int(cx + radius * 1.3), int(cy + radius * 0.4)), 1, -1)
        cv2.rectangle(mask, (int(cx - radius * 1.3), int(cy - radius * 0.75)), (int(cx + radius * 1.3), int(cy - radius * 0.3)), 1, -1)
        return cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))).astype(bool)
    if role == "upright":
        return articulated_shape(rng, height, width, centre, radius)
    if role == "blob":
        return object_shape(rng, height, width, centre, radius)
    return any_shape(rng, height, width, centre, radius)


def sod_mask(rng: np.random.Generator, exact: np.ndarray) -> np.ndarray:
    """The salient region as SOD ground truth draws it: jagged edges, a few small holes, thin parts missed.

    Each defect is kept only while the mask stays within MIN_SOD_IOU of the exact one, so that a
    small or thin object gets smaller defects rather than being lost.
    """
    mask = exact.astype(np.uint8)
    if not mask.any():
        return exact.copy()
    height, width = mask.shape
    noise = cv2.resize(rng.random((max(2, height // 6), max(2, width // 6))).astype(np.float32), (width, height),
                       interpolation=cv2.INTER_LINEAR)
    kernel = np.ones((3, 3), np.uint8)
    grown, shrunk = cv2.dilate(mask, kernel), cv2.erode(mask, kernel)
    thin = max(3, int(rng.integers(3, 7)) | 1)  # limbs thinner than this may be lost, as annotators lose them
    lose_thin_parts = rng.random() < 0.5
    ys, xs = np.nonzero(shrunk)
    holes = [(int(xs[pick]), int(ys[pick]), int(rng.integers(1, 4)))
             for pick in (rng.integers(0, len(ys), int(rng.integers(0, 4))) if len(ys) else [])]
    result = mask
    jagged = np.where(noise > 0.66, grown, np.where(noise < 0.33, shrunk, mask)).astype(np.uint8)
    if binary_mask_iou(jagged, mask) >= MIN_SOD_IOU:
        result = jagged
    if lose_thin_parts:
        opened = cv2.morphologyEx(result, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (thin, thin)))
        opened = np.where(noise > 0.5, opened, result).astype(np.uint8)
        if binary_mask_iou(opened, mask) >= MIN_SOD_IOU:
            result = opened
    for x, y, radius in holes:
        holed = result.copy()
        cv2.circle(holed, (x, y), radius, 0, -1)
        if binary_mask_iou(holed, mask) >= MIN_SOD_IOU:
            result = holed
    return result.astype(bool)


def generate_photo_scene(seed: int | np.random.SeedSequence, height: int = 300, width: int = 400) -> Scene:
    """One photo-style scene of a kind drawn from SCENE_KINDS; retries the layout until every instance is usable."""
    rng = np.random.default_rng(seed)
    kind = SCENE_KINDS[int(rng.integers(0, len(SCENE_KINDS)))]
    _name, backdrop = background(rng, height, width)
    image = backdrop
    min_pixels = max(60, height * width // 800)
    for _attempt in range(30):
        placements = layout(rng, kind, height, width)
        shapes = [role_shape(rng, role, height, width, centre, radius) for centre, radius, role in placements]
        instances = visible_masks(shapes)
        if all(is_usable_instance(full, vis, min_pixels) for full, vis in zip(shapes, instances)):
            break
    else:
        shapes, instances = shapes[:1], [shapes[0]]
    shared = TEXTURE_PHOTOS[int(rng.integers(0, len(TEXTURE_PHOTOS)))]
    camouflaged = (0,) if kind == "low-contrast" else ()
    for index, shape in enumerate(shapes):
        if index in camouflaged:
            # the background's own photograph, tint and zoom, from elsewhere in it and a little lighter or darker
            shift = (int(rng.integers(height // 4, height)), int(rng.integers(width // 4, width)))
            texture = np.roll(backdrop, shift, axis=(0, 1))[:, ::-1] * rng.uniform(0.75, 1.25)
        elif kind == "overlapping":
            texture = photo_crop(rng, shared, height, width)
        else:
            texture = shifted_colour(rng, photo_crop(rng, TEXTURE_PHOTOS[int(rng.integers(0, len(TEXTURE_PHOTOS)))], height, width))
        alpha = cv2.GaussianBlur(shape.astype(np.float32), (3, 3), 0)[..., None]
        image = image * (1 - alpha) + texture * alpha
    image = np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)
    salient = sod_mask(rng, np.logical_or.reduce(instances))
    return Scene(image=image, instances=instances, kind=kind, salient=salient, camouflaged=camouflaged)
