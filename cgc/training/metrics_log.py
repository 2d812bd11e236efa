"""Training metrics: smoothed values for the progress bar, every row to CSV and TensorBoard."""

from __future__ import annotations

import csv
import io
from collections import defaultdict, deque
from pathlib import Path
from statistics import median

from cgc.fileio import atomic_write_bytes

METRICS_FILE = "metrics.csv"  # in the run folder: one row per iteration


class SmoothedValues:
    """Median over the last `window` iterations, like torchvision's MetricLogger."""

    def __init__(self, window: int = 20) -> None:
        self.values: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))

    def update(self, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.values[key].append(value)

    def summary(self) -> dict[str, str]:
        return {key: f"{median(history):.3f}" for key, history in self.values.items()}


class MetricsWriter:
    """Appends one row per logged iteration to RUN/metrics.csv and RUN/tensorboard/ (main process only)."""

    def __init__(self, run_dir: Path, enabled: bool, start: int = 0) -> None:
        """Continue RUN/metrics.csv from iteration `start`: rows after it (logged before a crash, after the
        checkpoint now resumed) are dropped, so that no iteration appears twice."""
        self.enabled = enabled
        self.csv_path = run_dir / METRICS_FILE
        self.columns: list[str] | None = None
        self.tensorboard = None
        if enabled:
            if self.csv_path.exists() and start > 0:
                self.columns = keep_rows_until(self.csv_path, start)
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional: CSV is always written
                self.tensorboard = None

    def write(self, iteration: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        row = {"iteration": iteration, **values}
        if self.columns is None:
            self.columns = list(row)
            with open(self.csv_path, "w", newline="") as handle:
                csv.writer(handle).writerow(self.columns)
        with open(self.csv_path, "a", newline="") as handle:
            csv.writer(handle).writerow([row.get(column, "") for column in self.columns])
        if self.tensorboard is not None:
            for key, value in values.items():
                self.tensorboard.add_scalar(key, value, iteration)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def keep_rows_until(path: Path, last_iteration: int) -> list[str] | None:
    """Rewrite the CSV (atomically) without rows after `last_iteration`; return its columns."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return None
    columns, kept = rows[0], [row for row in rows[1:] if row and int(float(row[0])) <= last_iteration]
    if len(kept) < len(rows) - 1:
        buffer = io.StringIO()
        csv.writer(buffer).writerows([columns, *kept])
        atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
    return columns
