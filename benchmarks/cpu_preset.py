"""What the CPU preset's settings cost and buy: the same training with one setting changed per row.

The FPN's 256-channel levels, the RPN's 3x3 convolution over them and the box head's first layer
(256 x 7 x 7 inputs) make up most of a CPU-preset step; the MobileNetV2 body is small beside
them, so training its deepest stages costs little time. Rows (the preset's head, same seed, iterations
and data): the CPU preset as it is; FPN levels of 128 channels; the three deepest backbone
stages trained instead of frozen; twice the learning rate; the RPN's anchors scaled to the preset's
240-pixel inputs (the paper's 32-512 are for 800 pixels), or one octave smaller; all five backbone
stages trained. The number of test proposals, which
changes inference only, is measured on one model by benchmarks/test_proposals.py.

    .venv/bin/python benchmarks/cpu_preset.py --reuse --style photo
    .venv/bin/python benchmarks/cpu_preset.py --reuse --style photo --work benchmarks/results/cpu-preset-photo \
        --out benchmarks/results/cpu_preset_photo.json --runs preset "anchors scaled" "anchors 16-256" "backbone 5 stages"
"""

from __future__ import annotations

from experiments import variants_main

RUNS = (
    ("preset", ()),
    ("fpn 128", ("--set", "network.fpn_channels=128")),
    ("backbone 3 stages", ("--set", "network.trainable_backbone_layers=3")),
    ("lr 0.01", ("--lr", 0.01)),
    ("anchors scaled", ("--set", "network.rpn.anchor_sizes=10,19,38,77,154")),
    ("anchors 16-256", ("--set", "network.rpn.anchor_sizes=16,32,64,128,256")),
    ("backbone 5 stages", ("--set", "network.trainable_backbone_layers=5")),
)


if __name__ == "__main__":
    variants_main(__doc__.splitlines()[0], "cpu_preset", RUNS, "preset",
                  "CPU preset variants, {style} scenes, {iterations} iterations, seed {seed}")
