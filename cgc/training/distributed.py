"""Single process or `torchrun` (DDP): nccl on GPUs, gloo on CPUs, chosen from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cgc.devices import pick_device


@dataclass(frozen=True)
class ProcessGroup:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def start_process_group(requested_device: str) -> ProcessGroup:
    """Join the group torchrun set up (WORLD_SIZE > 1), else run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    if device.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world)))
    return ProcessGroup(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def stop_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_ranks_agree(flag: bool, group: ProcessGroup) -> bool:
    """True only if `flag` holds on every process (used to stop all ranks on a NaN together)."""
    if not group.distributed:
        return flag
    value = torch.tensor([1 if flag else 0], device=group.device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def mean_over_ranks(values: dict[str, float], group: ProcessGroup) -> dict[str, float]:
    """Each value averaged over the processes (all hold the same keys), so logs describe the whole batch."""
    if not group.distributed:
        return values
    keys = sorted(values)
    summed = torch.tensor([values[key] for key in keys], dtype=torch.float64, device=group.device)
    dist.all_reduce(summed, op=dist.ReduceOp.SUM)
    return {key: float(value) / group.world_size for key, value in zip(keys, summed.tolist())}
