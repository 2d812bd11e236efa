"""Settings that a command offers as options, each declared once: in its dataclass, with its default and help.

`TrainConfig` (cgc train) and `CRFParams` (cgc crf, and the label update) declare their fields with
`option`; the command line generates its options from those fields.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def option(default: Any, help: str, *, minimum: float | None = None, maximum: float | None = None,
           above_minimum: bool = False, choices: tuple[str, ...] | None = None, default_text: str | None = None,
           flag: str | None = None) -> Any:
    """A dataclass field that a command offers as --NAME-WITH-HYPHENS: its default, help text and allowed values.

    The command line builds its option from this (cgc.cli.settings_options), so the default, the range and the
    help are stated once, beside the setting. ``default_text`` replaces the default in the help where the value is
    computed; ``flag`` names the option where the setting's name would be too long.
    """
    return field(default=default, metadata={"help": help, "minimum": minimum, "maximum": maximum,
                                            "above_minimum": above_minimum, "choices": choices,
                                            "default_text": default_text, "flag": flag})
