"""Seconds per DDP training step with and without find_unused_parameters, two gloo processes on the CPU.

cgc's trainer runs DDP without it (every parameter takes part in each step); this measures what the
setting costs, on the same data, model and steps. Prints a table and writes JSON.

    .venv/bin/python benchmarks/ddp_step.py
    .venv/bin/python benchmarks/ddp_step.py --steps 10 --min-size 240 --max-size 320
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cgc.fileio import atomic_write_json


def child(args: argparse.Namespace) -> None:
    """One DDP process (under torch.distributed.run): time `args.steps` of the trainer's own steps (forward_losses,
    apply_gradients) after `args.warmup`."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from cgc.config import resolve_config
    from cgc.training.data import SampleRequest, WeakLabelDataset
    from cgc.training.engine import apply_gradients, forward_losses
    from cgc.model.factory import model_from_config

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = resolve_config("cpu", network={"min_size": args.min_size, "max_size": args.max_size,
                                            "mask": {"name": args.head}},
                            data={"annotations": str(args.data / "weak" / "annotations.json"),
                                  "images": str(args.data / "sample" / "imgs")},
                            run={"out": str(args.data / "unused")})
    model = DistributedDataParallel(model_from_config(config), find_unused_parameters=args.find_unused)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    dataset = WeakLabelDataset(config.data.annotations, config.data.images)
    scaler = torch.amp.GradScaler("cpu", enabled=False)  # the trainer's step, as on a CPU without AMP
    model.train()
    times = []
    for step in range(args.warmup + args.steps):
        batch = [dataset[SampleRequest((step * world + rank) % len(dataset), False)]]
        dist.barrier()
        start = time.perf_counter()
        _losses, total, _maps = forward_losses(model, [b[0] for b in batch], [b[1] for b in batch], amp=False,
                                               update_weight=config.label_update.weight)
        apply_gradients(total, optimizer, scaler)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    if rank == 0:
        print(json.dumps({"find_unused_parameters": args.find_unused, "seconds_per_step": statistics.median(times)}))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", default="gfr")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--min-size", type=int, default=240)
    parser.add_argument("--max-size", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=2, help="alternate the two settings this many times each")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ddp_step.json"))
    parser.add_argument("--find-unused", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from train_step import make_data

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or Path(scratch)
        if args.data is None:
            make_data(data, 8)
        for _ in range(args.repeats):
            for find_unused in (False, True):
                command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           __file__, "--child", "--data", str(data), "--head", args.head, "--steps", str(args.steps),
                           "--warmup", str(args.warmup), "--min-size", str(args.min_size), "--max-size",
                           str(args.max_size)] + (["--find-unused"] if find_unused else [])
                done = subprocess.run(command, check=True, capture_output=True, text=True,
                                      env=os.environ | {"OMP_NUM_THREADS": "1"})
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"DDP on 2 gloo processes (1 thread each), {args.head} head, cpu preset, inputs {args.min_size}-"
          f"{args.max_size}, batch 1 per process, median of {args.steps} steps; runs alternate")
    print(f"{'find_unused_parameters':<24}{'s/step':>8}")
    for row in rows:
        print(f"{str(row['find_unused_parameters']):<24}{row['seconds_per_step']:>8.3f}")
    for flag in (False, True):
        times = [row["seconds_per_step"] for row in rows if row["find_unused_parameters"] == flag]
        print(f"mean, {'with' if flag else 'without'}: {statistics.mean(times):.3f} s/step")
    atomic_write_json(args.out, {"settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
