"""The Python API (`import cgc`) and examples/python_api.py, end to end on tiny data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cgc
from cgc.cli import cgc as cgc_command
from cgc.inference import Prediction
from cgc.settings import merged
from helpers import TINY_TRAINING, short_run

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def api_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The pipeline through the API: sample scenes -> boxes -> weak labels -> two training iterations."""
    from cgc.sample import write_sample_dataset

    root = tmp_path_factory.mktemp("api")
    sample = write_sample_dataset(root / "sample", images=4, seed=3, height=96, width=128, progress=False)
    report = cgc.import_boxes(sample / "labelstudio_export.json", root / "boxes.json")
    assert report["counts"]["consensus_boxes_kept"] > 0
    summary = cgc.build_weak_labels(sample / "imgs", sample / "masks", root / "boxes.json", root / "weak",
                                    workers=1, progress=False)
    assert summary.instances_kept > 0
    result = cgc.train(root / "run", data=root / "weak" / "annotations.json", images=sample / "imgs", preset="cpu",
                       progress=False, **merged(TINY_TRAINING, short_run(2)))
    assert result.iterations == 2
    truth = root / "truth.json"
    done = CliRunner().invoke(cgc_command, ["export", "coco", "--format", "ilso", "--root", str(sample), "--out",
                                            str(truth)])
    assert done.exit_code == 0, done.output
    return {"run": root / "run", "images": sample / "imgs", "truth": truth, "root": root}


def test_help_shows_the_api() -> None:
    done = subprocess.run([sys.executable, "-c", "import cgc; help(cgc)"], capture_output=True, text=True, check=True)
    for name in cgc.__all__:
        assert name in done.stdout


def test_a_loaded_model_predicts_what_predict_writes(api_run: dict[str, Path]) -> None:
    model = cgc.load_model(api_run["run"], device="cpu", score_threshold=0.0)
    picture = sorted(api_run["images"].iterdir())[0]
    prediction = model.predict(picture)
    assert len(prediction.scores) > 0 and prediction.masks.dtype == bool
    assert prediction.masks.sum(axis=0).max() <= 1  # one instance per pixel, as `cgc predict` writes
    assert np.all(np.diff(prediction.scores) <= 0)
    assert model.overlay(picture, prediction).shape == (96, 128, 3)
    nothing = Prediction.from_masks(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 96, 128), bool))
    rgb = cgc.api.as_rgb(picture)
    assert np.array_equal(model.overlay(picture, nothing), rgb)  # RGB in, RGB out: nothing drawn, nothing changed


def test_evaluate_gives_what_cgc_eval_prints(api_run: dict[str, Path], tmp_path: Path) -> None:
    """The command runs the API's own function, so the two cannot drift apart."""
    ours = cgc.evaluate(api_run["truth"], checkpoint=api_run["run"], images=api_run["images"], device="cpu",
                        progress=False)
    out = tmp_path / "metrics.json"
    done = CliRunner().invoke(cgc_command, ["eval", "--checkpoint", str(api_run["run"]), "--images",
                                            str(api_run["images"]), "--data", str(api_run["truth"]), "--device", "cpu",
                                            "--out", str(out)])
    assert done.exit_code == 0, done.output
    printed = json.loads(out.read_text())
    for key in ("AP", "AP_r50", "AP_r70", "predictions"):
        assert printed[key] == ours[key]
    assert printed["coco"]["AP"] == ours["coco"]["AP"]
    from cgc.errors import InputError

    with pytest.raises(InputError, match="either"):
        cgc.evaluate(api_run["truth"])


def test_training_without_labels_is_a_clear_error(tmp_path: Path) -> None:
    from cgc.errors import InputError

    with pytest.raises(InputError, match="weak labels"):
        cgc.train(tmp_path / "run", preset="cpu")


def test_the_data_section_is_given_whole_or_as_the_label_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr("cgc.training.engine.train", lambda config, resume, progress: seen.append(config))
    cgc.train(tmp_path / "run", data={"annotations": "weak.json", "images": "imgs", "colour_jitter": 0.3}, preset="cpu")
    cgc.train(tmp_path / "run", data="weak.json", images="imgs", preset="cpu", solver={"iterations": 3})
    assert (seen[0].data.annotations, seen[0].data.images, seen[0].data.colour_jitter) == ("weak.json", "imgs", 0.3)
    assert (seen[1].data.annotations, seen[1].data.colour_jitter, seen[1].solver.iterations) == ("weak.json", 0.0, 3)


def test_python_api_example_runs(api_run: dict[str, Path], tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "python_api.py"), "--checkpoint", str(api_run["run"]),
                           "--images", str(api_run["images"]), "--truth", str(api_run["truth"]), "--out",
                           str(tmp_path / "out"), "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "salient instances at score" in done.stdout and "COCO mask AP" in done.stdout
    assert len(list((tmp_path / "out").glob("*-overlay.png"))) == 1
