"""The label-update scheme in training: rounds on disk, the rule, L_upd, resume, the CRF pool's shutdown and errors."""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import cgc.refine.crf as crf_module
from cgc.coco import decode_mask, encode_mask
from cgc.errors import InputError
from cgc.model import NETWORK, build_cgcnet, changed
from cgc.model.roi_heads import InstanceMap, LabelUpdateRequest, label_update_loss
from cgc.refine.instance_update import UpdateJob, decide_instance, label_window_core, map_to_image
from cgc.refine.update_rule import k1 as k1_numpy
from cgc.refine.update_rule import should_replace
from cgc.checkpoint import load_checkpoint
from cgc.config import resolve_config
from cgc.settings import merged
from cgc.training.data import batch_requests, last_slots
from cgc.training.engine import loader_segments, train
from cgc.training.crf_pool import WORKER_NICENESS, CRFPool, LabelUpdateError
from helpers import rectangle, short_run, tiny_config

GFR = {"mask": {"name": "gfr"}}  # the cpu preset's network with the head the label update needs
SCHEME = short_run(4, 3, label_update={"every": 2, "start": 1, "crf_workers": 1, "weight": 1.0})


def metrics(run: Path) -> dict[int, dict[str, str]]:
    with open(run / "metrics.csv", newline="") as handle:
        return {int(row["iteration"]): row for row in csv.DictReader(handle)}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def straight_run(tiny_labels: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Four iterations with the scheme on (real CRF worker pool): rounds after iterations 2 and 4."""
    before = digest(tiny_labels[0])
    run = tmp_path_factory.mktemp("straight") / "run"
    train(tiny_config(tiny_labels, run, **SCHEME), progress=False)
    return run, before


# --------------------------------------------------------------------------- pieces


def test_last_slots_are_the_last_sightings_in_the_window() -> None:
    size, seed, batch, start, stop = 5, 3, 2, 4, 9
    expected: dict[int, int] = {}
    for iteration in range(start, stop):
        for position, request in enumerate(batch_requests(size, seed, iteration, batch, 0.5)):
            expected[request.index] = iteration * batch + position
    assert last_slots(size, seed, batch, start, stop) == expected


def test_loader_is_cut_at_round_boundaries() -> None:
    config = resolve_config("cpu", solver={"iterations": 7}, label_update={"every": 3}, network=GFR)
    assert loader_segments(config, 0) == [(0, 3), (3, 6), (6, 7)]
    assert loader_segments(config, 4) == [(4, 6), (6, 7)]
    assert loader_segments(config.changed(label_update={"every": 0}), 4) == [(4, 7)]
    assert config.label_update.start == 1  # a quarter of the run, fixed in config.json so that resuming longer keeps it


def test_map_to_image_undoes_stride_resize_and_flip() -> None:
    cells = np.zeros((6, 8), np.float16)
    cells[1:3, 0:2] = 1.0  # top-left in the flipped, resized (12 x 15) image
    full = map_to_image(cells, stride=2, resized_size=(12, 15), flipped=True, image_size=(24, 30))
    assert full.shape == (24, 30) and full.dtype == np.float32
    ys, xs = np.nonzero(full >= 0.5)
    assert xs.min() > 20 and ys.min() >= 3 and ys.max() <= 12  # mirrored back to the right-hand side


def test_worker_decision_follows_the_rule_on_a_real_crf(tmp_path: Path) -> None:
    import cv2

    rgb = np.full((48, 64, 3), 60, np.uint8)
    truth = rectangle((48, 64), 16, 12, 44, 36)
    rgb[truth] = (220, 60, 40)
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    r = cv2.GaussianBlur(np.where(truth, 0.8, 0.1).astype(np.float32), (0, 0), 2)

    def decide(label: np.ndarray):
        job = UpdateJob(round=1, slot=0, iteration=0, image_id=1, annotation_id=7, picture=str(tmp_path / "a.png"),
                        probabilities=r.astype(np.float16), stride=1, resized_size=(48, 64), flipped=False, label=encode_mask(label))
        decision = decide_instance(job)
        assert decision.replaced == should_replace(decision.k1, decision.k2, 0.05)
        assert decision.k1 == pytest.approx(k1_numpy(r.astype(np.float16).astype(np.float32), label.astype(np.float32)), rel=1e-4)
        return decision

    grown = decide(rectangle((48, 64), 18, 14, 42, 34))  # the label is too small: the CRF grows it to the red box
    assert grown.replaced and grown.k2 < grown.k1
    new = decode_mask(grown.segmentation, 48, 64)
    assert grown.area_after == new.sum() and abs(int(new.sum()) - int(truth.sum())) < 0.1 * truth.sum()
    assert 0 <= grown.k2_next < grown.k1  # K2(R_f, C_next): what L_upd uses from the next round on
    eroded = decide(rectangle((48, 64), 12, 8, 48, 40))  # too big: the CRF would erode labelled pixels, so C stays
    assert not eroded.replaced and eroded.segmentation is None and eroded.area_after == eroded.area_before


def test_guards_reach_the_worker_and_keep_a_label_algorithm_1_would_replace(tmp_path: Path) -> None:
    """A red object touching another labelled instance: the CRF's map takes both, and plain Algorithm 1 hands the
    neighbour's pixels to this label; with the shared-pixels guard the worker keeps the label, as the two labels
    claim no pixel in common."""
    import cv2

    from cgc.refine.update_guards import UpdateGuards

    rgb = np.full((48, 64, 3), 60, np.uint8)
    mine, neighbour = rectangle((48, 64), 8, 12, 30, 36), rectangle((48, 64), 30, 12, 56, 36)
    rgb[mine | neighbour] = (220, 60, 40)  # one colour: the CRF cannot tell them apart
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    r = np.where(mine | neighbour, 0.8, 0.1).astype(np.float16)

    def decide(**guarded) -> object:
        return decide_instance(UpdateJob(round=1, slot=0, iteration=0, image_id=1, annotation_id=7,
                                         picture=str(tmp_path / "a.png"), probabilities=r, stride=1,
                                         resized_size=(48, 64), flipped=False, label=encode_mask(mine), **guarded))

    plain = decide()
    assert plain.replaced and decode_mask(plain.segmentation, 48, 64)[neighbour].mean() > 0.5
    guarded = decide(guards=UpdateGuards(shared_only=True), others=[encode_mask(neighbour)])
    assert not guarded.replaced and guarded.refused_by == "unchanged under the guards"
    assert guarded.segmentation is None and guarded.area_after == guarded.area_before


def test_worker_crf_window_follows_the_label_box_not_a_diffuse_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.full((300, 400, 3), 90, np.uint8))
    label = rectangle((300, 400), 150, 100, 210, 160)
    windows: list[tuple[int, int]] = []
    real_crf = crf_module.crf_foreground

    def recording_crf(prob: np.ndarray, rgb: np.ndarray, params: object) -> np.ndarray:
        windows.append(prob.shape)
        return real_crf(prob, rgb, params)

    monkeypatch.setattr(crf_module, "crf_foreground", recording_crf)
    diffuse = np.full((300, 400), 0.2, np.float16)  # early in training: > 0.05 everywhere
    job = UpdateJob(round=1, slot=0, iteration=0, image_id=1, annotation_id=7, picture=str(tmp_path / "a.png"),
                    probabilities=diffuse, stride=1, resized_size=(300, 400), flipped=False, label=encode_mask(label))
    decide_instance(job)
    assert label_window_core(label) == (150, 100, 210, 160)
    assert windows == [(60 + 2 * 50, 60 + 2 * 50)]  # the label's box and a 50-pixel margin, not the whole 300x400 image
    assert label_window_core(np.zeros((4, 4), bool)) is None


def test_crf_workers_run_below_the_trainer_in_priority(tmp_path: Path) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    pool = CRFPool(1)
    try:
        pool.submit(job_for(tmp_path / "a.png"))
        pool.wait_all(timeout=120)
        (pid,) = pool.worker_pids()
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + WORKER_NICENESS)
    finally:
        pool.close()


# --------------------------------------------------------------------------- the RoI heads' part


def synthetic_batch() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images, targets = [], []
    for index, boxes in enumerate([[(8, 10, 50, 70), (60, 20, 120, 90)], [(20, 15, 90, 85)]]):
        image = 0.2 * torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(index))
        masks = torch.zeros(len(boxes), 96, 128, dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            masks[i, y1:y2, x1:x2] = 1
            image[:, y1:y2, x1:x2] = torch.tensor([0.9, 0.5 + 0.2 * i, 0.2])[:, None, None]
        images.append(image)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.ones(len(boxes), dtype=torch.int64),
                        "masks": masks, "image_id": torch.tensor(index + 1),
                        "annotation_ids": torch.tensor([10 * (index + 1) + i for i in range(len(boxes))])})
    return images, targets


def test_heads_hand_out_one_map_per_instance_and_the_update_loss_on_request() -> None:
    torch.manual_seed(0)
    model = build_cgcnet(changed(NETWORK, backbone="mobilenet_v2", backbone_weights=None, trainable_backbone_layers=5,
                                 min_size=96, max_size=128, rpn={"anchor_sizes": (16, 32, 64, 128, 256)},
                                 box={"batch_size_per_image": 64}, mask={"channels": 16, "proposals_per_image": 8}))
    model.train()
    images, targets = synthetic_batch()
    heads = model.roi_heads
    with torch.no_grad():  # every cell above 0.5, so that each instance's best map overlaps its label
        heads.mask_head.predictor.mask_fcn_logits.bias.fill_(4.0)

    found = {}

    def forward(sigma: float | None, collect: bool, k2: list[list[float]] | None = None) -> dict[str, torch.Tensor]:
        batch = [dict(t) for t in targets]
        if k2 is not None:
            for target, values in zip(batch, k2):
                target["label_k2"] = torch.tensor(values)
        torch.manual_seed(1)
        losses, found["maps"] = model(images, batch, label_update=LabelUpdateRequest(collect, sigma))
        return losses

    plain = forward(None, False)
    assert "loss_upd" not in plain and found["maps"] == []  # lambda = 0: no L_upd term, nothing kept
    torch.manual_seed(1)
    assert {key: value.item() for key, value in model(images, [dict(t) for t in targets]).items()} == \
        {key: value.item() for key, value in plain.items()}  # a forward without a request: the same losses, alone
    with_loss = forward(1e-6, True)
    assert set(with_loss) == set(plain) | {"loss_upd"}
    for key in plain:
        assert with_loss[key].item() == pytest.approx(plain[key].item(), rel=1e-6)  # the rest of the loss is untouched
    maps: list[InstanceMap] = found["maps"]
    ids = [(m.image_id, m.annotation_id) for m in maps]
    assert len(ids) == len(set(ids)) and ids and all(a in (10, 11, 20) for _, a in ids)
    for m in maps:
        assert m.probabilities.dtype == torch.float16 and m.probabilities.device.type == "cpu"
        assert not m.probabilities.requires_grad and 0 < m.match_iou <= 1 and m.stride == 2
        assert m.probabilities.shape[0] * m.stride >= m.image_size[0]

    # K2 only shifts the value: by the cell-weighted mean of the known K2s (unknown: 0)
    shifted = forward(1e-6, False, [[0.5, float("nan")], [0.25]])
    assert shifted["loss_upd"].item() > with_loss["loss_upd"].item()
    # ... and is the mean K2 of the maps' instances minus K1 over every cell of every map
    logits = torch.randn(3, 1, 4, 4, requires_grad=True)
    cells = torch.rand(3, 1, 4, 4)
    ours = label_update_loss([logits], [cells], [torch.tensor([0, 0, 1])], [{"label_k2": torch.tensor([0.3, 0.1])}], 1e-6)
    k1_value = k1_numpy(torch.sigmoid(logits).detach().numpy(), cells.numpy(), 1e-6)
    assert ours.item() == pytest.approx((0.3 * 2 + 0.1) / 3 - k1_value, rel=1e-5)


# --------------------------------------------------------------------------- training runs


@pytest.mark.slow
def test_rounds_change_only_what_the_log_says(straight_run: tuple[Path, str], tiny_labels: tuple[Path, Path]) -> None:
    run, before = straight_run
    assert digest(tiny_labels[0]) == before  # the original weak labels are never written
    labels = run / "labels"
    assert sorted(p.name for p in labels.iterdir()) == ["round_001.json", "round_001.log.json", "round_002.json", "round_002.log.json"]
    previous = json.loads(tiny_labels[0].read_text())
    for number in (1, 2):
        current = json.loads((labels / f"round_{number:03d}.json").read_text())
        log = json.loads((labels / f"round_{number:03d}.log.json").read_text())
        assert log["round"] == number and log["iteration"] == 2 * number and log["counts"]["instances"] == len(current["annotations"])
        assert {k: v for k, v in current.items() if k != "annotations"} == {k: v for k, v in previous.items() if k != "annotations"}
        old = {a["id"]: a for a in previous["annotations"]}
        changed = {a["id"] for a in current["annotations"] if a != old[a["id"]]}
        assert changed == set(log["changed"]) <= {e["annotation_id"] for e in log["instances"] if e["replaced"]}
        assert log["counts"]["changed"] == len(changed)
        for entry in log["instances"]:
            assert entry["replaced"] == (should_replace(entry["k1"], entry["k2"], log["phi"]) and not entry["refined_empty"])
            assert entry["k2_minus_k1"] == pytest.approx(entry["k2"] - entry["k1"])
        assert log["counts"]["decided"] == len(log["instances"])
        assert log["counts"]["replaced"] == sum(e["replaced"] for e in log["instances"])
        previous = current
    assert json.loads((labels / "round_001.log.json").read_text())["window"] == [1, 2]
    rows = metrics(run)
    assert float(rows[1]["loss_upd"]) == 0.0  # before update_start: no term
    for iteration in (2, 3, 4):
        row = rows[iteration]
        parts = sum(float(value) for key, value in row.items() if key.startswith("loss_"))
        assert float(row["loss"]) == pytest.approx(parts, rel=1e-5)  # lambda = 1
        assert float(row["loss_upd"]) != 0.0
    state = load_checkpoint(run / "checkpoints" / "checkpoint_0000004.pt")["label_update"]
    assert state["round"] == 2 and state["label_file"] == "labels/round_002.json"
    assert multiprocessing.active_children() == []


@pytest.mark.slow
def test_resume_between_rounds_continues_with_the_latest_round(straight_run: tuple[Path, str], tiny_labels: tuple[Path, Path],
                                                               tmp_path: Path) -> None:
    straight = straight_run[0]
    halted = tmp_path / "halted"
    config = tiny_config(tiny_labels, halted, **merged(SCHEME, {"solver": {"iterations": 3}}))
    train(config, progress=False)  # checkpoint after 3: between round 1 (after 2) and round 2 (after 4)
    state = load_checkpoint(halted / "checkpoints" / "checkpoint_0000003.pt")["label_update"]
    assert state["round"] == 1 and state["label_file"] == "labels/round_001.json"
    assert all(d["round"] == 2 and d["iteration"] == 2 for d in state["decisions"])  # round 2's, decided before the stop
    train(config.changed(solver={"iterations": 4}), resume=True, progress=False)
    expected, resumed = metrics(straight), metrics(halted)
    assert sorted(resumed) == [1, 2, 3, 4]
    for key in ("loss", "loss_mask", "loss_upd"):
        assert float(resumed[4][key]) == pytest.approx(float(expected[4][key]), rel=1e-5, abs=1e-6)
    for name in ("round_001.json", "round_002.json", "round_002.log.json"):
        assert json.loads((halted / "labels" / name).read_text()) == json.loads((straight / "labels" / name).read_text())


@pytest.mark.slow
def test_replaced_labels_are_trained_on_and_lambda_zero_drops_the_term(tiny_labels: tuple[Path, Path], tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process CRF (crf_workers=0) replaced by a stand-in that grows R, so that labels do change."""
    import cgc.refine.instance_update as instance_update
    import cgc.training.label_update as label_update

    monkeypatch.setattr(instance_update, "refine_instance", lambda prob, rgb, params, **window: np.clip(prob * 4, 0, 1).astype(np.float32))
    run = tmp_path / "run"
    config = tiny_config(tiny_labels, run, **short_run(3, label_update={"every": 2, "start": 0, "crf_workers": 0,
                                                                         "weight": 0.0, "phi": 100.0}))
    seen: list[list[dict]] = []
    real_replace = label_update.LabelUpdater.end_of_iteration

    def spy(self, done):
        path = real_replace(self, done)
        if path is not None:
            seen.append([dict(record[2][0]) for record in self.dataset.records])
        return path

    monkeypatch.setattr(label_update.LabelUpdater, "end_of_iteration", spy)
    train(config, progress=False)
    log = json.loads((run / "labels" / "round_001.log.json").read_text())
    assert log["counts"]["replaced"] > 0 and all(e["replaced"] != e["refined_empty"] for e in log["instances"])
    round_1 = {a["id"]: a for a in json.loads((run / "labels" / "round_001.json").read_text())["annotations"]}
    assert all(round_1[a["id"]] == a for a in seen[0])  # the dataset trains on the round just written
    original = {a["id"]: a for a in json.loads(tiny_labels[0].read_text())["annotations"]}
    assert all(round_1[i]["segmentation"] != original[i]["segmentation"] for i in log["changed"])
    rows = metrics(run)
    assert all("loss_upd" not in row for row in rows.values())  # lambda = 0: no L_upd in the loss dict


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["interrupt", "nan"])
def test_pool_is_shut_down_when_training_stops_early(tiny_labels: tuple[Path, Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    import cgc.training.engine as engine
    import cgc.training.label_update as label_update
    from cgc.training.engine import TrainingDiverged

    real_factory, pools = engine.model_from_config, []
    real_init = label_update.CRFPool.__init__

    def recording_init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        pools.append(self)

    def poisoned(config, **options):
        model = real_factory(config, **options)
        forward, calls = model.forward, {"n": 0}

        def forward_then_fail(*args, **kwargs):
            losses, instance_maps = forward(*args, **kwargs)  # every iteration asks for maps: start 0
            calls["n"] += 1
            if calls["n"] == 2:  # iteration 1: jobs of iteration 0 are in the pool
                if failure == "interrupt":
                    raise KeyboardInterrupt
                losses["loss_mask"] = losses["loss_mask"] * float("nan")
            return losses, instance_maps

        model.forward = forward_then_fail
        return model

    monkeypatch.setattr(engine, "model_from_config", poisoned)
    monkeypatch.setattr(label_update.CRFPool, "__init__", recording_init)
    config = tiny_config(tiny_labels, tmp_path / "run", **short_run(4, 10, label_update={"every": 4, "start": 0}))
    with pytest.raises(KeyboardInterrupt if failure == "interrupt" else TrainingDiverged):
        train(config, progress=False)
    assert len(pools) == 1 and pools[0].executor is None and pools[0].pending == []
    seen_pids = pools[0].worker_pids()  # every worker that started, as it reported itself
    assert seen_pids and multiprocessing.active_children() == []
    for pid in seen_pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: not even a zombie
    assert not (tmp_path / "run" / "labels").exists()  # no round was due: nothing half-written


# --------------------------------------------------------------------------- worker failures


def job_for(picture: Path, annotation_id: int = 3) -> UpdateJob:
    return UpdateJob(round=1, slot=0, iteration=0, image_id=1, annotation_id=annotation_id, picture=str(picture),
                     probabilities=np.full((8, 8), 0.6, np.float16), stride=1, resized_size=(8, 8), flipped=False,
                     label=encode_mask(rectangle((8, 8), 2, 2, 6, 6)))


def test_a_failing_worker_job_is_a_clear_error(tmp_path: Path) -> None:
    pool = CRFPool(1)
    try:
        pool.submit(job_for(tmp_path / "missing.png", annotation_id=42))
        tick = time.monotonic()
        with pytest.raises(InputError, match=r"annotation 42 of image 1: .*missing\.png: file not found"):
            pool.wait_all(timeout=120)
        assert time.monotonic() - tick < 120
    finally:
        pool.close()
    assert multiprocessing.active_children() == []


def test_a_dead_worker_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    pool = CRFPool(1)
    try:
        pool.submit(job_for(tmp_path / "a.png"))
        pool.wait_all(timeout=120)  # the worker is up and working
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(LabelUpdateError, match="worker process died") as failure:
            for _ in range(3):  # the pool notices the death at the next submit or wait
                pool.submit(job_for(tmp_path / "a.png"))
                pool.wait_all(timeout=120)
        assert not isinstance(failure.value, InputError)  # a crash is not the user's mistake: it keeps its traceback
    finally:
        pool.close()
    assert multiprocessing.active_children() == []


def test_closing_ends_a_worker_stuck_in_a_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cgc.training.crf_pool as crf_pool

    monkeypatch.setattr(crf_pool, "CLOSE_GRACE_SECONDS", 0.5)
    os.mkfifo(tmp_path / "stuck.png")  # opening it for reading blocks until a writer comes: the job hangs
    pool = CRFPool(1)
    try:
        pool.submit(job_for(tmp_path / "stuck.png"))
        deadline = time.monotonic() + 60
        while not pool.worker_pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        (pid,) = pool.worker_pids()
    finally:
        tick = time.monotonic()
        pool.close()
    assert time.monotonic() - tick < 10
    assert multiprocessing.active_children() == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # ended and reaped


def test_tuned_crf_settings_reach_the_label_update(tiny_labels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cgc train --set label_update.crf=tune.json` records the tuned values in the config the CRF workers' jobs are made from."""
    import json
    from types import SimpleNamespace

    from click.testing import CliRunner

    from cgc.cli import cgc
    from cgc.refine.crf import CRFParams

    tuned = tmp_path / "tune.json"
    tuned.write_text(json.dumps({"best": {"w1": 7.0, "theta_alpha": 55.0, "theta_beta": 9.0, "w2": 3.0,
                                          "theta_gamma": 3.0, "iterations": 5, "mean_iou": 0.9}}))
    seen = []
    monkeypatch.setattr("cgc.training.engine.train", lambda config, resume, progress: seen.append(config) or SimpleNamespace(
        iterations=0, last_checkpoint=None, last_losses={}, main_process=True))
    base = ["train", "--preset", "cpu", "--data", str(tiny_labels[0]), "--images", str(tiny_labels[1]),
            "--out", str(tmp_path / "run"), "--set", f"label_update.crf={tuned}", "--mask-head", "gfr"]
    result = CliRunner().invoke(cgc, base + ["--update-every", "5"])
    assert result.exit_code == 0, result.output
    assert seen[0].label_update.crf == CRFParams(w1=7.0, theta_alpha=55.0, theta_beta=9.0, w2=3.0, theta_gamma=3.0,
                                                 iterations=5)
    assert resolve_config("cpu", label_update={"every": 5}, network=GFR).label_update.crf == CRFParams()
    result = CliRunner().invoke(cgc, base)
    assert result.exit_code == 1 and "needs --update-every" in result.output
    (tmp_path / "other.json").write_text(json.dumps({"runs": []}))
    for wrong, words in (("missing.json", "not found"), ("other.json", "no 'best' setting")):
        result = CliRunner().invoke(cgc, base[:-4] + ["--set", f"label_update.crf={tmp_path / wrong}", "--update-every", "5"])
        assert result.exit_code == 1 and wrong in result.output and words in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_guards_get_the_other_instances_labels() -> None:
    from types import SimpleNamespace

    from cgc.coco_files import CocoFile
    from cgc.training.label_rounds import LabelStore
    from cgc.training.label_update import LabelUpdater

    masks = {7: rectangle((20, 30), 2, 2, 10, 12), 8: rectangle((20, 30), 8, 4, 25, 18), 9: rectangle((20, 30), 1, 1, 5, 5)}
    annotations = [{"id": 7, "image_id": 1, "bbox": [2, 2, 8, 10], "segmentation": encode_mask(masks[7])},
                   {"id": 8, "image_id": 1, "bbox": [8, 4, 17, 14], "segmentation": encode_mask(masks[8])},
                   {"id": 9, "image_id": 2, "bbox": [1, 1, 4, 4], "segmentation": encode_mask(masks[9])}]
    store = LabelStore(CocoFile("labels.json", {"images": [], "annotations": annotations}))
    updater = SimpleNamespace(config=resolve_config("cpu", network=GFR, label_update={"guards": {"shared_only": True}}),
                              store=store)
    inputs = LabelUpdater.guard_inputs(updater, SimpleNamespace(annotation_id=7))
    assert inputs["guards"].shared_only
    assert inputs["others"] == [annotations[1]["segmentation"]] and set(inputs) == {"guards", "others"}
    plain = SimpleNamespace(config=resolve_config("cpu", network=GFR), store=store)
    assert LabelUpdater.guard_inputs(plain, SimpleNamespace(annotation_id=7)) == {}
