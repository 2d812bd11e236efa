"""`cgc predict`'s peak memory grows with the picture once, not once per detection (about 1 GB per megapixel before)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from helpers import short_run, tiny_config

# VmHWM is this program's own high-water mark: ru_maxrss would carry the parent's peak across fork and exec, so a
# test worker that once held 3.5 GB would read 3.5 GB here whatever predict does
PEAK = ("import re, sys\n"
        "from cgc.cli import cgc\n"
        "try:\n"
        "    cgc(sys.argv[2:], prog_name='cgc', standalone_mode=False)\n"
        "finally:\n"
        "    status = open('/proc/self/status').read()\n"
        "    open(sys.argv[1], 'w').write(re.search(r'VmHWM:\\s*(\\d+) kB', status).group(1))\n")


def peak_megabytes(checkpoint: Path, picture: Path, out: Path) -> tuple[float, int]:
    """`cgc predict` on one picture, every detection kept, in a process of its own: (its peak RSS in MB, instances)."""
    report = out.with_suffix(".peak")
    done = subprocess.run([sys.executable, "-c", PEAK, str(report), "predict", "--checkpoint", str(checkpoint),
                           "--images", str(picture), "--out", str(out), "--device", "cpu", "--score-thr", "0"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(report.read_text()) / 1024, len(json.loads((out / "results.json").read_text()))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc to read a process's peak memory")
def test_prediction_memory_does_not_grow_with_the_picture_per_detection(tiny_labels, tmp_path: Path) -> None:
    from cgc.training.engine import train

    run = tmp_path / "run"
    train(tiny_config(tiny_labels, run, **short_run(1)), progress=False)
    scene = cv2.imread(str(sorted(tiny_labels[1].iterdir())[0]))
    peaks = {}
    for width, height in ((400, 300), (4000, 3000)):  # 0.12 and 12 megapixels
        picture = tmp_path / f"{width}.jpg"
        cv2.imwrite(str(picture), cv2.resize(scene, (width, height)))
        peaks[width] = peak_megabytes(run, picture, tmp_path / f"out{width}")
    (small, found), (large, found_large) = peaks[400], peaks[4000]
    assert found > 10 and found_large > 10, peaks  # many detections, each kept with its mask
    # 12 megapixels: under 2 GB in all; beyond the small picture, the picture, its float copies and a few
    # picture-sized maps (about 330 MB), not one map per detection (1 GB per megapixel before)
    assert large < 2048 and large - small < 600, peaks
