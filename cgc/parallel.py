"""Ordered parallel map over worker processes, with a progress bar.

Workers come from a fork server, not a plain fork: a process that has already run OpenCV
or torch holds thread pools that a forked child inherits in a broken state (it can hang), which
happens as soon as the library is called from a program or a test rather than the command line.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")

COMMON_MODULES = ("numpy", "cv2", "pycocotools.mask")  # loaded once in the fork server, not in every worker


def worker_context(function: Callable[..., Any]) -> BaseContext:
    """The fork-server context for workers that run `function`: the server preloads the common libraries and
    the module that defines `function` (for a functools.partial, its function's), so workers start warm."""
    target = function.func if isinstance(function, partial) else function
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*COMMON_MODULES, target.__module__])
    return context


def quiet_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # the pool already uses every core


def map_in_processes(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    description: str,
    progress: bool = True,
) -> list[Result]:
    """`[function(item) for item in items]`, spread over `workers` processes, results in order.

    `function` must be picklable (a module-level function or a functools.partial of one).
    """
    bar: Callable[[Iterable[Any]], Iterable[Any]] = lambda iterable: tqdm(
        iterable, total=len(items), desc=description, unit="img", disable=None if progress else True
    )
    if workers <= 1 or len(items) < 2:
        return [function(item) for item in bar(items)]
    context = worker_context(function)
    chunksize = max(1, min(16, len(items) // (4 * workers)))
    with context.Pool(min(workers, len(items)), initializer=quiet_worker) as pool:
        return list(bar(pool.imap(function, items, chunksize=chunksize)))
