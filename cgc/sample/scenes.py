"""Synthetic salient-instance scenes: textured objects on cluttered, textured backgrounds.

The scenes are built to exercise what makes weak labels hard: instances that touch or
overlap, small instances next to (or in front of) big ones, and backgrounds with edges of their
own. Every image is a pure function of its seed, so a dataset is reproducible bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Scene:
    """One picture and its ground truth: `instances` are visible (occlusion-aware) masks."""

    image: np.ndarray  # HxWx3 uint8, BGR (OpenCV order)
    instances: list[np.ndarray]  # boolean HxW, one per salient instance, front-most last
    kind: str = "flat"  # the case the scene was built to test (photo scenes: see photo.SCENE_KINDS)
    salient: np.ndarray | None = None  # the binary SOD mask, when it is not exactly the union of the instances
    camouflaged: tuple[int, ...] = ()  # indices of the instances textured from the background's own photograph

    @property
    def salient_mask(self) -> np.ndarray:
        if self.salient is not None:
            return self.salient
        out = np.zeros(self.image.shape[:2], dtype=bool)
        for mask in self.instances:
            out |= mask
        return out


def smooth_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 4) -> np.ndarray:
    """Fractal value noise in [0, 1]: sum of upsampled random grids, coarse to fine."""
    total = np.zeros((height, width), np.float32)
    weight_sum = 0.0
    for octave in range(octaves):
        cells = 3 * 2**octave
        grid = rng.random((cells, int(cells * width / height) + 1)).astype(np.float32)
        weight = 0.5**octave
        total += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        weight_sum += weight
    total /= weight_sum
    return np.clip((total - total.min()) / max(float(np.ptp(total)), 1e-6), 0, 1)


def random_colour(rng: np.random.Generator, saturation: tuple[float, float], value: tuple[float, float]) -> np.ndarray:
    hsv = np.uint8([[[rng.integers(0, 180), rng.uniform(*saturation) * 255, rng.uniform(*value) * 255]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)


def textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Muted colour field with noise texture and low-contrast clutter shapes."""
    base = random_colour(rng, (0.05, 0.35), (0.35, 0.75))
    tint = random_colour(rng, (0.05, 0.35), (0.3, 0.8))
    noise = smooth_noise(rng, height, width)[..., None]
    image = base * (1 - noise) + tint * noise
    image += rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    for _ in range(int(rng.integers(8, 20))):
        layer = np.zeros((height, width), np.uint8)
        colour = random_colour(rng, (0.0, 0.4), (0.25, 0.8))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        kind = rng.integers(0, 3)
        if kind == 0:
            axes = (int(rng.integers(5, width // 5)), int(rng.integers(5, height // 5)))
            cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        elif kind == 1:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(layer, centre, end, 255, int(rng.integers(1, 6)))
        else:
            corner = (centre[0] + int(rng.integers(10, 80)), centre[1] + int(rng.integers(10, 60)))
            cv2.rectangle(layer, centre, corner, 255, -1)
        alpha = rng.uniform(0.15, 0.45) * (layer[..., None] / 255.0)
        image = image * (1 - alpha) + colour * alpha
    return cv2.GaussianBlur(image, (3, 3), 0)


def object_shape(rng: np.random.Generator, height: int, width: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    """A filled shape around `centre` whose extent is about `radius`: ellipse, blob or rounded box."""
    mask = np.zeros((height, width), np.uint8)
    cx, cy = centre
    kind = rng.integers(0, 3)
    if kind == 0:
        axes = (max(3, int(radius * rng.uniform(0.6, 1.0))), max(3, int(radius * rng.uniform(0.5, 1.0))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind == 1:
        count = int(rng.integers(7, 13))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = radius * rng.uniform(0.55, 1.0, count)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
        mask = (cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(1.0, radius / 8)) > 0.5).astype(np.uint8)
    else:
        half_w, half_h = radius * rng.uniform(0.5, 1.0), radius * rng.uniform(0.5, 1.0)
        box = ((cx, cy), (2 * half_w, 2 * half_h), float(rng.uniform(0, 90)))
        corners = cv2.boxPoints(box)
        cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    return mask.astype(bool)


def object_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A vivid colour with stripes, spots or noise and a soft shading gradient."""
    colour = random_colour(rng, (0.45, 1.0), (0.45, 1.0))
    second = random_colour(rng, (0.3, 1.0), (0.2, 1.0))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = rng.integers(0, 3)
    if kind == 0:
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(6, 20)
        pattern = 0.5 + 0.5 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    elif kind == 1:
        pattern = (smooth_noise(rng, height, width, octaves=5) > 0.55).astype(np.float32)
        pattern = cv2.GaussianBlur(pattern, (5, 5), 0)
    else:
        pattern = smooth_noise(rng, height, width, octaves=5)
    strength = rng.uniform(0.25, 0.6)
    texture = colour * (1 - strength * pattern[..., None]) + second * (strength * pattern[..., None])
    shade_angle = rng.uniform(0, 2 * np.pi)
    shade = 0.85 + 0.3 * ((xx * np.cos(shade_angle) + yy * np.sin(shade_angle)) / max(height, width))
    return texture * shade[..., None]


def place_instances(rng: np.random.Generator, height: int, width: int, count: int) -> list[tuple[tuple[float, float], float]]:
    """Centres and radii: a loose group where neighbours often touch, sometimes a small one by a big one."""
    short_side = min(height, width)
    placements: list[tuple[tuple[float, float], float]] = []
    big_and_small = count >= 2 and rng.random() < 0.4
    for index in range(count):
        if big_and_small and index == 0:
            radius = short_side * rng.uniform(0.28, 0.36)
        elif big_and_small and index == 1:
            radius = short_side * rng.uniform(0.06, 0.11)
        else:
            radius = short_side * rng.uniform(0.1, 0.22) / max(1.0, count / 3)
        if not placements:
            centre = (rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height)
        else:
            (anchor_x, anchor_y), anchor_r = placements[int(rng.integers(0, len(placements)))]
            if big_and_small and index == 1:
                distance = anchor_r * rng.uniform(0.3, 1.0)
            else:
                distance = (anchor_r + radius) * rng.uniform(0.55, 1.1)
            angle = rng.uniform(0, 2 * np.pi)
            centre = (anchor_x + distance * np.cos(angle), anchor_y + distance * np.sin(angle))
        centre = (float(np.clip(centre[0], radius, width - radius)), float(np.clip(centre[1], radius, height - radius)))
        placements.append((centre, float(radius)))
    return placements


def visible_masks(shapes: list[np.ndarray]) -> list[np.ndarray]:
    """Occlusion: each shape loses the pixels of every shape drawn after it."""
    visible = []
    for index, shape in enumerate(shapes):
        mask = shape.copy()
        for later in shapes[index + 1 :]:
            mask &= ~later
        visible.append(mask)
    return visible


def is_usable_instance(full: np.ndarray, visible: np.ndarray, min_pixels: int) -> bool:
    """Reject instances mostly hidden or cut in two by occlusion: they would be ambiguous to annotate."""
    area = int(visible.sum())
    if area < min_pixels or area < 0.55 * full.sum():
        return False
    count, labels, stats, _ = cv2.connectedComponentsWithStats(visible.astype(np.uint8), connectivity=8)
    return stats[1:, cv2.CC_STAT_AREA].max() >= 0.95 * area


def generate_scene(seed: int | np.random.SeedSequence, height: int = 300, width: int = 400) -> Scene:
    """Draw one scene with 1-5 salient instances; retries placement until every instance is usable."""
    rng = np.random.default_rng(seed)
    image = textured_background(rng, height, width)
    count = int(rng.choice([1, 2, 3, 4, 5], p=[0.15, 0.3, 0.3, 0.15, 0.1]))
    min_pixels = max(60, height * width // 800)
    for _attempt in range(30):
        placements = place_instances(rng, height, width, count)
        shapes = [object_shape(rng, height, width, centre, radius) for centre, radius in placements]
        instances = visible_masks(shapes)
        if all(is_usable_instance(full, vis, min_pixels) for full, vis in zip(shapes, instances)):
            break
    else:
        shapes, instances = shapes[:1], [shapes[0]]
    for shape in shapes:
        texture = object_texture(rng, height, width)
        alpha = cv2.GaussianBlur(shape.astype(np.float32), (3, 3), 0)[..., None]
        image = image * (1 - alpha) + texture * alpha
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    return Scene(image=image, instances=instances)
