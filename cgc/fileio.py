"""Reading and writing files so that a crash never leaves a half-written output behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cgc.errors import InputError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it into place in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_file(path: str | Path, option: str = "--out") -> None:
    """Fail now, not after the work, if the output file `path` cannot be written: a folder in its place, a file
    in the way of its folder, or a folder that refuses a new file (read-only, no permission)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} is a directory; give a file name", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.unlink(probe)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = None) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=indent).encode("utf-8"))


OUTPUT_MARK = ".cgc-output"  # a JSON file {"kind": ...} inside every folder cgc writes as a whole


def output_kind(path: Path) -> str | None:
    """The kind of cgc output `path` holds, or None if cgc did not write it."""
    try:
        mark = json.loads((path / OUTPUT_MARK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return mark.get("kind") if isinstance(mark, dict) else None


def check_replaceable(path: str | Path, kind: str, overwrite: bool = False) -> None:
    """Refuse, before any work starts, to replace a folder that cgc did not write as a `kind` output.

    A missing or empty folder is fine; so is one that a previous run wrote with the same kind. Anything
    else (a folder of pictures, another tool's output) is replaced only with `overwrite`.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a folder", path)
    if not path.is_dir() or overwrite or output_kind(path) == kind:
        return
    try:
        empty = next(path.iterdir(), None) is None
    except OSError as exc:
        raise InputError(f"cannot read the output folder: {exc.strerror}", path) from None
    if not empty:
        found = output_kind(path)
        what = f"holds a cgc {found} output" if found else "is not empty and was not written by cgc"
        raise InputError(f"{what}; it would be replaced by {kind}: choose another folder or pass --overwrite", path)


def refuse_output_over_inputs(out: str | Path, *inputs: str | Path) -> None:
    """Refuse an output folder that is, or holds, one of the inputs: replacing it would delete them."""
    target = Path(out).resolve()
    for given in inputs:
        source = Path(given).resolve()
        if source == target or target in source.parents:
            raise InputError(f"holds the input {given}; choose another output folder", out)


@contextmanager
def atomic_directory(path: str | Path, kind: str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces `path` only if the block succeeds.

    The folder is marked as a `kind` output, and `check_replaceable` guards what it replaces.
    """
    path = Path(path)
    check_replaceable(path, kind, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        (tmp / OUTPUT_MARK).write_text(json.dumps({"kind": kind}), encoding="utf-8")
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = path.with_name(f".{path.name}.old")
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Load JSON, turning a missing or malformed file into an InputError naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found", path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what}: {exc}", path) from None
