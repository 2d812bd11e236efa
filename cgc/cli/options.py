"""Options and error handling that every command shares: one place for each shared option."""

from __future__ import annotations

import dataclasses
import errno
import functools
import math
import typing
from collections.abc import Callable
from typing import Any

import click

from cgc.devices import DEVICES
from cgc.errors import InputError, RunStopped
from cgc.settings import has_option, setting_name

FILE_SYSTEM_PROBLEMS = {  # errno -> what the user can fix; any other OSError is a bug and keeps its traceback
    errno.EACCES: "permission denied", errno.EPERM: "permission denied", errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
    errno.EEXIST: "a file is in the way of a folder", errno.ENOTDIR: "a file is in the way of a folder",
    errno.EISDIR: "is a folder, not a file", errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links", errno.EINVAL: "a name this file system does not allow",
    errno.ENOENT: "a folder on the way is missing", errno.EMLINK: "too many links or entries in the folder",
    errno.EFBIG: "file too large for this file system", errno.EBUSY: "in use by the system",
    errno.EXDEV: "cannot move across file systems",
}


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange that also refuses nan and inf: NaN compares false with every bound, so it passed them."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def reports_input_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn InputError (a user mistake), RunStopped (a watched-for stop, such as a diverged loss) and file-system
    refusals (read-only, full, blocked output paths) into click's one-line error and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (InputError, RunStopped) as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            if exc.errno not in FILE_SYSTEM_PROBLEMS:
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}cannot write or read here: {FILE_SYSTEM_PROBLEMS[exc.errno]}") from None

    return wrapper


def overwrite_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--overwrite: allow replacing an output folder that cgc did not write (never one that holds an input)."""
    return click.option("--overwrite", is_flag=True, default=False,
                        help="Replace the output folder even if it is not empty and was not written by this "
                             "command before.")(command)


@dataclasses.dataclass(frozen=True)
class LabelStudioServer:
    """The server options of a command: where, with which key, how long to wait for an answer."""

    url: str | None
    api_key: str | None
    timeout: float

    def connect(self) -> Any:
        from cgc.annotate.labelstudio_client import connect_label_studio

        return connect_label_studio(self.url, self.api_key, timeout=self.timeout)


def labelstudio_server_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--url, --api-key (from LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY when not given) and --timeout, handed to the
    command as one ``server``."""
    from cgc.annotate.labelstudio_defaults import DEFAULT_TIMEOUT

    @functools.wraps(command)
    def with_server(*args: Any, url: str | None, api_key: str | None, timeout: float, **kwargs: Any) -> Any:
        return command(*args, server=LabelStudioServer(url, api_key, timeout), **kwargs)

    options = [
        click.option("--url", default=None, metavar="URL",
                     help="Label Studio server, e.g. http://localhost:8080 [env LABEL_STUDIO_URL]."),
        click.option("--api-key", default=None, metavar="KEY",
                     help="Personal access token or legacy token; never printed [env LABEL_STUDIO_API_KEY]."),
        click.option("--timeout", type=FiniteFloatRange(min=1), default=DEFAULT_TIMEOUT, show_default=True,
                     metavar="SECONDS", help="How long to wait for each answer of the server (transient failures "
                     "are retried 3 times on top)."),
    ]
    for option in reversed(options):
        with_server = option(with_server)
    return with_server


class OptionalFloat(click.ParamType):
    """A number, or 'none' for None (a setting that can be switched off)."""

    name = "number|none"

    def __init__(self, min_value: float | None = None) -> None:
        self.min_value = min_value

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return "none"
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number nor 'none'", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.min_value is not None and number < self.min_value:
            self.fail(f"{number:g} is below {self.min_value:g}", param, ctx)
        return number


class CommaSeparatedInts(click.ParamType):
    """Integers separated by commas, as a tuple: "200,300" -> (200, 300)."""

    name = "n[,n...]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            return tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers", param, ctx)


def shown_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def allows_none(kind: Any) -> bool:
    """Whether a setting's type admits None (given as "none" on the command line)."""
    return type(None) in typing.get_args(kind)


def setting_option(setting: dataclasses.Field, kind: Any, preset_values: dict[str, Any]) -> Callable[..., Any]:
    """The click option of one setting declared with cgc.settings.option; default None = "not given"."""
    meta = setting.metadata
    name = meta["flag"] or setting.name.replace("_", "-")
    default = meta["default_text"] or shown_default(setting.default)
    if preset_values.get(setting.name, setting.default) != setting.default:
        default += f"; cpu preset: {shown_default(preset_values[setting.name])}"
    help_text = f"{meta['help']} [{default}]"
    if kind is bool:
        return click.option(f"--{name}/--no-{name}", setting.name, default=None, help=help_text)
    return click.option(f"--{name}", setting.name, type=setting_type(setting, kind), default=None, help=help_text)


def setting_type(setting: dataclasses.Field, kind: Any) -> click.ParamType:
    """The click type that reads one setting's value from text, with its range and choices."""
    meta = setting.metadata
    if kind is bool:
        return click.BOOL
    optional = allows_none(kind)
    base = next((arg for arg in typing.get_args(kind) if arg is not type(None)), kind) if optional else kind
    low, high = meta["minimum"], meta["maximum"]
    if meta["choices"] is not None:
        param_type: Any = click.Choice(meta["choices"])
    elif typing.get_origin(base) is tuple:
        param_type = CommaSeparatedInts()
    elif base is float and optional:
        param_type = OptionalFloat(min_value=low)
    elif base is float:
        param_type = FiniteFloatRange(low, high, min_open=meta["above_minimum"])
    elif base is int:
        param_type = click.IntRange(low, high) if low is not None or high is not None else click.INT
    else:
        param_type = click.STRING
    return param_type


def settings_options(settings: type, preset_values: dict[str, Any] | None = None,
                     only: tuple[str, ...] | None = None) -> list[Callable[..., Any]]:
    """An option for each field of the `settings` dataclass declared with cgc.settings.option (or those in `only`),
    in field order; the help shows `preset_values` where a preset changes a default."""
    hints = typing.get_type_hints(settings)
    return [setting_option(setting, hints[setting.name], preset_values or {}) for setting in dataclasses.fields(settings)
            if "help" in setting.metadata and has_option(setting) and (only is None or setting.name in only)]


def parse_set_values(settings: type, assignments: tuple[str, ...]) -> dict[str, Any]:
    """`--set NAME=VALUE` pairs as settings, each value read as its option would read it (none: off, where a
    setting may be off); an unknown name or a value its setting refuses is a UsageError naming it."""
    hints = typing.get_type_hints(settings)
    known = {setting.name: setting for setting in dataclasses.fields(settings) if "help" in setting.metadata}
    values: dict[str, Any] = {}
    for assignment in assignments:
        name, equals, text = assignment.partition("=")
        name = name.strip().replace("-", "_")
        if not equals or name not in known:
            raise click.UsageError(f"--set {assignment!r}: expected NAME=VALUE with NAME one of "
                                   f"{', '.join(sorted(known))}")
        if text.strip().lower() == "none" and allows_none(hints[name]):
            values[name] = None
            continue
        try:
            values[name] = setting_type(known[name], hints[name]).convert(text.strip(), None, None)
        except click.BadParameter as exc:
            raise click.UsageError(f"--set {name}: {exc.format_message()}") from None
    return values


def set_only_names(settings: type, experimental: bool) -> list[str]:
    """The settings reached only through --set: the advanced ones, or the experimental ones."""
    return [setting.name for setting in dataclasses.fields(settings) if "help" in setting.metadata
            and not has_option(setting) and bool(setting.metadata.get("experimental")) == experimental]


def settings_reference(settings: type, presets: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of every setting of `settings`: how to give it, its default, the presets' values where they
    differ, and its help. The documentation's build writes it from the settings themselves (docs/hooks.py)."""
    rows = ["| setting | given as | default | " + " | ".join(presets) + " | what |",
            "|---|---|---|" + "---|" * len(presets) + "---|"]
    for setting in dataclasses.fields(settings):
        meta = setting.metadata
        if "help" not in meta:
            continue
        given = f"`{setting_name(setting)}`" if has_option(setting) else \
            f"`--set {setting.name}=`" + (" (experimental)" if meta.get("experimental") else "")
        default = meta["default_text"] or shown_default(setting.default)
        in_presets = [shown_default(values[setting.name]) if setting.name in values else "" for values in presets.values()]
        what = meta["help"].replace("|", "\\|")
        rows.append(f"| `{setting.name}` | {given} | {default} | " + " | ".join(in_presets) + f" | {what} |")
    return "\n".join(rows)


def given_settings(settings: type, values: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line (not None), with "none" turned into None where a setting allows it."""
    may_be_none = {name for name, kind in typing.get_type_hints(settings).items() if allows_none(kind)}
    names = {setting.name for setting in dataclasses.fields(settings)}
    return {key: None if key in may_be_none and value == "none" else value
            for key, value in values.items() if key in names and value is not None}


def with_options(command: Callable[..., Any], options: list[Callable[..., Any]]) -> Callable[..., Any]:
    for option in reversed(options):
        command = option(command)
    return command


SCORE_THRESHOLD_HELP = ("Keep instances with at least this score [the threshold `cgc calibrate` recorded in the "
                        "checkpoint, else 0.5].")


def device_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--device: where a model runs; auto takes a GPU when there is one."""
    return click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                        help="Where the model runs; auto: a GPU if there is one.")(command)


def workers_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--workers: processes for work done picture by picture."""
    return click.option("--workers", type=click.IntRange(min=1), default=None,
                        help="Worker processes [default: every core].")(command)
