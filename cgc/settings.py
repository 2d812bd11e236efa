"""Settings that a command offers as options, each declared once: in its dataclass, with its default and help.

`TrainConfig`'s sections (cgc train: the network's spec, the solver, the label update's CRF and
guards) and `CRFParams` (cgc crf) declare their fields with `option`. From those fields come the
command line's options and `--set PATH=VALUE`, the check of every value however it arrives, the
reading of saved settings and the documentation's settings table; nested sections are walked by
the same functions, so a setting is declared in one place only.
"""

from __future__ import annotations

import math
import typing
from dataclasses import field, fields, is_dataclass, replace
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
    `--set PATH=VALUE`, a settings file and the presets reach it. An ``experimental`` setting, measured not to
    help, gets none either, so that the benchmarks that measured it can run again.
    """
    return field(default=default, metadata={"help": help, "minimum": minimum, "maximum": maximum,
                                            "above_minimum": above_minimum, "choices": choices,
                                            "default_text": default_text, "flag": flag, "advanced": advanced,
                                            "experimental": experimental})


def check_settings(settings: Any, source: str | None = None, where: str = "") -> None:
    """Every field declared with `option` holds a value its option would accept: the right kind, finite, within its
    range and among its choices; sections are checked setting by setting. The command line checks what is typed; this
    checks what arrives otherwise (a saved config.json, a tuned CRF file, the Python API), so that a NaN or a wrong kind
    is refused in one line."""
    hints = typing.get_type_hints(type(settings))
    for setting in fields(settings):
        value = getattr(settings, setting.name)
        if is_dataclass(value):
            check_settings(value, source, f"{where}{setting.name}.")
            continue
        meta = setting.metadata
        if "help" not in meta:
            continue
        problem = value_problem(value, hints[setting.name], meta)
        if problem:
            raise InputError(f"{setting_name(setting, where)} {value!r}: {problem}", source)


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
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            return f"must be one of {', '.join(map(str, choices))}"
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


def setting_name(setting: Any, where: str = "") -> str:
    """How the user names a setting: its option (--lr), or for one without an option its --set path
    (network.mask.output_window_per_side); ``where`` is the path of its section."""
    meta = setting.metadata
    if not has_option(setting):
        return where + setting.name
    return f"--{meta['flag'] or setting.name.replace('_', '-')}"


# Nested settings: a dataclass whose fields are themselves settings dataclasses (TrainConfig's sections, the network's
# rpn, box and mask sections). A setting is named by its dotted path ("solver.lr", "network.mask.channels"). A field
# whose metadata holds "variants" ({name: dataclass}) holds one of several dataclasses, picked by its "name" field (the
# mask heads): its settings are those of every variant.


def variants_of(setting: Any) -> dict[str, type] | None:
    return setting.metadata.get("variants")


def is_section(kind: Any) -> bool:
    return isinstance(kind, type) and is_dataclass(kind)


def file_sections(kind: type, prefix: str = "") -> dict[str, Any]:
    """The sections that may also be given whole by a file (`--set PATH=FILE`), by path: each field's ``from_file``
    reader, which turns the file into the section's values (the label update's CRF from a `cgc crf tune` file)."""
    hints = typing.get_type_hints(kind)
    found: dict[str, Any] = {}
    for setting in fields(kind):
        if "from_file" in setting.metadata:
            found[prefix + setting.name] = setting.metadata["from_file"]
        elif is_section(hints[setting.name]):
            found |= file_sections(hints[setting.name], f"{prefix}{setting.name}.")
    return found


def variant_fields(variants: dict[str, type]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields by name, type hints by name) over every variant, first declaration first."""
    found: dict[str, Any] = {}
    hints: dict[str, Any] = {}
    for kind in variants.values():
        kind_hints = typing.get_type_hints(kind)
        for setting in fields(kind):
            if setting.name not in found:
                found[setting.name], hints[setting.name] = setting, kind_hints[setting.name]
    return found, hints


def setting_paths(kind: type, prefix: str = "", set_only: bool = False) -> list[tuple[str, Any, Any, bool]]:
    """Every leaf setting of a (nested) settings dataclass declared with `option`: (dotted path, field, type hint,
    whether it is given only by --set), in declaration order. Sections are walked; a field with variants lists every
    variant's settings; a section marked advanced (the label update's CRF) gives every setting inside it --set only."""
    hints = typing.get_type_hints(kind)
    found = []
    for setting in fields(kind):
        path, hint = prefix + setting.name, hints[setting.name]
        inner_set_only = set_only or bool(setting.metadata.get("advanced"))
        variants = variants_of(setting)
        if variants is not None:
            leaves, leaf_hints = variant_fields(variants)
            found += [(f"{path}.{name}", leaf, leaf_hints[name], inner_set_only or not has_option(leaf))
                      for name, leaf in leaves.items() if "help" in leaf.metadata]
        elif is_section(hint):
            found += setting_paths(hint, path + ".", inner_set_only)
        elif "help" in setting.metadata:
            found.append((path, setting, hint, set_only or not has_option(setting)))
    return found


def flattened(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested dict of settings as {dotted path: value}."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= flattened(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def nested(values: dict[str, Any]) -> dict[str, Any]:
    """{dotted path: value} as a nested dict (the inverse of `flattened`)."""
    tree: dict[str, Any] = {}
    for path, value in values.items():
        *sections, name = path.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    return tree


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Two nested dicts of settings, `over` winning setting by setting (not section by section)."""
    return nested(flattened(base) | flattened(over))


def with_settings(settings: Any, changes: dict[str, Any], where: str = "", strict: bool = True) -> Any:
    """A settings dataclass with a nested dict of changes: a section is changed by a dict of its own settings and keeps
    the rest; a field with variants switches variant by "name" and keeps the settings the two variants share; lists
    are read as tuples. A name the settings do not have is an InputError naming its path, unless ``strict`` is off:
    then it is ignored, as a saved file of another version may hold names this one does not know."""
    known = {setting.name: setting for setting in fields(settings)}
    unknown = sorted(set(changes) - set(known))
    if unknown and strict:
        raise InputError(f"unknown setting {where}{unknown[0]}; {describe_choices(type(settings), where)}")
    hints = typing.get_type_hints(type(settings))
    values = {}
    for name, change in changes.items():
        if name not in known:
            continue
        current, variants = getattr(settings, name), variants_of(known[name])
        if variants is not None and isinstance(change, dict):
            values[name] = with_variant(current, variants, change, f"{where}{name}.", strict)
        elif is_section(hints[name]) and isinstance(change, dict):
            values[name] = with_settings(current, change, f"{where}{name}.", strict)
        elif is_section(hints[name]) and not is_dataclass(change):
            raise InputError(f"{where}{name} is a section: give its settings ({where}{name}.NAME)")
        else:
            values[name] = tuple(change) if isinstance(change, list) else change
    return replace(settings, **values)


def with_variant(current: Any, variants: dict[str, type], changes: dict[str, Any], where: str, strict: bool) -> Any:
    """`current` switched to the variant ``changes["name"]`` (if given), with the other changes."""
    name = changes.get("name", current.name)
    if name not in variants:
        raise InputError(f"{where}name {name!r}: choose one of {', '.join(variants)}")
    kind = variants[name]
    own = {setting.name for setting in fields(kind)}
    unknown = sorted(set(changes) - set(variant_fields(variants)[0]))
    if unknown and strict:
        raise InputError(f"unknown setting {where}{unknown[0]}; {describe_choices(kind, where)}")
    foreign = sorted(set(changes) - own - set(unknown))
    if foreign and strict:
        raise InputError(f"{where}{foreign[0]} is not a setting of {where}name {name} "
                         f"(its settings: {', '.join(sorted(own - {'name'}))})")
    kept = {setting.name: getattr(current, setting.name) for setting in fields(current)
            if setting.name in own and setting.name != "name"}
    return with_settings(kind(**kept), {key: value for key, value in changes.items() if key in own - {"name"}}, where,
                         strict)


def describe_choices(kind: type, where: str) -> str:
    names = [path for path, *_ in setting_paths(kind, where)]
    return f"the settings here are {', '.join(names)}" if names else "this section has no settings"
