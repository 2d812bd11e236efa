"""The sample generator: deterministic, consistent masks, realistic annotator noise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from cgc.datasets import read_binary_mask, read_instance_label_map
from cgc.sample import generate_scene, write_sample_dataset


def digest(directory: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            sha.update(path.relative_to(directory).as_posix().encode())
            sha.update(path.read_bytes())
    return sha.hexdigest()


def test_flat_scenes_same_seed_same_files_whatever_the_worker_count(tmp_path: Path) -> None:
    one = write_sample_dataset(tmp_path / "a", images=4, seed=11, workers=1, progress=False, style="flat")
    two = write_sample_dataset(tmp_path / "b", images=4, seed=11, workers=2, progress=False, style="flat")
    other = write_sample_dataset(tmp_path / "c", images=4, seed=12, workers=1, progress=False, style="flat")
    assert digest(one) == digest(two) != digest(other)


def test_flat_masks_are_the_union_of_disjoint_instances(tmp_path: Path) -> None:
    sample = write_sample_dataset(tmp_path / "flat", images=8, seed=7, progress=False, style="flat")
    for mask_path in sorted((sample / "masks").glob("*.png")):
        salient = read_binary_mask(mask_path)
        instances, size = read_instance_label_map(sample / "gt" / mask_path.name)
        assert size == salient.shape == (300, 400)
        assert 1 <= len(instances) <= 5
        union = np.zeros_like(salient)
        for mask in instances:
            assert not (union & mask).any()
            union |= mask
        assert (union == salient).all()


def test_the_default_scenes_are_photo_style(sample_dir: Path) -> None:
    assert {scene["style"] for scene in json.loads((sample_dir / "scenes.json").read_text())} == {"photo"}


def test_scenes_include_touching_instances() -> None:
    touching = 0
    for index in range(30):
        scene = generate_scene(np.random.SeedSequence([5, index]))
        labels = np.zeros(scene.image.shape[:2], int)
        for number, mask in enumerate(scene.instances, start=1):
            labels[mask] = number
        horizontal = (labels[:, 1:] != labels[:, :-1]) & (labels[:, 1:] > 0) & (labels[:, :-1] > 0)
        touching += bool(horizontal.any())
    assert touching >= 5


def test_export_has_five_annotators_per_task(sample_dir: Path) -> None:
    tasks = json.loads((sample_dir / "labelstudio_export.json").read_text())
    assert len(tasks) == 12
    for task in tasks:
        assert [a["completed_by"] for a in task["annotations"]] == [1, 2, 3, 4, 5]
        assert task["data"]["image"].startswith("/data/upload/1/")
        for annotation in task["annotations"]:
            for result in annotation["result"]:
                value = result["value"]
                assert result["type"] == "rectanglelabels" and value["rectanglelabels"] == ["salient"]
                assert 0 <= value["x"] and value["x"] + value["width"] <= 100 + 1e-9
                assert (result["original_width"], result["original_height"]) == (400, 300)


# ---- photo-style scenes ---------------------------------------------------------------------


def test_photo_scenes_same_seed_same_files_whatever_the_worker_count(tmp_path: Path) -> None:
    one = write_sample_dataset(tmp_path / "a", images=4, seed=3, workers=1, progress=False, style="photo")
    two = write_sample_dataset(tmp_path / "b", images=4, seed=3, workers=2, progress=False, style="photo")
    other = write_sample_dataset(tmp_path / "c", images=4, seed=4, workers=1, progress=False, style="photo")
    assert digest(one) == digest(two) != digest(other)
    scenes = json.loads((one / "scenes.json").read_text())
    assert [scene["file_name"] for scene in scenes] == [f"sample_{i:05d}.jpg" for i in range(1, 5)]
    assert {scene["style"] for scene in scenes} == {"photo"}
    for scene in scenes:  # instance numbers of gt/, only in low-contrast scenes
        assert scene["camouflaged"] == ([1] if scene["kind"] == "low-contrast" else [])


def test_the_camouflaged_instance_looks_like_its_surroundings() -> None:
    """Low-contrast scenes record which instance wears the background's own texture: the one that differs least
    in colour from the pixels around it."""
    import cv2

    from cgc.sample.photo import generate_photo_scene

    def contrast(scene, mask: np.ndarray) -> float:
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~np.logical_or.reduce(
            scene.instances)
        return float(np.abs(scene.image[mask].mean(0) - scene.image[ring].mean(0)).sum())

    camouflaged, others = [], []
    for index in range(60):
        scene = generate_photo_scene(np.random.SeedSequence([11, index]), height=150, width=200)
        assert scene.camouflaged == ((0,) if scene.kind == "low-contrast" else ())
        for number, mask in enumerate(scene.instances if scene.kind == "low-contrast" else []):
            (camouflaged if number in scene.camouflaged else others).append(contrast(scene, mask))
    assert len(camouflaged) >= 5 and len(others) >= 5
    assert np.median(camouflaged) < 0.5 * np.median(others)


def test_photo_scenes_cover_every_hard_case_with_exact_instances_and_imperfect_masks() -> None:
    from cgc.sample.photo import SCENE_KINDS, generate_photo_scene

    kinds, ious = set(), []
    for index in range(40):
        scene = generate_photo_scene(np.random.SeedSequence([9, index]), height=150, width=200)
        kinds.add(scene.kind)
        union = np.logical_or.reduce(scene.instances)
        assert all(mask.any() for mask in scene.instances)
        assert not any((a & b).any() for i, a in enumerate(scene.instances) for b in scene.instances[i + 1:])
        ious.append((union & scene.salient_mask).sum() / (union | scene.salient_mask).sum())
        if scene.kind in ("overlapping", "enclosed", "resting-on"):
            assert len(scene.instances) == 2
    assert kinds == set(SCENE_KINDS)
    # the SOD mask has real ground truth's defects, yet stays close to the exact union
    assert min(ious) > 0.8 and float(np.mean(ious)) < 0.995


def test_enclosed_and_resting_on_scenes_put_one_instance_inside_the_others_box() -> None:
    from cgc.sample.annotators import true_boxes
    from cgc.sample.photo import generate_photo_scene

    checked = 0
    for index in range(60):
        scene = generate_photo_scene(np.random.SeedSequence([5, index]), height=150, width=200)
        if scene.kind not in ("enclosed", "resting-on"):
            continue
        (bx0, by0, bx1, by1), (sx0, sy0, sx1, sy1) = true_boxes(scene.instances)
        overlap = max(0, min(bx1, sx1) - max(bx0, sx0)) * max(0, min(by1, sy1) - max(by0, sy0))
        assert overlap > 0.3 * (sx1 - sx0) * (sy1 - sy0), scene.kind  # the front one sits largely in the big box
        checked += 1
    assert checked >= 10


def test_cli_sample_style_photo(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cgc.cli import cgc

    result = CliRunner().invoke(cgc, ["sample", "--out", str(tmp_path / "s"), "--images", "2", "--style", "photo",
                                      "--width", "96", "--height", "64", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert [scene["style"] for scene in json.loads((tmp_path / "s" / "scenes.json").read_text())] == ["photo", "photo"]
    assert read_binary_mask(tmp_path / "s" / "masks" / "sample_00001.png").shape == (64, 96)
