"""Tried and not kept: the GFR head forward and backward with its crops batched against one at a time, realistic
shapes (16 proposals around two large instances on a 200x300 map), three alternating repeats.

    .venv/bin/python benchmarks/crop_batching.py
"""
import sys, time, torch
from cgc.model.mask_heads import build_mask_head
from cgc.network_settings import mask_head_spec
torch.manual_seed(0)
head = build_mask_head(mask_head_spec("gfr", output_window_per_side=None), in_channels=256)
feature = torch.randn(1, 256, 200, 300, requires_grad=True)
g = torch.Generator().manual_seed(0)
true = torch.tensor([[300.0, 80.0, 900.0, 760.0], [100.0, 200.0, 500.0, 600.0]])
boxes = true.repeat_interleave(8, 0)
sizes = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
boxes = boxes + (torch.rand(boxes.shape, generator=g) * 0.2 - 0.1) * sizes
for rep in range(3):
    for batch in (True, False):
        head.batch_crops = batch
        start = time.perf_counter()
        logits = head({"0": feature}, [boxes], [(800, 1200)])[0]
        logits.mean().backward()
        print(rep, "batched" if batch else "one-crop", round(time.perf_counter() - start, 2), flush=True)
        head.zero_grad(); feature.grad = None
