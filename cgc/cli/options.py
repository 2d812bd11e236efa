"""Options and error handling that every command shares: one place for each shared option."""

from __future__ import annotations

import dataclasses
import difflib
import errno
import functools
import math
import typing
from collections.abc import Callable
from typing import Any

import click

from cgc.devices import DEVICES
from cgc.errors import InputError, RunStopped
from cgc.settings import file_sections, flattened, nested, setting_name, setting_paths

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


def setting_option(path: str, setting: dataclasses.Field, kind: Any, preset_values: dict[str, Any]) -> Callable[..., Any]:
    """The click option of one setting declared with cgc.settings.option; default None = "not given". Its value
    reaches the command under the setting's path with "__" for the dots (solver__lr)."""
    meta = setting.metadata
    name = meta["flag"] or setting.name.replace("_", "-")
    default = meta["default_text"] or shown_default(setting.default)
    if preset_values.get(path, setting.default) != setting.default:
        default += f"; cpu preset: {shown_default(preset_values[path])}"
    help_text = f"{meta['help']} [{default}]"
    destination = path.replace(".", "__")
    if kind is bool:
        return click.option(f"--{name}/--no-{name}", destination, default=None, help=help_text)
    return click.option(f"--{name}", destination, type=setting_type(setting, kind), default=None, help=help_text)


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
    """An option for each setting of the (nested) `settings` dataclass that has one (or those in `only`), in
    declaration order; the help shows `preset_values` ({path: value}) where a preset changes a default."""
    return [setting_option(path, setting, kind, preset_values or {}) for path, setting, kind, set_only
            in setting_paths(settings) if not set_only and (only is None or path in only)]


def parse_set_values(settings: type, assignments: tuple[str, ...]) -> dict[str, Any]:
    """`--set PATH=VALUE` pairs as nested settings, each value read as its option would read it (none: off, where a
    setting may be off); an unknown path or a value its setting refuses is a UsageError naming it."""
    known = {path: (setting, kind) for path, setting, kind, _ in setting_paths(settings)}
    readers = file_sections(settings)
    values: dict[str, Any] = {}
    for assignment in assignments:
        path, equals, text = assignment.partition("=")
        path = path.strip().replace("-", "_")
        if equals and path in readers:  # a whole section from a file: its values, recorded one by one
            values |= {f"{path}.{name}": value for name, value in readers[path](text.strip()).items()}
            continue
        if not equals or path not in known:
            close = difflib.get_close_matches(path, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else "; `cgc train --help` lists them"
            raise click.UsageError(f"--set {assignment!r}: expected PATH=VALUE with PATH a setting such as "
                                   f"solver.momentum or network.mask.channels{hint}")
        setting, kind = known[path]
        if text.strip().lower() == "none" and allows_none(kind):
            values[path] = None
            continue
        try:
            values[path] = setting_type(setting, kind).convert(text.strip(), None, None)
        except click.BadParameter as exc:
            raise click.UsageError(f"--set {path}: {exc.format_message()}") from None
    return nested(values)


def set_only_names(settings: type, experimental: bool) -> list[str]:
    """The settings reached only through --set, by path: the advanced ones, or the experimental ones."""
    return [path for path, setting, _, set_only in setting_paths(settings)
            if set_only and bool(setting.metadata.get("experimental")) == experimental]


def settings_reference(settings: type, presets: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of every setting of `settings` by its path: how to give it, its default, the presets' values
    where they differ, and its help. The documentation's build writes it from the settings themselves
    (docs/hooks.py); `presets` are the presets' nested settings."""
    flat_presets = {name: flattened(values) for name, values in presets.items()}
    rows = ["| setting | given as | default | " + " | ".join(presets) + " | what |",
            "|---|---|---|" + "---|" * len(presets) + "---|"]
    for path, setting, _, set_only in setting_paths(settings):
        meta = setting.metadata
        given = f"`--set {path}=`" + (" (experimental)" if meta.get("experimental") else "") if set_only else \
            f"`{setting_name(setting)}`"
        default = meta["default_text"] or shown_default(setting.default)
        in_presets = [shown_default(values[path]) if path in values else "" for values in flat_presets.values()]
        what = meta["help"].replace("|", "\\|")
        rows.append(f"| `{path}` | {given} | {default} | " + " | ".join(in_presets) + f" | {what} |")
    return "\n".join(rows)


def given_settings(settings: type, values: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line (not None) as nested settings, with "none" turned into None where a
    setting allows it."""
    kinds = {path.replace(".", "__"): (path, kind) for path, _, kind, _ in setting_paths(settings)}
    return nested({kinds[key][0]: None if allows_none(kinds[key][1]) and value == "none" else value
                   for key, value in values.items() if key in kinds and value is not None})


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
