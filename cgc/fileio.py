"""Reading and writing files so that a crash never leaves a half-written output behind."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
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


OUTPUT_MARK = ".cgc-output"  # a JSON file {"kind": ..., "entries": [...]} inside every folder cgc writes as a whole


def output_mark(path: Path) -> dict[str, Any] | None:
    """The mark of a folder cgc wrote as a whole, or None if cgc did not write it."""
    try:
        mark = json.loads((path / OUTPUT_MARK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return mark if isinstance(mark, dict) else None


def output_kind(path: Path) -> str | None:
    """The kind of cgc output `path` holds, or None if cgc did not write it."""
    mark = output_mark(path)
    return mark.get("kind") if mark is not None else None


def written_by_cgc(mark: dict[str, Any]) -> set[str] | None:
    """The top-level names an output folder's mark says cgc wrote there; None where the mark does not list them
    (a folder written before marks listed them: all of it is cgc's)."""
    entries = mark.get("entries")
    return {str(name) for name in entries} if isinstance(entries, list) else None


def check_replaceable(path: str | Path, kind: str, overwrite: bool = False) -> None:
    """Refuse, before any work starts, to write into a folder that cgc did not write as a `kind` output.

    A missing or empty folder is fine; so is one that a previous run wrote with the same kind. Anything
    else (a folder of pictures, another tool's output) is written into only with `overwrite`, and even then
    its own files are kept, but for those with the names cgc writes.
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


def same_file(first: Path, second: Path) -> bool:
    """Whether two existing paths are one file (hard links included)."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def refuse_outputs_over_inputs(outputs: Mapping[str, str | Path | None], inputs: Mapping[str, str | Path | None]) -> None:
    """The output guard every command runs before any work: no output may be one of its inputs (writing it would
    destroy the input) or hold one (replacing the folder would delete it), links and hard links resolved; nor may
    two outputs be one path. Keys name the options in the message."""
    given_inputs = [(option, Path(path)) for option, path in inputs.items() if path is not None]
    given_outputs = [(option, Path(path)) for option, path in outputs.items() if path is not None]
    for option, output in given_outputs:
        target = output.resolve()
        for source_option, source in given_inputs:
            resolved = source.resolve()
            if resolved == target or same_file(source, output):
                raise InputError(f"is also the input {source_option}: writing {option} there would destroy it; "
                                 f"choose another {option}", output)
            if target in resolved.parents:
                raise InputError(f"holds the input {source_option} ({source}): replacing it would delete that; "
                                 f"choose another {option}", output)
    for index, (option, output) in enumerate(given_outputs):
        for other_option, other in given_outputs[index + 1:]:
            if output.resolve() == other.resolve():
                raise InputError(f"is given as both {option} and {other_option}: one would overwrite the other", output)


@contextmanager
def atomic_directory(path: str | Path, kind: str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces `path` only if the block succeeds.

    The folder is marked as a `kind` output listing the names cgc wrote, and `check_replaceable` guards
    what it replaces. Only what cgc wrote is replaced: any other file in `path` (a note a user put in an
    earlier output, or the files of a foreign folder written into with `overwrite`) moves into the new
    folder, but for names cgc writes now. No other path is touched: the old folder is moved aside under
    a name made fresh for it, never one that may already exist.
    """
    path = Path(path)
    check_replaceable(path, kind, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        written = sorted(entry.name for entry in tmp.iterdir())
        (tmp / OUTPUT_MARK).write_text(json.dumps({"kind": kind, "entries": written}), encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not path.exists():
        os.replace(tmp, path)
        return
    keep_foreign_entries(path, tmp, set(written))
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    os.replace(path, old)  # onto the empty folder just made: rename(2) replaces an empty directory
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def keep_foreign_entries(path: Path, fresh: Path, written: set[str]) -> None:
    """Move the entries of the old output `path` that cgc did not write into `fresh`, but for names cgc writes;
    if one cannot be moved, the ones moved go back and the error stands."""
    mark = output_mark(path)
    ours = set() if mark is None else written_by_cgc(mark)
    if ours is None:
        return
    moved: list[str] = []
    try:
        for entry in sorted(path.iterdir()):
            if entry.name not in ours and entry.name not in written and entry.name != OUTPUT_MARK:
                os.replace(entry, fresh / entry.name)
                moved.append(entry.name)
    except BaseException:
        for name in moved:
            os.replace(fresh / name, path / name)
        shutil.rmtree(fresh, ignore_errors=True)
        raise


@contextmanager
def exclusive_lock(folder: str | Path, holder: str) -> Iterator[None]:
    """Hold a lock on `folder` (made if missing) for the block: a second writer of the same folder fails at once,
    naming `holder`, instead of both going on and mixing their files. The lock is the kernel's (flock), so it
    ends with the process, a crashed one included."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another {holder} is writing this folder now: wait for it to end, or choose "
                             f"another folder", folder) from None
        yield
    finally:
        handle.close()


LOCK_FILE = ".cgc-lock"


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
