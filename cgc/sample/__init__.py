"""Deterministic sample data: scenes, their masks in the field's layouts, and annotators' boxes.

Layout written under OUT (the same names the dataset readers expect):
  imgs/<name>.jpg          the pictures (DUT-OMRON and ILSO both store JPEG)
  masks/<name>.png         binary salient-region masks, 0/255 (DUT-OMRON pixelwiseGT style)
  gt/<name>.png            true instance maps, palette PNG, 0 = background, 1..K (ILSO style)
  labelstudio_export.json  five simulated annotators' boxes per image (Label Studio JSON export)
  scenes.json              each picture's style, the case it was built to test (photo: SCENE_KINDS), and which
                           instances of gt/ are camouflaged (textured from the background's own photograph)

Two styles: `flat` (vivid blobs on a muted textured field, `scenes.py`) and `photo` (real photo
textures and silhouettes, chosen hard cases, SOD-style mask defects, `photo.py`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from cgc.datasets.label_maps import write_instance_label_map
from cgc.datasets.pictures import write_picture
from cgc.fileio import atomic_directory, atomic_write_json
from cgc.parallel import map_in_processes
from cgc.sample.annotators import AnnotatorHabits, label_studio_task
from cgc.sample.photo import generate_photo_scene
from cgc.sample.scenes import Scene, generate_scene

SCENE_STYLES = {"flat": generate_scene, "photo": generate_photo_scene}
DEFAULT_STYLE = "photo"  # the flat scenes are too easy to tell one weak-label rule from another

__all__ = ["AnnotatorHabits", "DEFAULT_STYLE", "SCENE_STYLES", "Scene", "generate_scene", "write_sample_dataset"]


def write_instance_map(path: Path, instances: list[np.ndarray]) -> None:
    labels = np.zeros(instances[0].shape, np.uint8)
    for index, mask in enumerate(instances, start=1):
        labels[mask] = index
    write_instance_label_map(path, labels)


def write_one_sample(index: int, seed: int, directory: Path, height: int, width: int, habits: AnnotatorHabits,
                     biases: np.ndarray, style: str = DEFAULT_STYLE) -> tuple[dict, dict]:
    """Draw scene `index`, write its three files and return its Label Studio task and its scenes.json entry."""
    scene = SCENE_STYLES[style](np.random.SeedSequence([seed, index]), height=height, width=width)
    name = f"sample_{index + 1:05d}"
    write_picture(directory / "imgs" / f"{name}.jpg", scene.image, jpeg_quality=92)
    write_picture(directory / "masks" / f"{name}.png", scene.salient_mask.astype(np.uint8) * 255)
    write_instance_map(directory / "gt" / f"{name}.png", scene.instances)
    rng = np.random.default_rng(np.random.SeedSequence([seed, index, 1]))
    task = label_studio_task(rng, index + 1, f"{name}.jpg", scene.instances, habits, biases)
    return task, {"file_name": f"{name}.jpg", "style": style, "kind": scene.kind, "instances": len(scene.instances),
                  "camouflaged": [number + 1 for number in scene.camouflaged]}


def write_sample_dataset(
    out: str | Path,
    images: int,
    seed: int = 0,
    height: int = 300,
    width: int = 400,
    workers: int = 1,
    habits: AnnotatorHabits = AnnotatorHabits(),
    progress: bool = True,
    overwrite: bool = False,
    style: str = DEFAULT_STYLE,
) -> Path:
    """Write `images` scenes of `style` under `out`, replaced as a whole only once everything is written (a
    folder cgc did not write as a sample only with `overwrite`)."""
    out = Path(out)
    if style not in SCENE_STYLES:
        raise ValueError(f"unknown sample style {style!r}; expected one of {sorted(SCENE_STYLES)}")
    biases = np.random.default_rng(np.random.SeedSequence([seed])).normal(0.0, habits.bias, habits.annotators)
    with atomic_directory(out, "sample", overwrite) as directory:
        for sub in ("imgs", "masks", "gt"):
            (directory / sub).mkdir()
        job = partial(write_one_sample, seed=seed, directory=directory, height=height, width=width, habits=habits,
                      biases=biases, style=style)
        written = map_in_processes(job, list(range(images)), workers, "sample", progress)
        atomic_write_json(directory / "labelstudio_export.json", [task for task, _scene in written])
        atomic_write_json(directory / "scenes.json", [scene for _task, scene in written], indent=1)
    return out
