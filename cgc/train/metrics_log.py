"""Training metrics: smoothed values for the progress bar, every row to CSV and TensorBoard."""

from __future__ import annotations

import csv
from collections import defaultdict, deque
from pathlib import Path
from statistics import median

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

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.csv_path = run_dir / METRICS_FILE
        self.columns: list[str] | None = None
        self.tensorboard = None
        if enabled:
            if self.csv_path.exists():
                with open(self.csv_path, newline="") as handle:
                    self.columns = next(csv.reader(handle), None)
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
