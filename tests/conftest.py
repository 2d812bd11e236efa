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
    from cgc.weaklabels.builder import write_weak_labels

    root = tmp_path_factory.mktemp("tiny")
    sample = write_sample_dataset(root / "sample", images=6, seed=5, height=96, width=128, progress=False)
    boxes = write_true_box_file(sample, root / "boxes.json")
    write_weak_labels(sample / "imgs", sample / "masks", boxes, root / "weak", workers=1, progress=False)
    return root / "weak" / "annotations.json", sample / "imgs"



@pytest.fixture(autouse=True)
def pixel_limit_stays_in_its_test():
    """`cgc --max-pixels N` sets CGC_MAX_PIXELS for the worker processes it starts; in-process (CliRunner) that
    would leak into the tests run after it."""
    import os

    from cgc.datasets.pictures import MAX_PIXELS_ENV

    before = os.environ.get(MAX_PIXELS_ENV)
    yield
    if before is None:
        os.environ.pop(MAX_PIXELS_ENV, None)
    else:
        os.environ[MAX_PIXELS_ENV] = before
