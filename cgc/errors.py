"""The two exception types the command line reports in one line, without a traceback.

`InputError` is a problem the user can fix (bad files, bad options); `RunStopped` is a run that
stopped on a condition it watches for (a loss that diverged). Anything else, a crashed worker
included, is a bug or a fault of the machine and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A user-side problem with an input, named by its path where there is one."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class RunStopped(Exception):
    """A run stopped on a condition it checks for; the message says what happened and what to try."""
