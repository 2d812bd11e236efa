"""Shared fixtures: a small sample dataset generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from cgc.sample import write_sample_dataset
from helpers import write_true_box_file


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_dataset(tmp_path_factory.mktemp("sample") / "data", images=12, seed=7, progress=False)


@pytest.fixture(scope="session")
def true_box_file(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_true_box_file(sample_dir, tmp_path_factory.mktemp("boxes") / "boxes.json")


@pytest.fixture(scope="session")
def tiny_labels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Weak labels (annotations.json, image folder) for six 128x96 sample scenes, for training tests."""
    from cgc.weaklabels.builder import build_weak_labels

    root = tmp_path_factory.mktemp("tiny")
    sample = write_sample_dataset(root / "sample", images=6, seed=5, height=96, width=128, progress=False)
    boxes = write_true_box_file(sample, root / "boxes.json")
    build_weak_labels(sample / "imgs", sample / "masks", boxes, root / "weak", workers=1, progress=False)
    return root / "weak" / "annotations.json", sample / "imgs"

