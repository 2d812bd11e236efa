"""Shared fixtures: a small sample dataset generated once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cgc.datasets import read_instance_label_map
from cgc.sample import write_sample_dataset
from cgc.sample.annotators import true_boxes


def write_true_box_file(sample_dir: Path, out: Path) -> Path:
    """A box file holding the exact boxes of the true instances (the builder's best case)."""
    images, annotations = [], []
    for index, gt_path in enumerate(sorted((sample_dir / "gt").glob("*.png")), start=1):
        masks, (height, width) = read_instance_label_map(gt_path)
        images.append({"id": index, "file_name": f"{gt_path.stem}.jpg", "width": width, "height": height})
        for x1, y1, x2, y2 in true_boxes(masks):
            annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1]})
    out.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "salient"}]}))
    return out


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_dataset(tmp_path_factory.mktemp("sample") / "data", images=12, seed=7, progress=False)


@pytest.fixture(scope="session")
def true_box_file(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_true_box_file(sample_dir, tmp_path_factory.mktemp("boxes") / "boxes.json")
