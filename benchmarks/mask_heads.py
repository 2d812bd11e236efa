"""Why GFR learned slower than RoIAlign: each hypothesis of issue 12 as its own run, same seed and iterations.

Rows (cpu preset, weak labels of the sample scenes, scored on held-out scenes):
- roialign: Mask R-CNN's 28x28 head, the reference;
- gfr, whole-image loss: the paper's head as it was (BCE averaged over every cell of the map);
- gfr, window 0.25: the loss averaged per proposal over its box grown by 25 % per side, and the
  mask limited to that window (cgc's default);
- gfr, window 0.25, 128 channels: the same with a wider head (the cpu preset's is 64);
- lfr and roimasking, window 0.25: the paper's other heads of Table II, with the same output window
  (with roialign and gfr, the paper's heads comparison).
Each row also gives precision and recall at score 0.5, predictions per true instance and the COCO
mask AP of the same detections as filled boxes. The rows of labelled others, box coordinates and a dilated
FCN (docs/method/mask-heads.md) were measured with settings that did not help and have since left cgc
(`cgc.config.REMOVED`); their commit is beside their table.

    .venv/bin/python benchmarks/mask_heads.py --reuse
    .venv/bin/python benchmarks/mask_heads.py --reuse --style photo --work benchmarks/results/mask-heads-photo \
        --out benchmarks/results/mask_heads_photo.json --runs roialign "gfr window 0.25" "lfr window 0.25" \
        "roimasking window 0.25"
"""

from __future__ import annotations

from experiments import variants_main

RUNS = (
    ("roialign", ("--mask-head", "roialign")),
    ("gfr whole-image loss", ("--mask-head", "gfr", "--set", "network.mask.output_window_per_side=none")),
    ("gfr window 0.25", ("--mask-head", "gfr", "--set", "network.mask.output_window_per_side=0.25")),
    ("gfr window 128 ch", ("--mask-head", "gfr", "--set", "network.mask.output_window_per_side=0.25", "--set", "network.mask.channels=128")),
    ("lfr window 0.25", ("--mask-head", "lfr", "--set", "network.mask.output_window_per_side=0.25")),
    ("roimasking window 0.25", ("--mask-head", "roimasking", "--set", "network.mask.output_window_per_side=0.25")),
)


if __name__ == "__main__":
    variants_main(__doc__.splitlines()[0], "mask_heads", RUNS, "head",
                  "Mask heads, {style} scenes, {iterations} iterations, cpu preset, seed {seed}")
