"""benchmarks/gpu_check.py at a toy size on the CPU: every section runs, so the GPU check cannot rot between GPUs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import benchmark_module

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_runs_every_section_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    few = ["--networks", "paper-resnet50", "torchvision-maskrcnn", "--inference-networks", "paper-resnet50", "cpu",
           "--profile", "paper-resnet50"]  # every section and code path; the other networks only repeat them
    done = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--device", "cpu", "--work", str(tmp_path / "work"),
                           "--out", str(out), *few], check=False, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(out.read_text())
    train = {(row["network"], row["amp"]) for row in report["train_step"]}
    assert train == {(name, amp) for name in ("paper-resnet50", "torchvision-maskrcnn") for amp in (False, True)}
    assert all(row["seconds_per_iteration"] > 0 and row["tflop_per_step"] > 0 for row in report["train_step"])
    assert all(row["losses_finite"] for row in report["train_step"])
    assert {row["network"] for row in report["inference"]} == {"paper-resnet50", "cpu"}
    assert report["profile"]["paper-resnet50"]["step_ms"] > 0
    training = report["training"]
    assert training["command"][:4] == ["cgc", "train", "--preset", "cpu"]
    assert (tmp_path / "work" / "run" / "metrics.csv").read_text().count("\n") == 1 + 4  # the tiny run's 4 iterations
    assert 0 <= training["scores"]["coco_mask_AP"] <= 100
    assert "train step, batch 2, cpu" in done.stdout and "wrote" in done.stdout


def gpu_check():
    return benchmark_module("gpu_check")


def test_merged_length_counts_overlaps_once():
    merged_length = gpu_check().merged_length
    assert merged_length([(0, 2), (1, 3), (5, 6), (5.5, 5.8)]) == 4
    assert merged_length([]) == 0


@pytest.mark.slow
def test_random_resnet101_does_not_diverge():
    """With random weights and identity batch norms, ResNet-101's losses overflowed by its second step, and a
    diverged network's step does not cost what a real one does: the check starts each residual block as the
    identity."""
    import torch

    check = gpu_check()
    args = check.parse(["--tiny", "--device", "cpu"])
    model = check.build_network("paper-resnet101", args).train()
    optimizer, scaler = check.trainer_for(model, False, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    masks = torch.zeros((1, 96, 128), dtype=torch.uint8)
    masks[:, 20:70, 30:90] = 1
    target = {"boxes": torch.tensor([[30.0, 20.0, 90.0, 70.0]]), "labels": torch.ones(1, dtype=torch.int64),
              "masks": masks}
    for _ in range(3):
        images = [torch.rand((3, 96, 128), generator=generator) for _ in range(2)]
        logged = check.training_step(model, images, [dict(target), dict(target)], optimizer, scaler, False,
                                     torch.device("cpu"))
    assert logged["loss"] < 20, logged


def test_timed_steps_get_proposals_around_each_instance_as_a_trained_rpn_gives():
    """A random RPN's proposals miss the instances: the mask head would be timed on one or two positives per picture
    instead of the 16 (cgc) or more (torchvision) of real training. The check adds boxes around each true one."""
    import torch
    from torchvision.ops import box_iou

    check = gpu_check()

    class RandomRPN(torch.nn.Module):
        def forward(self, images, features, targets=None):
            return [torch.tensor([[0.0, 0.0, 5.0, 5.0]])], {"loss_objectness": torch.tensor(1.0)}

    model = torch.nn.Module()
    model.rpn = RandomRPN()
    check.trained_like_proposals(model, per_instance=32)
    true = torch.tensor([[10.0, 20.0, 60.0, 70.0], [70.0, 30.0, 170.0, 90.0]])
    (proposals,), losses = model.rpn(None, None, [{"boxes": true}])
    assert proposals.shape == (2 * 32 + 1, 4) and losses == {"loss_objectness": torch.tensor(1.0)}
    assert torch.equal(proposals[-1], torch.tensor([0.0, 0.0, 5.0, 5.0]))  # the RPN's own are kept
    overlaps = box_iou(proposals[:64], true)
    assert (overlaps[:32, 0] > 0.5).float().mean() > 0.9 and (overlaps[32:, 1] > 0.5).float().mean() > 0.9
    assert (overlaps[:32, 0] < 1).all()  # moved, not copies
    (unchanged,), _ = model.rpn(None, None)  # inference: the RPN's proposals only
    assert unchanged.shape == (1, 4)
    for name in ("paper-resnet50", "torchvision-maskrcnn"):  # every timed network gets them
        assert "forward" in vars(check.build_network(name, check.parse(["--tiny", "--device", "cpu"])).rpn)
