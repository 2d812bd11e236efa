"""The training loop: one readable loop, as in torchvision's references/detection/engine.py.

Everything random in iteration t (which images, which flips, the RPN/ROI sampling) is seeded
from (seed, t, rank), so `--resume` continues exactly where a run stopped.

With `label_update.every > 0` the label-update scheme runs alongside (cgc/training/label_update.py): the
loop hands each step's instance maps to CRF worker processes, writes a round of labels every
`label_update.every` iterations and trains on it from then on (the data loader is restarted at each
round boundary, so loader workers never see stale labels), and adds `label_update.weight * loss_upd`
to the loss. The worker pool is shut down however the loop ends.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from cgc.errors import InputError, RunStopped
from cgc.coco_files import read_instance_file
from cgc.fileio import check_output_file, exclusive_lock, refuse_outputs_over_inputs
from cgc.checkpoint import latest_checkpoint, load_checkpoint, remove_unfinished_checkpoints, save_checkpoint
from cgc.config import TrainConfig, check_config, save_config
from cgc.training.data import IterationBatchSampler, WeakLabelDataset, collate
from cgc.training.label_rounds import label_file_of
from cgc.training.label_update import LabelUpdater
from cgc.training.distributed import (
    ProcessGroup,
    all_ranks_agree,
    mean_over_ranks,
    start_process_group,
    stop_process_group,
)
from cgc.training.metrics_log import MetricsWriter, SmoothedValues
from cgc.model.factory import model_from_config
from cgc.model.roi_heads import InstanceMap, LabelUpdateRequest


class TrainingDiverged(RunStopped):
    """A loss became NaN or infinite; the last good checkpoint is left as it was."""


@dataclass
class TrainResult:
    iterations: int
    last_checkpoint: Path | None
    last_losses: dict[str, float]  # the mean over the processes under DDP
    main_process: bool = True  # under DDP only rank 0 reports


def load_trained_weights(model: torch.nn.Module, checkpoint: str | Path) -> None:
    """A checkpoint's weights into a network built from the fine-tuning run's settings, which must match its own."""
    state = load_checkpoint(checkpoint)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise InputError(f"its network does not match the run's settings ({first[:200]}); fine-tune with the "
                         "network options it was trained with", checkpoint) from None


def learning_rate_factor(iteration: int, config: TrainConfig) -> float:
    """Linear warm-up, then divide by 1/lr_gamma at each of lr_steps."""
    warmup = 1.0
    if iteration < config.solver.warmup_iterations:
        warmup = 0.001 + (1 - 0.001) * iteration / config.solver.warmup_iterations
    return warmup * config.solver.lr_gamma ** bisect_right(list(config.solver.lr_steps), iteration)


def logged_values(losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """The step's losses as numbers, read back from the device in one transfer (one host-device sync, not one
    per loss)."""
    values = torch.stack([value.detach().float() for value in losses.values()]).tolist()
    return dict(zip(losses, values))


def forward_losses(network: torch.nn.Module, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]],
                   amp: bool, update_weight: float, request: LabelUpdateRequest | None = None,
                   ) -> tuple[dict[str, torch.Tensor], torch.Tensor, list[InstanceMap]]:
    """A training step's forward: the losses, their total (L_upd weighted by lambda) and the instance maps the label
    update asked for (``request``); under autocast when ``amp``. The GPU check times this same step."""
    device_type = images[0].device.type
    with torch.autocast(device_type=device_type, enabled=amp):
        if request is None:
            losses, instance_maps = network(images, targets), []
        else:
            losses, instance_maps = network(images, targets, label_update=request)
    total = sum(value * update_weight if key == "loss_upd" else value for key, value in losses.items())
    return losses, total, instance_maps


def apply_gradients(total: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """A training step's backward and SGD step, through the gradient scaler (a no-op without AMP)."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()


def iteration_seed(config: TrainConfig, iteration: int, rank: int) -> int:
    return (config.run.seed * 1_000_003 + iteration) * 1009 + rank


def move_targets(targets: list[dict[str, torch.Tensor]], device: torch.device) -> list[dict[str, torch.Tensor]]:
    return [{key: value.to(device, non_blocking=True) for key, value in target.items()} for target in targets]


def loader_segments(config: TrainConfig, start: int) -> list[tuple[int, int]]:
    """[start, stop) iteration ranges, one DataLoader each: cut at label rounds when the scheme is on."""
    if not config.label_update.on:
        return [(start, config.solver.iterations)] if start < config.solver.iterations else []
    cuts = sorted({start, config.solver.iterations} | set(range(0, config.solver.iterations, config.label_update.every)))
    cuts = [cut for cut in cuts if start <= cut <= config.solver.iterations]
    return list(zip(cuts[:-1], cuts[1:]))


def iteration_batches(dataset: WeakLabelDataset, config: TrainConfig, start: int,
                      group: ProcessGroup) -> Iterator[tuple[int, list[torch.Tensor], list[dict[str, torch.Tensor]]]]:
    """(iteration, images, targets) from `start` on; each segment's loader is made when it begins."""
    for first, stop in loader_segments(config, start):
        sampler = IterationBatchSampler(len(dataset), config.run.seed, config.solver.batch_size, config.data.hflip, first,
                                        stop, group.rank, group.world_size, config.data.colour_jitter)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=config.run.loader_workers)
        for iteration, (images, targets) in enumerate(loader, start=first):
            yield iteration, images, targets


def train(config: TrainConfig, resume: bool | str | Path = False, progress: bool = True) -> TrainResult:
    """Train (or continue training) a CGCNet on weak labels; returns where it ended."""
    group = start_process_group(config.run.device)
    try:
        return run_training(config, resume, progress, group)
    finally:
        stop_process_group()


def run_training(config: TrainConfig, resume: bool | str | Path, progress: bool, group: ProcessGroup) -> TrainResult:
    run_dir = Path(config.run.out)
    check_config(config)
    torch.manual_seed(config.run.seed)
    dataset = WeakLabelDataset(config.data.annotations, config.data.images)
    if group.is_main:
        refuse_outputs_over_inputs({"--out": run_dir}, {"--data": config.data.annotations, "--images": config.data.images,
                                                        "--init-from": config.run.init_from})
        check_output_file(run_dir / "config.json")  # before the model is built, not after
    with ExitStack() as held:
        if group.is_main:  # the other ranks write nothing
            held.enter_context(exclusive_lock(run_dir, "`cgc train`"))
        return train_in_folder(config, resume, progress, group, run_dir, dataset)


def train_in_folder(config: TrainConfig, resume: bool | str | Path, progress: bool, group: ProcessGroup,
                    run_dir: Path, dataset: WeakLabelDataset) -> TrainResult:
    model = model_from_config(config, load_backbone_weights=config.run.init_from is None).to(group.device)
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    solver = config.solver
    optimizer = torch.optim.SGD(parameters, lr=solver.lr, momentum=solver.momentum, weight_decay=solver.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda iteration: learning_rate_factor(iteration, config))
    use_amp = config.run.amp and group.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    start, last_checkpoint, label_state = 0, None, None
    if not resume and latest_checkpoint(run_dir) is not None:
        raise InputError("already holds a training run: continue it with --resume, or choose a new --out", run_dir)
    if group.is_main:
        remove_unfinished_checkpoints(run_dir)
    if resume:  # with no checkpoint yet (stopped before the first), it starts over: there is nothing to continue
        last_checkpoint = Path(resume) if not isinstance(resume, bool) else latest_checkpoint(run_dir)
    if last_checkpoint is not None:
        state = load_checkpoint(last_checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start = int(state["iteration"])
        label_state = state.get("label_update")
        if label_state and label_state.get("label_file"):  # train on the last round written before the checkpoint
            labels = label_file_of(label_state, run_dir, config.data.annotations)
            dataset.replace_annotations(read_instance_file(labels, "label round"))
    elif config.run.init_from is not None:  # fine-tuning: the trained weights, a fresh optimizer and schedule
        load_trained_weights(model, config.run.init_from)
    if group.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.json")

    network = model
    if group.distributed:
        device_ids = [group.device.index] if group.device.type == "cuda" else None
        # every trainable parameter takes part in every step (see roi_heads.every_parameter_zero), so DDP
        # needs no find_unused_parameters and its extra pass over the graph
        network = DistributedDataParallel(model, device_ids=device_ids)
    smoothed, writer = SmoothedValues(), MetricsWriter(run_dir, enabled=group.is_main, start=start)
    bar = tqdm(total=config.solver.iterations, initial=start, desc="train", unit="it",
               disable=None if (progress and group.is_main) else True)
    losses_now: dict[str, float] = {}
    updater: LabelUpdater | None = None
    network.train()
    try:
        if config.label_update.on:
            updater = LabelUpdater(config, dataset, run_dir, group, label_state)
        for iteration, images, targets in iteration_batches(dataset, config, start, group):
            tick = time.perf_counter()
            torch.manual_seed(iteration_seed(config, iteration, group.rank))
            request = updater.request(iteration, targets) if updater is not None else None
            images = [image.to(group.device, non_blocking=True) for image in images]
            targets = move_targets(targets, group.device)
            losses, total, instance_maps = forward_losses(network, images, targets, use_amp, config.label_update.weight,
                                                          request)
            if request is not None:
                updater.after_forward(iteration, instance_maps, targets)
            losses_now = logged_values(losses | {"loss": total})
            if updater is not None and updater.loss_on:
                losses_now.setdefault("loss_upd", 0.0)  # before label_update.start the term is off: a fixed CSV column
            losses_now = mean_over_ranks(losses_now, group)
            if not all_ranks_agree(math.isfinite(losses_now["loss"]), group):
                detail = ", ".join(f"{key}={value:.4g}" for key, value in losses_now.items())
                raise TrainingDiverged(
                    f"loss is not finite at iteration {iteration} ({detail}); training stopped. "
                    f"Last good checkpoint: {last_checkpoint or 'none yet'}. Try a lower --lr or check the labels."
                )
            apply_gradients(total, optimizer, scaler)
            scheduler.step()
            done = iteration + 1
            if updater is not None:
                updater.end_of_iteration(done)
            smoothed.update(losses_now)
            bar.set_postfix(smoothed.summary(), refresh=False)
            bar.update(1)
            writer.write(done, losses_now | {"lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - tick})
            if done % config.run.checkpoint_every == 0 or done == config.solver.iterations:
                if updater is not None:
                    label_state = updater.checkpoint_state()  # on every process: it gathers the round's decisions
                if group.is_main:
                    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                             "scaler": scaler.state_dict(), "config": config.to_json()}
                    if label_state is not None:  # also kept when the scheme is off now but made the labels before
                        state["label_update"] = label_state
                    last_checkpoint = save_checkpoint(run_dir, done, state, config.run.keep_checkpoints)
    finally:
        if updater is not None:
            updater.close()
        bar.close()
        writer.close()
    return TrainResult(config.solver.iterations, last_checkpoint, losses_now, group.is_main)
