"""Settings that a command offers as options, each declared once: in its dataclass, with its default and help.

`TrainConfig` (cgc train) and `CRFParams` (cgc crf, and the label update) declare their fields with
`option`; the command line generates its options from those fields.
"""

from __future__ import annotations

import math
import typing
from dataclasses import field, fields
from typing import Any

from cgc.errors import InputError


def option(default: Any, help: str, *, minimum: float | None = None, maximum: float | None = None,
           above_minimum: bool = False, choices: tuple[str, ...] | None = None, default_text: str | None = None,
           flag: str | None = None, advanced: bool = False, experimental: bool = False) -> Any:
    """A dataclass field that a command offers as --NAME-WITH-HYPHENS: its default, help text and allowed values.

    The command line builds its option from this (cgc.cli.options.settings_options), so the default, the range and the
    help are stated once, beside the setting. ``default_text`` replaces the default in the help where the value is
    computed; ``flag`` names the option where the setting's name would be too long. An ``advanced`` setting (the
    network's details, the solver's beyond its learning rate and schedule, the label update's) gets no option of its
    own, so that `cgc train --help` keeps to the data, the run and the solver, as torchvision's references do:
    `--set NAME=VALUE`, a settings file and the presets reach it. An ``experimental`` setting, measured not to
    help, gets none either, so that the benchmarks that measured it can run again.
    """
    return field(default=default, metadata={"help": help, "minimum": minimum, "maximum": maximum,
                                            "above_minimum": above_minimum, "choices": choices,
                                            "default_text": default_text, "flag": flag, "advanced": advanced,
                                            "experimental": experimental})


def check_settings(settings: Any, source: str | None = None) -> None:
    """Every field declared with `option` holds a value its option would accept: the right kind, finite, within its
    range and among its choices. The command line checks what is typed; this checks what arrives otherwise (a
    saved config.json, a tuned CRF file, the Python API), so that a NaN or a wrong kind is refused in one line."""
    hints = typing.get_type_hints(type(settings))
    for setting in fields(settings):
        meta = setting.metadata
        if "help" not in meta:
            continue
        value, name = getattr(settings, setting.name), setting_name(setting)
        problem = value_problem(value, hints[setting.name], meta)
        if problem:
            raise InputError(f"{name} {value!r}: {problem}", source)


def value_problem(value: Any, kind: Any, meta: dict[str, Any]) -> str | None:
    """Why `value` does not fit a setting of type `kind` with option metadata `meta`, or None."""
    arguments = typing.get_args(kind)
    if value is None:
        return None if type(None) in arguments else "a value is needed"
    base = next((argument for argument in arguments if argument is not type(None)), kind) if arguments and \
        typing.get_origin(kind) is not tuple else kind
    if typing.get_origin(base) is tuple:
        if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return "must be whole numbers"
        return None
    if base is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if base in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (base is int and not isinstance(value, int)):
            return f"must be a {'whole ' if base is int else ''}number"
        if not math.isfinite(value):
            return "must be a finite number"
        low, high = meta.get("minimum"), meta.get("maximum")
        if low is not None and (value < low or (meta.get("above_minimum") and value == low)):
            return f"must be {'above' if meta.get('above_minimum') else 'at least'} {low:g}"
        if high is not None and value > high:
            return f"must be at most {high:g}"
        return None
    if base is str:
        if not isinstance(value, str):
            return "must be text"
        choices = meta.get("choices")
        return None if choices is None or value in choices else f"must be one of {', '.join(choices)}"
    return None


def has_option(setting: Any) -> bool:
    """Whether a setting declared with `option` has a command-line option of its own."""
    return not (setting.metadata.get("advanced") or setting.metadata.get("experimental"))


def setting_name(setting: Any) -> str:
    """How the user names a setting: its option (--lr), or for one without an option its --set key (mask_window)."""
    meta = setting.metadata
    if not has_option(setting):
        return setting.name
    return f"--{meta['flag'] or setting.name.replace('_', '-')}"
