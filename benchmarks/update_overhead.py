"""What the label-update scheme costs in training throughput, measured in one run.

Trains the same network twice on the same sample weak labels with the same seed, once without
and once with the scheme (CRF worker pool, rounds every --update-every iterations from the start),
and reports seconds per iteration of each and the relative cost. Both use the GFR head: the update
refines its whole-image maps (the cpu preset's RoIAlign head has none). Prints a table and writes JSON.

    .venv/bin/python benchmarks/update_overhead.py --iterations 60 --update-every 20
    .venv/bin/python benchmarks/update_overhead.py --shared-only    # with the shared-pixels guard
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from cgc.annotate.boxes_dataset import import_labelstudio_boxes
from cgc.fileio import atomic_write_json
from cgc.sample import write_sample_dataset
from cgc.config import resolve_config
from cgc.training.engine import train
from cgc.weaklabels.builder import write_weak_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--update-every", type=int, default=20)
    parser.add_argument("--crf-workers", type=int, default=1)
    parser.add_argument("--shared-only", action="store_true", help="the rounds with the shared-pixels guard")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/update_overhead.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        sample = write_sample_dataset(work / "sample", args.images, seed=0, workers=os.cpu_count() or 1, progress=False,
                                      style="flat")  # the documented figures
        import_labelstudio_boxes(sample / "labelstudio_export.json", work / "boxes.json")
        write_weak_labels(sample / "imgs", sample / "masks", work / "boxes.json", work / "weak", progress=False)
        rows = []
        for name, update_every in (("without", 0), ("with", args.update_every)):
            config = resolve_config(
                "cpu", data={"annotations": str(work / "weak" / "annotations.json"), "images": str(sample / "imgs")},
                run={"out": str(work / f"run-{name}"), "checkpoint_every": args.iterations},
                solver={"iterations": args.iterations}, network={"mask": {"name": "gfr"}},
                label_update={"every": update_every, "start": 0, "crf_workers": args.crf_workers,
                              "guards": {"shared_only": args.shared_only}})
            start = time.perf_counter()
            train(config, progress=False)
            seconds = time.perf_counter() - start
            rounds = sorted((work / f"run-{name}" / "labels").glob("round_*.log.json"))
            replaced = sum(json.loads(path.read_text()).get("counts", {}).get("replaced", 0) for path in rounds)
            rows.append({"scheme": name, "seconds": round(seconds, 1), "seconds_per_iteration": round(seconds / args.iterations, 3),
                         "rounds": len(rounds), "labels_replaced": replaced})
    cost = rows[1]["seconds"] / rows[0]["seconds"] - 1
    print(f"cpu preset, {args.images} sample images, {args.iterations} iterations, rounds every {args.update_every}, "
          f"{args.crf_workers} CRF worker(s), {os.cpu_count()} cores")
    print(f"{'scheme':<10}{'seconds':>9}{'s/it':>8}{'rounds':>8}{'replaced':>10}")
    for row in rows:
        print(f"{row['scheme']:<10}{row['seconds']:>9.1f}{row['seconds_per_iteration']:>8.3f}{row['rounds']:>8}{row['labels_replaced']:>10}")
    print(f"throughput cost of the scheme: {cost:.1%}")
    atomic_write_json(args.out, {"settings": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                 "cost": round(cost, 4)}, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
