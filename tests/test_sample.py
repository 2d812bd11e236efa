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


def test_same_seed_same_files_whatever_the_worker_count(tmp_path: Path) -> None:
    one = write_sample_dataset(tmp_path / "a", images=4, seed=11, workers=1, progress=False)
    two = write_sample_dataset(tmp_path / "b", images=4, seed=11, workers=2, progress=False)
    other = write_sample_dataset(tmp_path / "c", images=4, seed=12, workers=1, progress=False)
    assert digest(one) == digest(two) != digest(other)


def test_masks_are_the_union_of_disjoint_instances(sample_dir: Path) -> None:
    for mask_path in sorted((sample_dir / "masks").glob("*.png")):
        salient = read_binary_mask(mask_path)
        instances, size = read_instance_label_map(sample_dir / "gt" / mask_path.name)
        assert size == salient.shape == (300, 400)
        assert 1 <= len(instances) <= 5
        union = np.zeros_like(salient)
        for mask in instances:
            assert not (union & mask).any()
            union |= mask
        assert (union == salient).all()


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
