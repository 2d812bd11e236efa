"""Checkpoints: model, optimiser and schedule state at an iteration, written atomically.

A checkpoint holds only tensors and plain Python types, and is loaded with `weights_only=True`:
a crafted `.pt` file given to predict, eval or train --resume cannot run code.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgc.errors import InputError
from cgc.fileio import atomic_write_bytes

PATTERN = re.compile(r"^checkpoint_(\d{7})\.pt$")


PLAIN_TYPES = (str, int, float, bool, type(None), torch.Tensor)


def plain_state(value: Any) -> Any:
    """`value` with numpy scalars turned into Python numbers; anything else that is not a tensor or a plain type
    (dict, list, tuple of them) is a programming error, since `weights_only` loading would refuse it."""
    if isinstance(value, np.generic):  # first: np.float64 is also a float
        return value.item()
    if isinstance(value, PLAIN_TYPES):
        return value
    if isinstance(value, dict):
        items = {key: plain_state(item) for key, item in value.items()}
        # keep the original (an OrderedDict's metadata) when nothing changed
        return value if all(items[key] is value[key] for key in value) else items
    if isinstance(value, (list, tuple)):
        items = [plain_state(item) for item in value]
        return value if all(new is old for new, old in zip(items, value)) else type(value)(items)
    raise TypeError(f"a checkpoint holds only tensors and plain types, not {type(value).__name__}")


def write_state(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(plain_state(state), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def checkpoint_path(run_dir: str | Path, iteration: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"checkpoint_{iteration:07d}.pt"


def save_checkpoint(run_dir: str | Path, iteration: int, state: dict[str, Any], keep: int) -> Path:
    """Write `checkpoint_<iteration>.pt`, then drop all but the newest `keep` checkpoints."""
    path = checkpoint_path(run_dir, iteration)
    write_state(path, {"iteration": iteration, **state})
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def remove_unfinished_checkpoints(run_dir: str | Path) -> None:
    """Delete the temporary files of checkpoints whose writing was killed (a SIGKILL leaves them behind)."""
    folder = Path(run_dir) / "checkpoints"
    for path in folder.glob(".checkpoint_*.tmp") if folder.is_dir() else []:
        path.unlink(missing_ok=True)


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
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:  # what weights_only raises for anything but tensors and plain types
        lines = [line for line in str(exc).splitlines() if "GLOBAL" in line or "Unsupported" in line]
        detail = f" ({lines[0].strip()[:200]})" if lines else ""
        raise InputError(f"refused: holds more than tensors and plain types, so loading it could run code{detail}",
                         path) from None
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise InputError(f"cannot read checkpoint ({type(exc).__name__}: {str(exc)[:200]})", path) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise InputError("not a cgc checkpoint (no model/config inside)", path)
    return state


def add_to_checkpoint(path: str | Path, key: str, value: Any) -> None:
    """Store ``value`` (plain types) under ``key`` in an existing checkpoint, rewriting it atomically."""
    state = load_checkpoint(path)
    state[key] = value
    write_state(Path(path), state)
