"""The runnable examples in examples/, run as a user would (the Python one is in test_api.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CGC = f"{sys.executable} -m cgc.cli"


@pytest.mark.slow
def test_own_data_example_runs_on_its_stand_in_dataset(tmp_path: Path) -> None:
    out = tmp_path / "out"
    environment = os.environ | {"CGC": CGC, "ITERATIONS": "2", "STAND_IN_IMAGES": "4"}
    done = subprocess.run(["bash", str(EXAMPLES / "own_data.sh"), "--stand-in", str(out)], capture_output=True,
                          text=True, env=environment, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "dut-omron-style" / "DUT-OMRON-image").is_dir()
    assert json.loads((out / "weaklabels" / "annotations.json").read_text())["annotations"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"AP", "coco", "boxes_as_masks"} <= set(metrics)
    assert (out / "predictions" / "results.json").is_file() and (out / "predictions" / "overlays").is_dir()
    assert "Done: model" in done.stdout


def test_own_data_example_refuses_a_folder_without_the_layout(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(EXAMPLES / "own_data.sh"), str(tmp_path), str(tmp_path / "export.json"),
                           str(tmp_path / "out")], capture_output=True, text=True, env=os.environ | {"CGC": CGC})
    assert done.returncode == 1 and "DUT-OMRON-image: not found" in done.stderr
