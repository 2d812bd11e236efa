"""The trainer on a GPU, in one command: step speed against torchvision's Mask R-CNN, inference, where a step
spends its time, and a short real training run with its evaluation.

Sections (each printed as a table as it finishes, and all of them written to --out as JSON after each):
1. train step: `--preset paper` (GFR) on ResNet-50 and ResNet-101 FPN, the same with the RoIAlign mask head, and
   torchvision's Mask R-CNN on the same ResNet-50 FPN, the same pictures, batch, input size and sampling; with and
   without mixed precision (AMP): seconds per iteration, pictures per second, peak GPU memory. Random initial
   weights, made to cost what trained ones do: each ResNet block starts as the identity so that none diverges, and
   proposals are added around each true instance as a trained RPN gives them, so that the mask heads see as many
   positives as in real training (a random RPN gives them one or two per picture). The step is the trainer's:
   forward under autocast, the losses read back for the log, backward through the gradient scaler, SGD. Each row
   also counts the step's floating-point operations and the rate it achieves.
2. inference: pictures per second, one picture at a time as `cgc predict` runs, in float32 and under autocast, for
   the same networks and the CPU preset's MobileNetV2.
3. profile: a few AMP steps of the paper preset (ResNet-101 and ResNet-50) under torch.profiler: the top GPU
   kernels, how much of the step the GPU is busy, the time the host spends blocked in synchronising calls, and
   every synchronising call site (torch.cuda.set_sync_debug_mode) with its count per step.
4. training: `cgc train` with the CPU preset's network (its offline ImageNet MobileNetV2) on the GPU, then
   `cgc calibrate` and `cgc eval` on a validation set: seconds, and the scores beside those of the CPU.

On an air-gapped GPU node (docs/getting-started.md, "Training on a GPU"): copy the checkout and the folder
`make gpu-wheels` filled, then

    pip install --no-index --no-deps gpu-wheels/*.whl && pip install --no-deps --no-build-isolation -e .
    python benchmarks/gpu_check.py --train-data DATA --train-images IMAGES --val-data VAL --val-images VAL_IMAGES

Without --train-data the training section trains on generated sample scenes. `--tiny` runs every section on the
CPU in about a minute (tests/test_gpu_check.py), so the script cannot rot.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from experiments import table_figures

from cgc.fileio import atomic_write_json
from cgc.training.engine import logged_values

CGC = [sys.executable, "-m", "cgc.cli"]
NETWORKS = ("paper-resnet50", "paper-resnet101", "paper-resnet50-roialign", "torchvision-maskrcnn")
SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy")
PROPOSALS_PER_INSTANCE = 32
"""Proposals added around each true instance in the timed training steps (``trained_like_proposals``)."""


def paper_config(backbone: str, args: argparse.Namespace, head: str | None = None):
    """The paper preset on `backbone` (and mask `head`, without the label update), with random initial weights (no
    download reaches an air-gapped node)."""
    from cgc.config import resolve_config

    network = {"backbone": backbone, "backbone_weights": None}
    if args.min_size:
        network |= {"min_size": args.min_size, "max_size": args.max_size}
    if head:
        network |= {"mask": {"name": head}}
    return resolve_config("paper", network=network, solver={"batch_size": args.batch},
                          label_update={"every": 0} if head else {})


def bounded_random_residuals(model: torch.nn.Module) -> torch.nn.Module:
    """Zero the last batch-norm scale of every residual block of a randomly initialised ResNet body.

    The body's batch norms are frozen at identity statistics, so with random convolutions the activations grow
    through each residual block: ResNet-101's losses overflow by its second step, after which its proposals are
    degenerate and its step no longer costs what a real one does. With each block starting as the identity
    (Goyal et al., 2017) they stay bounded. Every convolution still runs: no FLOP changes.
    """
    from torchvision.models.resnet import Bottleneck

    for module in model.modules():
        if isinstance(module, Bottleneck):
            module.bn3.weight.zero_()
    return model


def trained_like_proposals(model: torch.nn.Module, per_instance: int = PROPOSALS_PER_INSTANCE) -> torch.nn.Module:
    """Add ``per_instance`` proposals around each true box to the RPN's during training, as a trained RPN gives.

    A random RPN proposes boxes that hardly overlap the instances: the box head's sampler then finds one or two
    positive proposals per picture (the true boxes it adds itself), and the mask head, whose cost grows with its
    positives (GFR: a crop of the stride-4 map each, up to 16 per picture), is timed far cheaper than in real
    training. Each added box is the true one with every side moved by up to a tenth of its width or height, so most
    overlap it by more than the box head's 0.5 IoU. The same for every network, from a fixed seed.
    """
    rpn_forward = model.rpn.forward
    generators: dict[torch.device, torch.Generator] = {}  # one on the device: no host-to-device copy per step

    def forward(images, features, targets=None):
        proposals, losses = rpn_forward(images, features, targets)
        if targets is None:
            return proposals, losses
        added = []
        for boxes, target in zip(proposals, targets):
            true = target["boxes"].repeat_interleave(per_instance, dim=0)
            sizes = (true[:, 2:] - true[:, :2]).repeat(1, 2)
            generator = generators.setdefault(true.device, torch.Generator(true.device).manual_seed(0))
            shift = torch.rand(true.shape, generator=generator, device=true.device) * 0.2 - 0.1
            added.append(torch.cat([true + shift * sizes, boxes]))
        return added, losses

    model.rpn.forward = forward
    return model


def build_network(name: str, args: argparse.Namespace) -> torch.nn.Module:
    """`paper-resnet50`, `paper-resnet101`, `paper-resnet50-roialign` (the paper preset with the RoIAlign mask head
    instead of GFR), `torchvision-maskrcnn` (on the paper preset's ResNet-50 FPN) or `cpu` (the CPU preset)."""
    from torchvision.models.detection import MaskRCNN

    from cgc.config import resolve_config
    from cgc.model.backbones import build_backbone
    from cgc.model.factory import model_from_config

    torch.manual_seed(0)
    if name == "cpu":
        return model_from_config(resolve_config("cpu"))
    if name == "torchvision-maskrcnn":
        network = paper_config("resnet50", args).network
        backbone = build_backbone("resnet50", weights=None, trainable_layers=network.trainable_backbone_layers,
                                  out_channels=network.fpn_channels)
        return trained_like_proposals(bounded_random_residuals(MaskRCNN(
            backbone, num_classes=2, min_size=network.min_size, max_size=network.max_size,
            rpn_batch_size_per_image=network.rpn.batch_size_per_image,
            box_batch_size_per_image=network.box.batch_size_per_image,
            rpn_post_nms_top_n_test=network.rpn.post_nms_top_n_test)))
    backbone, _, head = name.removeprefix("paper-").partition("-")
    config = paper_config(backbone, args, head or None)
    return trained_like_proposals(bounded_random_residuals(model_from_config(config, load_backbone_weights=False)))


def batches(dataset, count: int, batch: int, device: torch.device) -> list[tuple[list, list]]:
    """`count` batches of the dataset's pictures and targets, already on the device (loading is not timed here)."""
    from cgc.training.data import SampleRequest

    out = []
    for step in range(count):
        items = [dataset[SampleRequest((step * batch + k) % len(dataset), False, step * batch + k)] for k in range(batch)]
        out.append(([image.to(device) for image, _ in items],
                    [{key: value.to(device) for key, value in target.items()} for _, target in items]))
    return out


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_step(model, images, targets, optimizer, scaler, amp: bool, device: torch.device) -> dict[str, float]:
    """One step as cgc/training/engine.py takes it: its own forward and gradient functions, and the logging."""
    from cgc.training.engine import apply_gradients, forward_losses

    losses, total, _ = forward_losses(model, images, targets, amp, update_weight=0.0)
    logged = logged_values(losses | {"loss": total})  # the trainer logs each loss every step
    apply_gradients(total, optimizer, scaler)
    return logged


def trainer_for(model, amp: bool, device: torch.device):
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=1e-4, momentum=0.9, weight_decay=1e-4)
    return optimizer, torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")


def peak_memory_mib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None


def reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def step_flops(model, images, targets, optimizer, scaler, amp: bool, device: torch.device) -> float:
    """Floating-point operations of one training step, forward and backward (torch.utils.flop_counter): with the
    seconds per step, how much of the device's arithmetic the step uses."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        training_step(model, images, targets, optimizer, scaler, amp, device)
    return float(counter.get_total_flops())


def measure_training(name: str, amp: bool, dataset, args: argparse.Namespace, device: torch.device) -> dict:
    reset_memory(device)
    model = build_network(name, args).to(device).train()
    optimizer, scaler = trainer_for(model, amp, device)
    seconds, finite = [], True
    batch_list = batches(dataset, args.warmup + args.steps, args.batch, device)
    for step, (images, targets) in enumerate(batch_list):
        synchronise(device)
        start = time.perf_counter()
        logged = training_step(model, images, targets, optimizer, scaler, amp and device.type == "cuda", device)
        synchronise(device)
        finite = finite and all(math.isfinite(value) for value in logged.values())
        if step >= args.warmup:
            seconds.append(time.perf_counter() - start)
    per_iteration = statistics.median(seconds)
    peak = peak_memory_mib(device)
    flops = step_flops(model, *batch_list[0], optimizer, scaler, amp and device.type == "cuda", device)
    row = {"network": name, "amp": amp, "seconds_per_iteration": round(per_iteration, 4),
           "pictures_per_second": round(args.batch / per_iteration, 2), "peak_mib": peak,
           "tflop_per_step": round(flops / 1e12, 2), "achieved_tflops": round(flops / 1e12 / per_iteration, 1),
           "losses_finite": finite}  # a diverged network's step does not cost what a real one does
    del model, optimizer, scaler
    return row


def measure_inference(name: str, amp: bool, dataset, args: argparse.Namespace, device: torch.device) -> dict:
    reset_memory(device)
    model = build_network(name, args).to(device).eval()
    seconds, detections = [], []
    pictures = [images[0] for images, _ in batches(dataset, args.warmup + args.steps, 1, device)]
    with torch.inference_mode(), torch.autocast(device_type=device.type, enabled=amp and device.type == "cuda"):
        for index, picture in enumerate(pictures):
            synchronise(device)
            start = time.perf_counter()
            found = model([picture])
            synchronise(device)
            if index >= args.warmup:
                seconds.append(time.perf_counter() - start)
                detections.append(len(found[0]["boxes"]))
    per_picture = statistics.median(seconds)
    # random weights detect up to each network's cap per picture; a mask head's cost grows with that count
    row = {"network": name, "amp": amp, "seconds_per_picture": round(per_picture, 4),
           "pictures_per_second": round(1 / per_picture, 2), "detections_per_picture": statistics.mean(detections),
           "peak_mib": peak_memory_mib(device)}
    del model
    return row


def merged_length(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping intervals."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def sync_sites(model, batch_list, optimizer, scaler, amp: bool, device: torch.device) -> dict[str, float]:
    """Every synchronising call of one training step, by the Python line that made it (CUDA only)."""
    if device.type != "cuda":
        return {}
    images, targets = batch_list[0]
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            training_step(model, images, targets, optimizer, scaler, amp, device)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    sites = collections.Counter(f"{Path(w.filename).name}:{w.lineno}" for w in caught
                                if "synchronizing" in str(w.message))
    return dict(sites.most_common())


def measure_profile(name: str, dataset, args: argparse.Namespace, device: torch.device) -> dict:
    """Where an AMP training step of network `name` spends its time."""
    from torch.profiler import ProfilerActivity, profile

    reset_memory(device)
    amp = device.type == "cuda"
    model = build_network(name, args).to(device).train()
    optimizer, scaler = trainer_for(model, amp, device)
    batch_list = batches(dataset, args.warmup + args.profile_steps, args.batch, device)
    for images, targets in batch_list[:args.warmup]:
        training_step(model, images, targets, optimizer, scaler, amp, device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    synchronise(device)
    with profile(activities=activities) as profiler:
        start = time.perf_counter()
        for images, targets in batch_list[args.warmup:]:
            training_step(model, images, targets, optimizer, scaler, amp, device)
        synchronise(device)
        wall_us = (time.perf_counter() - start) * 1e6
    events = profiler.events()
    kernels = [event for event in events if event.device_type == torch.autograd.DeviceType.CUDA]
    by_name: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for kernel in kernels:
        by_name[kernel.name][0] += kernel.time_range.elapsed_us()
        by_name[kernel.name][1] += 1
    if not kernels:  # a profiler that lists kernels only under the operators that launched them: no time line
        for event in events:
            for kernel in getattr(event, "kernels", []):
                by_name[kernel.name][0] += kernel.duration
                by_name[kernel.name][1] += 1
    busy_us = merged_length([(k.time_range.start, k.time_range.end) for k in kernels])
    blocked_us = sum(event.time_range.elapsed_us() for event in events
                     if event.device_type == torch.autograd.DeviceType.CPU and event.name.startswith(SYNC_CALLS))
    steps = args.profile_steps
    top = sorted(by_name.items(), key=lambda item: -item[1][0])[:args.top_kernels]
    result = {
        "network": name, "steps": steps, "step_ms": round(wall_us / steps / 1000, 2),
        "gpu_busy_fraction": round(busy_us / wall_us, 3) if kernels else None,
        "host_blocked_in_sync_ms_per_step": round(blocked_us / steps / 1000, 2),
        "kernel_launches_per_step": round(sum(count for _, count in by_name.values()) / steps),
        "top_kernels": [{"kernel": name[:90], "ms_per_step": round(total / steps / 1000, 3), "calls_per_step": count / steps,
                         "share": round(total / busy_us, 3) if busy_us else None} for name, (total, count) in top],
        "sync_sites_per_step": sync_sites(model, batch_list, optimizer, scaler, amp, device),
    }
    del model, optimizer, scaler
    return result


def run_cgc(*arguments: object, log: Path) -> float:
    """One `cgc` command, its output appended to `log`; returns its seconds."""
    import subprocess

    start = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ cgc {' '.join(map(str, arguments))}\n")
        out.flush()
        done = subprocess.run(CGC + [str(a) for a in arguments], stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise SystemExit(f"cgc {arguments[0]} failed ({done.returncode}):\n" + "\n".join(tail))
    return time.perf_counter() - start


def measure_training_run(data: dict[str, Path], args: argparse.Namespace, device: torch.device, work: Path) -> dict:
    """`cgc train --preset cpu` on the device, then calibrate and score on the validation set."""
    run, log = work / "run", work / "cgc.log"
    command = ["train", "--preset", "cpu", "--data", data["train_data"], "--images", data["train_images"],
               "--out", run, "--device", device.type, "--seed", "0", "--batch-size", args.train_batch,
               "--iterations", args.train_iterations, "--lr-steps", args.train_iterations * 3 // 4,
               "--loader-workers", args.loader_workers, "--set", f"run.checkpoint_every={args.train_iterations}"]
    train_seconds = run_cgc(*command, log=log)
    run_cgc("calibrate", "--checkpoint", run, "--images", data["val_images"], "--data", data["val_data"],
            "--device", device.type, log=log)
    metrics = work / "metrics.json"
    eval_seconds = run_cgc("eval", "--checkpoint", run, "--images", data["val_images"], "--data", data["val_data"],
                           "--device", device.type, "--out", metrics, log=log)
    with (run / "metrics.csv").open(newline="") as rows:
        per_iteration = [float(row["seconds"]) for row in csv.DictReader(rows)]
    steady = per_iteration[len(per_iteration) // 10:] or per_iteration
    return {"command": ["cgc", *map(str, command)], "train_seconds": round(train_seconds, 1),
            "median_seconds_per_iteration": round(statistics.median(steady), 4),
            "eval_seconds": round(eval_seconds, 1), "scores": table_figures(json.loads(metrics.read_text()))}


def sample_data(folder: Path, pictures: int) -> dict[str, Path]:
    """Generated scenes (flat style) with weak labels to train on, and more with their truth to score on."""
    log, workers = folder / "cgc.log", min(os.cpu_count() or 1, 8)
    folder.mkdir(parents=True)
    run_cgc("sample", "--out", folder / "train", "--images", pictures, "--style", "flat", "--workers", workers, log=log)
    run_cgc("sample", "--out", folder / "val", "--images", max(4, pictures // 4), "--seed", 1, "--style", "flat",
            "--workers", workers, log=log)
    run_cgc("annotate", "import", "--from-export", folder / "train" / "labelstudio_export.json",
            "--out", folder / "boxes.json", log=log)
    run_cgc("weaklabels", "build", "--images", folder / "train" / "imgs", "--masks", folder / "train" / "masks",
            "--boxes", folder / "boxes.json", "--out", folder / "weak", "--workers", workers, log=log)
    run_cgc("export", "coco", "--format", "ilso", "--root", folder / "val", "--out", folder / "val.json", log=log)
    return {"train_data": folder / "weak" / "annotations.json", "train_images": folder / "train" / "imgs",
            "val_data": folder / "val.json", "val_images": folder / "val" / "imgs"}


def print_rows(title: str, rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    print(f"\n{title}")
    print("".join(f"{heading:>{width}}" for _, heading, width in columns))
    for row in rows:
        print("".join(f"{row.get(key)!s:>{width}}" for key, _, width in columns), flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="every section at a toy size, for the CPU test")
    parser.add_argument("--batch", type=int, default=4, help="pictures per step in the speed sections (the paper's 4)")
    parser.add_argument("--min-size", type=int, default=None, help="input size (default: the paper preset's)")
    parser.add_argument("--max-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS + ("cpu",),
                        help="the networks of the train-step table")
    parser.add_argument("--inference-networks", nargs="+", default=["paper-resnet50", "paper-resnet101",
                                                                     "torchvision-maskrcnn", "cpu"],
                        choices=NETWORKS + ("cpu",), help="the networks of the inference table")
    parser.add_argument("--amp", nargs="+", default=["off", "on"], choices=["off", "on"],
                        help="the train-step table without and with mixed precision")
    parser.add_argument("--profile-steps", type=int, default=5)
    parser.add_argument("--profile", nargs="+", default=["paper-resnet101", "paper-resnet50"],
                        help="the networks whose AMP training step is profiled")
    parser.add_argument("--top-kernels", type=int, default=12)
    parser.add_argument("--sections", nargs="+", default=["train", "inference", "profile", "training"],
                        choices=["train", "inference", "profile", "training"])
    parser.add_argument("--train-data", type=Path, help="weak labels (COCO) to train on; default: sample scenes")
    parser.add_argument("--train-images", type=Path)
    parser.add_argument("--val-data", type=Path, help="true instances (COCO) to calibrate and score on")
    parser.add_argument("--val-images", type=Path)
    parser.add_argument("--train-iterations", type=int, default=1500)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--loader-workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--sample-pictures", type=int, default=200, help="sample scenes to train on without --train-data")
    parser.add_argument("--work", type=Path, help="keep the sample scenes, the run and cgc.log here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_check.json"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.batch, args.min_size, args.max_size, args.steps, args.warmup = 2, 96, 128, 1, 1
        args.profile_steps, args.train_iterations, args.train_batch, args.loader_workers = 1, 4, 2, 0
        args.sample_pictures = 8
    if args.min_size and not args.max_size:
        args.max_size = args.min_size * 5 // 3
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    device = torch.device(args.device)
    from cgc.training.data import WeakLabelDataset

    report: dict = {"settings": {key: str(value) for key, value in vars(args).items()},
                    "environment": {"python": platform.python_version(), "torch": torch.__version__,
                                    "torchvision": __import__("torchvision").__version__, "device": str(device),
                                    "card": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
                                    "cpu_cores": os.cpu_count()}}
    print(json.dumps(report["environment"]), flush=True)

    def save() -> None:
        atomic_write_json(args.out, report, indent=1)

    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        given = {key: getattr(args, key) for key in ("train_data", "train_images", "val_data", "val_images")}
        data = given if all(given.values()) else sample_data(work / "sample", args.sample_pictures)
        dataset = WeakLabelDataset(data["train_data"], data["train_images"])
        def table(section: str, measure, networks: list[str], amp_settings: list[bool], title: str,
                  columns: list[tuple[str, str, int]]) -> None:
            """One row per network and precision, saved as each is measured, then printed."""
            rows = report[section] = []
            for amp in amp_settings:
                for name in networks:
                    rows.append(measure(name, amp, dataset, args, device))
                    save()
            print_rows(title, rows, [("network", "network", 26), ("amp", "amp", 6), *columns])

        if "train" in args.sections:
            table("train_step", measure_training, args.networks, [setting == "on" for setting in args.amp],
                  f"train step, batch {args.batch}, {device}",
                  [("seconds_per_iteration", "s/it", 9), ("pictures_per_second", "pict/s", 9),
                   ("peak_mib", "peak MiB", 10), ("tflop_per_step", "TFLOP", 8), ("achieved_tflops", "TFLOP/s", 9),
                   ("losses_finite", "finite", 8)])
        if "inference" in args.sections:
            table("inference", measure_inference, args.inference_networks, [False, True],
                  f"inference, one picture at a time, {device}",
                  [("seconds_per_picture", "s/pict", 9), ("pictures_per_second", "pict/s", 9),
                   ("detections_per_picture", "detections", 11), ("peak_mib", "peak MiB", 10)])
        for name in args.profile if "profile" in args.sections else []:
            profile_result = report.setdefault("profile", {})[name] = measure_profile(name, dataset, args, device)
            save()
            print(f"\nprofile: {name}, AMP, {profile_result['steps']} steps: "
                  f"{profile_result['step_ms']} ms/step, GPU busy {profile_result['gpu_busy_fraction']}, host blocked "
                  f"in sync calls {profile_result['host_blocked_in_sync_ms_per_step']} ms/step, "
                  f"{profile_result['kernel_launches_per_step']} kernels/step")
            for kernel in profile_result["top_kernels"]:
                print(f"  {kernel['ms_per_step']:>8.3f} ms  {kernel['calls_per_step']:>6.1f}x  {kernel['kernel']}")
            print("synchronising calls per step, by site: "
                  + ", ".join(f"{site} x{count}" for site, count in profile_result["sync_sites_per_step"].items()))
        if "training" in args.sections:
            result = report["training"] = measure_training_run(data, args, device, work)
            save()
            print(f"\ntraining: {' '.join(result['command'])}\n  {result['train_seconds']} s "
                  f"({result['median_seconds_per_iteration']} s/it), eval {result['eval_seconds']} s; "
                  + ", ".join(f"{key} {value}" for key, value in result["scores"].items()))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
