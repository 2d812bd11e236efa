"""benchmarks/real_training.py end to end on one small shared real set at a toy size, then benchmarks/real_photos.py
on the model it trained, so that neither benchmark can rot (the benchmarks are not tests: their tables are in the docs)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import benchmark_module

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "real_training.py"
REAL = ROOT.parent / "shared" / "data" / "real"


@pytest.mark.slow
def test_real_training_benchmark_trains_calibrates_and_scores_on_one_set(tmp_path: Path) -> None:
    if not all((REAL / name / "annotations.json").is_file() for name in ("mugs", "pets-val")):
        pytest.skip(f"{REAL}: the shared real photographs (mugs, pets-val) are not here; CI has them")
    out = tmp_path / "rows.json"
    tiny = [f"--train-option={word}" for setting in ("network.min_size=96", "network.max_size=128",
                                                                "run.checkpoint_every=2", "label_update.start=0")
            for word in ("--set", setting)]
    rounds = ["--mask-head", "gfr", "--train-option=--update-every", "--train-option=1"]  # a label round each step
    done = subprocess.run([sys.executable, str(SCRIPT), "--real", str(REAL), "--sets", "mugs", "--labels",
                           "weak, masks", "--iterations", "2", "--work", str(tmp_path / "work"),
                           "--out", str(out), *tiny, *rounds], cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [row["labels"] for row in rows] == ["weak, masks"]
    for row in rows:
        assert row["command"][:4] == ["cgc", "train", "--preset", "cpu"] and "2" in row["command"]
        scores = row["scores"]["pets-val"]
        assert 0 <= scores["coco_mask_AP"] <= 100 and 0 <= scores["boxes_coco_AP"] <= 100
        # each label round scored against the true masks of the training set
        assert [entry["round"] for entry in row["label_rounds"]] == ["round_001", "round_002"]
        assert all(0 < entry["mean_iou"] <= 1 for entry in row["label_rounds"])
    assert (tmp_path / "work" / "mugs" / "weak-masks.json").is_file()  # only the kinds asked for were built
    assert not (tmp_path / "work" / "mugs" / "weak-boxes-alone.json").exists()
    assert not (tmp_path / "work" / "mugs" / "full.json").exists()
    assert "scored on pets-val" in done.stdout and "label rounds of 'weak, masks'" in done.stdout
    # what that model finds in the photographs of benchmarks/real_photos.py, and its figure for the docs
    run = next((tmp_path / "work" / "mugs").glob("run-*-weak-masks"))
    figure = tmp_path / "figure.jpg"
    shown = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "real_photos.py"), "--checkpoint", str(run),
                            "--device", "cpu", "--pictures", str(tmp_path / "overlays"), "--out",
                            str(tmp_path / "photos.json"), "--figure", str(figure)],
                           cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    photos = json.loads((tmp_path / "photos.json").read_text())["photos"]
    assert [photo["photo"] for photo in photos] == ["stereo_motorcycle", "coins", "clock"]
    assert len(list((tmp_path / "overlays").glob("*.jpg"))) == 6
    import cv2

    height, width = cv2.imread(str(figure)).shape[:2]
    assert height == 600 and width > 1000  # two rows of 300 pixels: the calibrated threshold, then 0.5
    # the same run's checkpoints after its last learning-rate step, averaged, calibrated and scored beside it
    averaged = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "checkpoint_average.py"), "--real", str(REAL),
                               "--out", str(tmp_path / "averaged.json"), str(run)],
                              cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert averaged.returncode == 0, averaged.stdout[-2000:] + averaged.stderr[-2000:]
    [row] = json.loads((tmp_path / "averaged.json").read_text())["rows"]
    assert row["last"]["pets-val"]["coco_mask_AP"] == scores["coco_mask_AP"]
    assert 0 <= row["averaged"]["pets-val"]["coco_mask_AP"] <= 100
    assert (run.with_name(run.name + "-averaged") / "checkpoints" / "checkpoint_0000002.pt").is_file()


def test_reuse_keeps_a_finished_run_that_has_no_record(tmp_path: Path) -> None:
    """--reuse once deleted an hour's run whose scores had been written elsewhere: it now refuses, in one line."""
    from cgc.checkpoint import checkpoint_path
    from cgc.config import TrainConfig, save_config

    benchmark = benchmark_module("real_training")
    experiments = benchmark_module("experiments")
    run = tmp_path / "run"
    run.mkdir()
    save_config(TrainConfig().changed(solver={"iterations": 6}), run / "config.json")
    checkpoint_path(run, 4).parent.mkdir()
    checkpoint_path(run, 4).write_bytes(b"")
    assert not experiments.finished_training(run)  # cut short at 4 of 6: redone, as before
    assert not experiments.finished_training(tmp_path / "absent")
    checkpoint_path(run, 6).write_bytes(b"")
    assert experiments.finished_training(run)
    with pytest.raises(SystemExit, match="finished training run without the scores of this command"):
        benchmark.train_calibrate_score(["train", "--out", str(run)], run, tmp_path, ["pets-val"], reuse=True)
    assert checkpoint_path(run, 6).is_file()


def test_checkpoint_average_means_the_weights_written_after_the_last_step(tmp_path: Path) -> None:
    """benchmarks/checkpoint_average.py: the checkpoints after the run's last learning-rate step, their float weights
    averaged, integer buffers and the config taken from the last."""
    import torch

    from cgc.checkpoint import save_checkpoint
    from cgc.config import TrainConfig, save_config

    benchmark = benchmark_module("checkpoint_average")
    settings = TrainConfig().changed(solver={"iterations": 30, "lr_steps": [15]})
    config = settings.to_json()
    run = tmp_path / "run"
    run.mkdir()
    save_config(settings, run / "config.json")  # as `cgc train` writes it beside the checkpoints
    for iteration, value in ((10, 100.0), (20, 1.0), (30, 3.0)):
        model = {"weight": torch.full((2,), value), "count": torch.tensor(iteration)}
        save_checkpoint(run, iteration, {"model": model, "config": config}, keep=5)
    paths = benchmark.checkpoints_after_last_step(run)
    assert [path.name for path in paths] == ["checkpoint_0000020.pt", "checkpoint_0000030.pt"]
    state = benchmark.averaged_state(paths)
    assert state["iteration"] == 30 and state["config"] == config
    assert torch.equal(state["model"]["weight"], torch.full((2,), 2.0))
    assert state["model"]["count"].item() == 30
