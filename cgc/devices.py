"""Where a model runs: the choices every command offers, and the one place that turns a choice into a device.

Torch-free at import, so that the command line and the configuration can name the choices without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cgc.errors import InputError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """`auto` takes the GPU when there is one; `cuda` without one is the user's mistake."""
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda was asked for, but no CUDA GPU is visible to torch")
        return torch.device("cuda", local_rank)
    return torch.device(requested)
