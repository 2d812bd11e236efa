"""Every weak-label rule on every shared set of real photographs, against their true instance masks.

For each set (`../shared/data/real/<set>`: pictures and COCO instance masks), a weak-label case is
made as a user would make one from a fully labelled subset (`cgc weaklabels case`: the union of the
true instances as the salient-region mask, five simulated annotators' boxes averaged into consensus
boxes), then every rule builds weak labels from it, and the boxes-alone mode from the boxes only.
Each is scored against the truth (`cgc weaklabels compare`): mean IoU over the true instances, and
over those whose consensus box overlaps another (the pixels two boxes share are where rules differ).
The last row is the ceiling: each true instance cut to the mask and to its box. Seconds per picture
are the build's wall time on `--workers` processes.

    .venv/bin/python benchmarks/real_weaklabels.py --reuse
    .venv/bin/python benchmarks/real_weaklabels.py --reuse --degrade   # masks degraded as real SOD masks are

Prints a table and writes JSON (benchmarks/results/real_weaklabels[-degraded].json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

from cgc.fileio import atomic_write_json
from cgc.weaklabels.builder import write_weak_labels
from cgc.weaklabels.cases import BOXES_FILE, MaskDefects, write_weak_label_case
from cgc.weaklabels.priors import PriorSettings
from cgc.weaklabels.rules import RULES
from cgc.weaklabels.quality import compare_to_truth

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SETS = ("davis17-a", "pets", "pets-val", "mugs", "bottles", "horses")
BOXES_ALONE = f"{PriorSettings.rule}, boxes alone"


def built(case: Path, images: Path, out: Path, rule: str | None, workers: int, reuse: bool) -> float | None:
    """Build weak labels from the case (`rule` None: from the boxes alone); the seconds it took, None if reused."""
    if reuse and (out / "annotations.json").is_file():
        return None
    start = time.perf_counter()
    write_weak_labels(images, None if rule is None else case / "masks", case / BOXES_FILE, out,
                      PriorSettings(rule=rule or PriorSettings.rule), workers=workers, progress=False, overwrite=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REAL, help="the folder of the real sets")
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--degrade", action="store_true", help="degrade the masks as real SOD masks are")
    parser.add_argument("--no-boxes-alone", action="store_true", help="leave out the boxes-alone mode")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--reuse", action="store_true", help="keep the cases and labels already built")
    parser.add_argument("--data", type=Path, default=Path("benchmarks/results/real-weaklabels-data"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not args.real.is_dir():
        raise SystemExit(f"{args.real}: the shared real photographs are not here (see docs/development.md)")
    tag = f"seed{args.seed}" + ("-degraded" if args.degrade else "")
    out = args.out or Path(f"benchmarks/results/real_weaklabels{'-degraded' if args.degrade else ''}.json")
    runs = [(rule, rule) for rule in RULES] + ([] if args.no_boxes_alone else [(BOXES_ALONE, None)])
    table: dict[str, dict[str, dict]] = {}
    earlier = json.loads(out.read_text())["table"] if args.reuse and out.is_file() else {}  # reused labels' timings
    for name in args.sets:
        truth, images = args.real / name / "annotations.json", args.real / name / "images"
        case = args.data / f"{name}-{tag}" / "case"
        if not (args.reuse and (case / BOXES_FILE).is_file()):
            write_weak_label_case(truth, images, case, args.seed, MaskDefects() if args.degrade else None,
                                  overwrite=True, progress=False)
        pictures = len(list((case / "masks").iterdir()))
        for row, rule in runs:
            labels = args.data / f"{name}-{tag}" / row.replace(", ", "-").replace(" ", "-")
            seconds = built(case, images, labels, rule, args.workers, args.reuse)
            quality = compare_to_truth(labels / "annotations.json", truth, case / BOXES_FILE, case / "masks")
            previous = earlier.get(row, {}).get(name, {})
            table.setdefault(row, {})[name] = {
                **asdict(quality), "pictures": pictures,
                "seconds_per_picture": round(seconds / pictures, 3) if seconds is not None
                else previous.get("seconds_per_picture")}
            print(f"{name:10s} {row:28s} mean IoU {quality.mean_iou:.4f}  overlapping {quality.mean_iou_overlapping}"
                  f"  ceiling {quality.ceiling_mean_iou}" + (f"  {seconds / pictures:.2f} s/picture" if seconds else ""),
                  flush=True)
        table.setdefault("ceiling (truth in mask, box)", {})[name] = {
            "mean_iou": table[runs[0][0]][name]["ceiling_mean_iou"], "pictures": pictures}

    width = 22
    print(f"\nMean IoU of the weak labels against the true instances ({'degraded' if args.degrade else 'perfect'} "
          f"union masks, simulated annotators, seed {args.seed}); in brackets: the instances whose box overlaps another; "
          f"s/picture on {args.workers} workers")
    print(f"{'rule':30s}" + "".join(f"{name:>{width}s}" for name in args.sets))
    for row, cells in table.items():
        line = f"{row:30s}"
        for name in args.sets:
            cell = cells.get(name, {})
            text = f"{cell['mean_iou']:.3f}" if cell.get("mean_iou") is not None else "-"
            if cell.get("mean_iou_overlapping") is not None:
                text += f" ({cell['mean_iou_overlapping']:.3f})"
            if cell.get("seconds_per_picture") is not None:
                text += f" {cell['seconds_per_picture']:.2f}s"
            line += f"{text:>{width}s}"
        print(line)
    atomic_write_json(out, {"seed": args.seed, "degraded": args.degrade, "workers": args.workers,
                            "machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                            "table": table}, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
