"""What the CPU preset's settings cost and buy: the same training with one setting changed per row.

The FPN's 256-channel levels, the RPN's 3x3 convolution over them and the box head's first layer
(256 x 7 x 7 inputs) make up most of a CPU-preset step; the MobileNetV2 body is small beside
them, so training its deepest stages costs little time. Rows (the preset's head, same seed, iterations
and data): the CPU preset as it is; FPN levels of 128 channels; the three deepest backbone
stages trained instead of frozen; twice the learning rate. The number of test proposals, which
changes inference only, is measured on one model by benchmarks/test_proposals.py.

    .venv/bin/python benchmarks/cpu_preset.py --reuse --style photo
"""

from __future__ import annotations

from experiments import variants_main

RUNS = (
    ("preset", ()),
    ("fpn 128", ("--fpn-channels", 128)),
    ("backbone 3 stages", ("--trainable-backbone-layers", 3)),
    ("lr 0.01", ("--lr", 0.01)),
)


if __name__ == "__main__":
    variants_main(__doc__.splitlines()[0], "cpu_preset", RUNS, "preset",
                  "CPU preset variants, {style} scenes, {iterations} iterations, seed {seed}")
