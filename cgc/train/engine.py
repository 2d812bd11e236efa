"""The training loop: one readable loop, as in torchvision's references/detection/engine.py.

Everything random in iteration t (which images, which flips, the RPN/ROI sampling) is seeded
from (seed, t, rank), so `--resume` continues exactly where a run stopped.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from cgc.errors import InputError
from cgc.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from cgc.train.config import TrainConfig, save_config
from cgc.train.data import IterationBatchSampler, WeakLabelDataset, collate
from cgc.train.distributed import ProcessGroup, all_ranks_agree, start_process_group, stop_process_group
from cgc.train.metrics_log import MetricsWriter, SmoothedValues
from cgc.train.model_factory import model_from_config


class TrainingDiverged(InputError):
    """A loss became NaN or infinite; the last good checkpoint is left as it was."""


@dataclass
class TrainResult:
    iterations: int
    last_checkpoint: Path | None
    last_losses: dict[str, float]


def learning_rate_factor(iteration: int, config: TrainConfig) -> float:
    """Linear warm-up, then divide by 1/lr_gamma at each of lr_steps."""
    warmup = 1.0
    if iteration < config.warmup_iterations:
        warmup = 0.001 + (1 - 0.001) * iteration / config.warmup_iterations
    return warmup * config.lr_gamma ** bisect_right(list(config.lr_steps), iteration)


def iteration_seed(config: TrainConfig, iteration: int, rank: int) -> int:
    return (config.seed * 1_000_003 + iteration) * 1009 + rank


def move_targets(targets: list[dict[str, torch.Tensor]], device: torch.device) -> list[dict[str, torch.Tensor]]:
    return [{key: value.to(device, non_blocking=True) for key, value in target.items()} for target in targets]


def train(config: TrainConfig, resume: bool | str | Path = False, progress: bool = True) -> TrainResult:
    """Train (or continue training) a CGCNet on weak labels; returns where it ended."""
    group = start_process_group(config.device)
    try:
        return run_training(config, resume, progress, group)
    finally:
        stop_process_group()


def run_training(config: TrainConfig, resume: bool | str | Path, progress: bool, group: ProcessGroup) -> TrainResult:
    run_dir = Path(config.out)
    torch.manual_seed(config.seed)
    dataset = WeakLabelDataset(config.data, config.images)
    model = model_from_config(config).to(group.device)
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda iteration: learning_rate_factor(iteration, config))
    use_amp = config.amp and group.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start, last_checkpoint = 0, None
    if resume:
        last_checkpoint = Path(resume) if not isinstance(resume, bool) else latest_checkpoint(run_dir)
        if last_checkpoint is None:
            raise InputError("--resume: no checkpoint to resume from", run_dir / "checkpoints")
        state = load_checkpoint(last_checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start = int(state["iteration"])
    if group.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.json")

    network = model
    if group.distributed:
        device_ids = [group.device.index] if group.device.type == "cuda" else None
        network = DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)
    sampler = IterationBatchSampler(len(dataset), config.seed, config.batch_size, config.hflip, start, config.iterations, group.rank, group.world_size)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=config.loader_workers)
    smoothed, writer = SmoothedValues(), MetricsWriter(run_dir, enabled=group.is_main)
    bar = tqdm(total=config.iterations, initial=start, desc="train", unit="it", disable=None if (progress and group.is_main) else True)
    losses_now: dict[str, float] = {}
    network.train()
    try:
        for iteration, (images, targets) in enumerate(loader, start=start):
            tick = time.perf_counter()
            torch.manual_seed(iteration_seed(config, iteration, group.rank))
            images = [image.to(group.device, non_blocking=True) for image in images]
            targets = move_targets(targets, group.device)
            with torch.autocast(device_type=group.device.type, enabled=use_amp):
                losses = network(images, targets)
            total = sum(losses.values())
            losses_now = {key: float(value.detach()) for key, value in losses.items()} | {"loss": float(total.detach())}
            if not all_ranks_agree(math.isfinite(losses_now["loss"]), group):
                detail = ", ".join(f"{key}={value:.4g}" for key, value in losses_now.items())
                raise TrainingDiverged(
                    f"loss is not finite at iteration {iteration} ({detail}); training stopped. "
                    f"Last good checkpoint: {last_checkpoint or 'none yet'}. Try a lower --lr or check the labels."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            done = iteration + 1
            smoothed.update(losses_now)
            bar.set_postfix(smoothed.summary(), refresh=False)
            bar.update(1)
            writer.write(done, losses_now | {"lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - tick})
            if group.is_main and (done % config.checkpoint_every == 0 or done == config.iterations):
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                         "scaler": scaler.state_dict(), "config": config.to_json()}
                last_checkpoint = save_checkpoint(run_dir, done, state, config.keep_checkpoints)
    finally:
        bar.close()
        writer.close()
    return TrainResult(iterations=config.iterations, last_checkpoint=last_checkpoint, last_losses=losses_now)
