"""One exception type for problems the user can fix (bad files, bad options).

The command line turns it into a one-line message without a traceback; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A user-side problem with an input, named by its path where there is one."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)
