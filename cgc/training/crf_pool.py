"""The label update's CRF worker processes: a bounded pool that fails loudly instead of waiting forever.

Jobs are `decide_instance` calls; a pool of ``workers=0`` runs each at submission, in this process.
The workers come from the fork server of `cgc.parallel`, run niced below the trainer and report
their pids, so that `close` can end a worker stuck in a job without reaching into the executor.
"""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from cgc.errors import InputError
from cgc.parallel import quiet_worker, worker_context
from cgc.refine.instance_update import UpdateDecision, UpdateJob, decide_instance

ROUND_WAIT_SECONDS = 600.0  # longest wait for a round's CRF jobs before giving up with an error
CLOSE_GRACE_SECONDS = 10.0  # how long a worker may take to finish its job at shutdown before it is terminated
WORKER_NICENESS = 10  # added to a CRF worker's nice value (see crf_worker_setup)


class LabelUpdateError(RuntimeError):
    """A CRF worker failed (or died, or hung): training stops instead of waiting forever, with the traceback."""


def crf_worker_setup(started: Any = None) -> None:
    """Each CRF worker's start: ignore Ctrl-C, lower its priority, and report its pid on ``started``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's to handle; it shuts the pool down
    quiet_worker()
    # Below the trainer in priority: the CRF fills the cycles training leaves idle (data loading,
    # Python between kernels) instead of taking a core from every step; what it has not finished
    # by a round boundary the trainer waits for there.
    os.nice(WORKER_NICENESS)
    if started is not None:
        started.put(os.getpid())


class CRFPool:
    """A bounded pool of CRF worker processes; ``workers=0`` runs each job at submission, in this process."""

    def __init__(self, workers: int, max_pending: int = 64) -> None:
        self.workers = workers
        self.max_pending = max(1, max_pending)
        self.pending: list[tuple[UpdateJob, Future]] = []
        self.finished: list[UpdateDecision] = []
        self.executor: ProcessPoolExecutor | None = None
        self.pids: set[int] = set()
        self.started: Any = None  # each worker puts its pid on this queue as it starts
        if workers > 0:
            context = worker_context(decide_instance)
            self.started = context.SimpleQueue()
            self.executor = ProcessPoolExecutor(workers, mp_context=context, initializer=crf_worker_setup,
                                                initargs=(self.started,))

    def submit(self, job: UpdateJob) -> None:
        if self.executor is None:
            try:
                self.finished.append(decide_instance(job))
            except Exception as exc:
                raise self._failure(job, exc) from exc
            return
        if len(self.pending) >= self.max_pending:
            self._settle([self.pending[0]], ROUND_WAIT_SECONDS)
        try:
            future = self.executor.submit(decide_instance, job)
        except BrokenProcessPool as exc:
            raise self._failure(job, exc) from exc
        self.pending.append((job, future))

    def poll(self) -> None:
        """Move finished jobs to ``finished`` without waiting; a failed job raises LabelUpdateError now."""
        self._settle([item for item in self.pending if item[1].done()], 0.0)

    def wait_all(self, timeout: float = ROUND_WAIT_SECONDS) -> list[UpdateDecision]:
        """Wait (at most `timeout` s) for every submitted job; returns and forgets all finished decisions."""
        self._settle(list(self.pending), timeout)
        finished, self.finished = self.finished, []
        return finished

    def _settle(self, items: list[tuple[UpdateJob, Future]], timeout: float) -> None:
        if not items:
            return
        _, not_done = wait([future for _, future in items], timeout=timeout)
        if not_done:
            raise LabelUpdateError(f"{len(not_done)} CRF label-update jobs did not finish within {timeout:.0f} s "
                                   "(a worker hangs or label_update.crf_workers is too small for --update-every)")
        for job, future in items:
            try:
                self.finished.append(future.result())
            except Exception as exc:
                raise self._failure(job, exc) from exc
        done = {id(future) for _, future in items}
        self.pending = [item for item in self.pending if id(item[1]) not in done]

    @staticmethod
    def _failure(job: UpdateJob, exc: BaseException) -> Exception:
        """The error to raise for a failed job: the user's own (a picture that cannot be read) stays an
        InputError, named by its job; anything else is a LabelUpdateError."""
        if isinstance(exc, InputError):
            return InputError(f"CRF label update of annotation {job.annotation_id} of image {job.image_id}: {exc}")
        if isinstance(exc, BrokenProcessPool):
            return LabelUpdateError(f"a CRF worker process died while updating labels ({exc}); "
                                    f"last job: annotation {job.annotation_id} of image {job.image_id}")
        return LabelUpdateError(f"CRF label update failed for annotation {job.annotation_id} of image {job.image_id} "
                                f"({job.picture}): {type(exc).__name__}: {exc}")

    def worker_pids(self) -> list[int]:
        """The pids of the workers that have started so far (a worker reports its pid once it runs)."""
        if self.started is not None:
            while not self.started.empty():
                self.pids.add(self.started.get())
        return sorted(self.pids)

    def close(self) -> None:
        """Cancel what has not started, let running jobs end (or terminate them after a grace period), reap every worker.

        The executor's own shutdown joins (reaps) its workers; it runs in a helper thread so that a job still running
        after the grace period can be ended by its pid, after which the shutdown completes.
        """
        if self.executor is None:
            return
        executor, self.executor = self.executor, None
        for _, future in self.pending:
            future.cancel()
        self.pending = []
        closer = threading.Thread(target=executor.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True)
        closer.start()
        closer.join(CLOSE_GRACE_SECONDS)
        if closer.is_alive():  # a job runs past the grace period: end our own workers, by pid
            for pid in self.worker_pids():
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            closer.join(5.0)
        self.worker_pids()  # the last reports, so that callers can check every worker is gone
        self.started.close()
        self.started = None
