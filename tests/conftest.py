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
