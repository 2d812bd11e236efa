"""What the CPU preset's width costs and buys: the same training with narrower FPN levels and fewer test proposals.

The FPN's 256-channel levels, the RPN's 3x3 convolution over them and the box head's first layer
(256 x 7 x 7 inputs) make up most of a CPU-preset step (the MobileNetV2 body is small beside them),
and at inference the box head scores each of the RPN's 1000 proposals. Rows (GFR head, same seed,
iterations and data):
- preset: the CPU preset as it is;
- fpn 128: FPN levels of 128 channels;
- fpn 128, 300 proposals: also 300 test proposals per image instead of 1000.

    .venv/bin/python benchmarks/cpu_preset.py --reuse --style photo
"""

from __future__ import annotations

from experiments import variants_main

RUNS = (
    ("preset", ()),
    ("fpn 128", ("--fpn-channels", 128)),
    ("fpn 128, 300 proposals", ("--fpn-channels", 128, "--rpn-test-proposals", 300)),
)


if __name__ == "__main__":
    variants_main(__doc__.splitlines()[0], "cpu_preset", RUNS, "preset",
                  "CPU preset variants, {style} scenes, {iterations} iterations, seed {seed}")
