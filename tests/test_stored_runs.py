"""Run folders written by earlier versions of cgc still load and predict as they did.

`tests/data/stored-runs/NAME/` holds what a run folder of that version held, less the weights:
its `config.json`, the checkpoint's other entries, the name, shape and kind of every tensor of the
model's state (`tensors.json`), and what `cgc predict` wrote for one picture (`predictions.json`).
The weights are made again from the tensor list by a fixed rule (`stored_weights`), independent
of how the network is built today, so that they are exactly the weights the stored predictions came
from; a change to the network's layout, a setting's default or the checkpoint format shows here.

`python tests/test_stored_runs.py NAME` writes a new stored run from today's code (do it only when
a run folder's format deliberately changes, and keep the old ones).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from pycocotools import mask as mask_utils

from cgc.cli import cgc

STORED = Path(__file__).with_name("data") / "stored-runs"
RUNS = sorted(path.name for path in STORED.iterdir()) if STORED.is_dir() else []


def stored_weights(tensors: list[list]) -> dict[str, torch.Tensor]:
    """Weights for the listed tensors, in order, by a rule that does not depend on the network's code: batch-norm
    statistics as the identity, other vectors small, matrices and kernels He-scaled normal draws of one seeded
    generator."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, shape, dtype in tensors:
        if dtype != "float32":
            state[name] = torch.zeros(shape, dtype=getattr(torch, dtype))
        elif name.endswith("running_var") or (len(shape) == 1 and name.endswith("weight")):
            state[name] = torch.ones(shape)
        elif name.endswith("running_mean"):
            state[name] = torch.zeros(shape)
        elif len(shape) == 1:
            state[name] = 0.01 * torch.randn(shape, generator=generator)
        else:
            fan_in = int(np.prod(shape[1:]))
            state[name] = torch.randn(shape, generator=generator) / np.sqrt(fan_in)
    return state


def stored_picture() -> np.ndarray:
    """A 160 x 200 RGB picture with a few flat shapes on noise: something for the network to find."""
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 60, size=(160, 200, 3), dtype=np.uint8)
    picture[30:110, 20:90] = (200, 40, 40)
    picture[60:140, 110:180] = (40, 180, 60)
    picture[40:70, 140:170] = (230, 230, 40)
    return picture


def write_run(folder: Path, run: Path) -> None:
    """The run folder as that version wrote it: config.json and one checkpoint."""
    (run / "checkpoints").mkdir(parents=True)
    shutil.copyfile(folder / "config.json", run / "config.json")
    config = json.loads((folder / "config.json").read_text())
    checkpoint = json.loads((folder / "checkpoint.json").read_text())
    tensors = json.loads((folder / "tensors.json").read_text())
    torch.save({**checkpoint, "model": stored_weights(tensors), "config": config},
               run / "checkpoints" / f"checkpoint_{checkpoint['iteration']:07d}.pt")


def predict(run: Path, work: Path) -> list[dict]:
    from cgc.datasets.pictures import write_picture

    images = work / "images"
    images.mkdir()
    write_picture(images / "shapes.png", stored_picture())
    result = CliRunner().invoke(cgc, ["predict", "--checkpoint", str(run), "--images", str(images), "--out",
                                      str(work / "predicted"), "--score-thr", "0.05", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return json.loads((work / "predicted" / "results.json").read_text())


@pytest.mark.skipif(not RUNS, reason="no stored run folders in tests/data/stored-runs")
@pytest.mark.parametrize("name", RUNS)
def test_a_stored_run_folder_predicts_as_it_did(name, tmp_path):
    folder = STORED / name
    write_run(folder, tmp_path / "run")
    predicted = predict(tmp_path / "run", tmp_path)
    expected = json.loads((folder / "predictions.json").read_text())
    assert len(expected) > 0  # the stored run finds something, so masks and scores are compared
    assert len(predicted) == len(expected)
    for new, old in zip(predicted, expected):
        assert new["score"] == pytest.approx(old["score"], abs=1e-4)
        assert new["bbox"] == pytest.approx(old["bbox"], abs=0.05)
        overlap = mask_utils.iou([new["segmentation"]], [old["segmentation"]], [0])[0][0]
        assert overlap >= 0.99, f"instance of score {old['score']}: mask IoU {overlap:.3f} with the stored one"


def store_run(name: str, preset: str = "default", **sections) -> None:
    """Write tests/data/stored-runs/NAME from today's code (see the module docstring)."""
    import tempfile

    from cgc.config import resolve_config, save_config
    from cgc.model.factory import model_from_config

    folder = STORED / name
    folder.mkdir(parents=True)
    config = resolve_config(preset, **sections)
    save_config(config, folder / "config.json")
    model = model_from_config(config, load_backbone_weights=False)
    tensors = [[key, list(value.shape), str(value.dtype).removeprefix("torch.")]
               for key, value in model.state_dict().items()]
    (folder / "tensors.json").write_text(json.dumps(tensors))
    (folder / "checkpoint.json").write_text(json.dumps({"iteration": 2}))
    with tempfile.TemporaryDirectory() as work:
        write_run(folder, Path(work) / "run")
        predictions = predict(Path(work) / "run", Path(work))
    (folder / "predictions.json").write_text(json.dumps(predictions))
    print(f"{folder}: {len(predictions)} predictions")


if __name__ == "__main__":
    SMALL = {"backbone_weights": None, "fpn_channels": 16, "min_size": 128, "max_size": 160,
             "rpn": {"post_nms_top_n_test": 100}}
    store_run(sys.argv[1] + "-gfr", network=SMALL | {"backbone": "mobilenet_v2", "mask": {"name": "gfr", "channels": 16}})
    store_run(sys.argv[1] + "-roialign", preset="cpu", network=SMALL | {"mask": {"name": "roialign", "channels": 16}})
