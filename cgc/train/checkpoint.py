"""Checkpoints: model, optimiser and schedule state at an iteration, written atomically."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from cgc.errors import InputError
from cgc.fileio import atomic_write_bytes

PATTERN = re.compile(r"^checkpoint_(\d{7})\.pt$")


def checkpoint_path(run_dir: str | Path, iteration: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"checkpoint_{iteration:07d}.pt"


def save_checkpoint(run_dir: str | Path, iteration: int, state: dict[str, Any], keep: int) -> Path:
    """Write `checkpoint_<iteration>.pt`, then drop all but the newest `keep` checkpoints."""
    buffer = io.BytesIO()
    torch.save({"iteration": iteration, **state}, buffer)
    path = checkpoint_path(run_dir, iteration)
    atomic_write_bytes(path, buffer.getvalue())
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if PATTERN.match(path.name))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint not found", path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise InputError(f"cannot read checkpoint ({type(exc).__name__}: {exc})", path) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise InputError("not a cgc checkpoint (no model/config inside)", path)
    return state


def add_to_checkpoint(path: str | Path, key: str, value: Any) -> None:
    """Store ``value`` (plain types) under ``key`` in an existing checkpoint, rewriting it atomically."""
    state = load_checkpoint(path)
    state[key] = value
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())
