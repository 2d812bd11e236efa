"""The label-update scheme during training (paper III.D, Algorithm 1, eq. 9), off the training path.

Where R comes from: no extra inference pass. In each training step the mask head already predicts a
whole-image map for the sampled positive proposals; ``CGCRoIHeads`` hands out, per ground-truth
(weak) instance of the batch, the map R of its best proposal (``InstanceMap``: highest mask IoU
with the label C, among the proposals matched to it), detached, float16, at logit resolution.

What happens to it: a ``UpdateJob`` (image and annotation ids, R, the current label C as RLE, the
picture's path) goes to a small pool of worker processes (``CRFPool``: a ``ProcessPoolExecutor``
from a fork server, see ``cgc.parallel``). A worker maps R to the picture's size, runs
``refine_instance`` (R_f = CRF(R)), K1(R, C), K2(R_f, C) and ``should_replace``, and returns an
``UpdateDecision`` (with C_next = R_f >= 0.5 as RLE when replaced).

Determinism (same seed, same results, whatever the timing):

- Rounds: every ``update_every`` iterations (counting iterations done, from ``update_start`` on)
  the decisions of that round's window are applied to the labels, written to
  ``RUN/labels/round_XXX.json`` (a complete COCO weak-label file; the original ``--data`` file is
  never written) and ``round_XXX.log.json``, and the dataset trains on them from the next
  iteration. Decisions are applied only there, never as they arrive.
- Which instances get a job is fixed in advance: the batch of iteration t depends only on
  (seed, t), so an image's *last* sighting inside the round's window is known, and only that
  sighting submits jobs (its R is the freshest the round could use; earlier ones would be
  superseded anyway). One job per instance per round, no skipping on a full queue, and at the
  boundary the trainer waits for the round's jobs (a few, at ~0.05 s each; at most
  ``ROUND_WAIT_SECONDS``). When more than ``max_pending`` jobs are in flight, ``submit`` waits for
  the oldest: that bounds memory, costs time, and changes no result.
- ``L_upd``'s K2 term is taken from the decisions applied at the last boundary only.
- Resume: checkpoints hold the round number, the label file and the K2 values, plus the decisions
  of the current (not yet written) round, for which the checkpoint waits. A run resumed from a
  checkpoint taken between rounds trains on the labels of the last round written before it and
  writes the next round exactly as the uninterrupted run would.

Logged ``loss_upd`` (see ``cgc.model.roi_heads.label_update_loss``): L_upd = K2 - K1 for the batch,
unweighted (the total ``loss`` adds ``update_weight`` * ``loss_upd``). K1 is eq. 5 averaged over
every logit cell of the mask head's sampled positive proposals (C = the weak label at logit
resolution, R = sigmoid of the logits); K2 is, per proposal, the K2(R_f, C) the CRF worker computed
for its instance at image resolution in the last round that decided it (against the label that
instance has had since), cell-weighted like K1, and 0 for instances no round has decided yet. The
gradient is -update_weight * dK1 either way: R_f is a constant.
"""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from cgc.coco import decode_mask, encode_mask, mask_bbox_xyxy
from cgc.datasets.pictures import read_rgb
from cgc.errors import InputError
from cgc.coco_files import CocoFile, read_instance_file, write_coco_file
from cgc.fileio import atomic_write_json
from cgc.refine.crf import CRFParams, refine_instance
from cgc.refine.update_rule import k1, k2, should_replace
from cgc.parallel import quiet_worker, worker_context

if TYPE_CHECKING:
    from cgc.model.roi_heads import CGCRoIHeads
    from cgc.train.config import TrainConfig
    from cgc.train.data import WeakLabelDataset
    from cgc.train.distributed import ProcessGroup

ROUND_WAIT_SECONDS = 600.0  # longest wait for a round's CRF jobs before giving up with an error
CLOSE_GRACE_SECONDS = 10.0  # how long a worker may take to finish its job at shutdown before it is terminated
LABELS_DIR = "labels"
WORKER_NICENESS = 10  # added to a CRF worker's nice value (see crf_worker_setup)


class LabelUpdateError(RuntimeError):
    """A CRF worker failed (or died, or hung): training stops instead of waiting forever, with the traceback."""


@dataclass(frozen=True)
class UpdateJob:
    """Everything a worker needs to decide one instance's label (picklable, no tensors)."""

    round: int  # the round this job's decision belongs to
    slot: int  # global batch slot of the sighting (iteration * batch_size + position): the order key
    iteration: int
    image_id: int
    annotation_id: int
    picture: str  # the RGB picture's path
    probabilities: np.ndarray  # R, float16 (h, w) at logit resolution of the resized (maybe flipped) image
    stride: int  # resized-image pixels per cell
    resized_size: tuple[int, int]  # (h, w) of the resized image
    flipped: bool  # the training sample was mirrored: R is too
    label: Any  # the current label C (COCO segmentation)
    params: CRFParams = field(default_factory=CRFParams)
    phi: float = 0.05
    sigma: float = 1e-6


@dataclass(frozen=True)
class UpdateDecision:
    """Algorithm 1 for one instance: what the worker found, and C_next if it replaces C."""

    round: int
    slot: int
    iteration: int
    image_id: int
    annotation_id: int
    k1: float  # K1(R, C)
    k2: float  # K2(R_f, C): Algorithm 1 replaces C when k2 - k1 < phi
    replaced: bool
    refined_empty: bool  # R_f >= 0.5 has no pixel: C is kept whatever K1 / K2 say (an empty label breaks the box)
    iou_label_refined: float  # IoU(C, R_f >= 0.5): how much C would change (1 = not at all)
    area_before: int
    area_after: int
    k2_next: float  # K2(R_f, C_next): L_upd's K2 term for this instance from the next round on
    segmentation: dict[str, Any] | None  # C_next = R_f >= 0.5 as COCO RLE, when replaced

    @property
    def changed(self) -> bool:
        """Replaced by a different mask: R_f >= 0.5 can equal C (C came from the previous round's R_f)."""
        return self.replaced and self.iou_label_refined < 1.0

    def log_entry(self) -> dict[str, Any]:
        entry = {key: value for key, value in asdict(self).items() if key not in ("segmentation", "round", "slot")}
        return entry | {"k2_minus_k1": self.k2 - self.k1, "iou_old_new": self.iou_label_refined if self.replaced else 1.0}


def map_to_image(probabilities: np.ndarray, stride: int, resized_size: tuple[int, int], flipped: bool,
                 image_size: tuple[int, int]) -> np.ndarray:
    """R at logit resolution -> (H, W) float32 probabilities on the original picture (as ``to_image_masks``)."""
    prob = np.asarray(probabilities, dtype=np.float32)
    cells_h, cells_w = prob.shape
    if stride > 1:
        prob = cv2.resize(prob, (cells_w * stride, cells_h * stride), interpolation=cv2.INTER_LINEAR)
    prob = prob[: resized_size[0], : resized_size[1]]
    if flipped:
        prob = prob[:, ::-1]
    height, width = image_size
    prob = cv2.resize(np.ascontiguousarray(prob), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(prob, 0.0, 1.0)


def label_window_core(label: np.ndarray) -> tuple[float, float, float, float] | None:
    """The CRF window's core for a label update: the box of the current label C (None if C is empty).

    Not R's support: early in training R is diffuse (> 0.05 nearly everywhere), which would make
    the window nearly the whole image and the CRF several times dearer; and the box prior says the instance
    lies in its box, so the CRF has nothing to decide far outside it (R_f = R there).
    """
    return mask_bbox_xyxy(label) if label.any() else None


def decide_instance(job: UpdateJob) -> UpdateDecision:
    """The worker's part: R_f = CRF(R), K1, K2 and keep-or-replace for one instance."""
    rgb = read_rgb(job.picture)
    height, width = rgb.shape[:2]
    r = map_to_image(job.probabilities, job.stride, job.resized_size, job.flipped, (height, width))
    c = decode_mask(job.label, height, width)
    c_soft = c.astype(np.float32)
    r_f = refine_instance(r, rgb, job.params, box=label_window_core(c))
    refined = r_f >= 0.5
    k1_value, k2_value = k1(r, c_soft, job.sigma), k2(r_f, c_soft, job.sigma)
    empty = not bool(refined.any())
    replaced = should_replace(k1_value, k2_value, job.phi) and not empty
    union = int((c | refined).sum())
    iou = float((c & refined).sum() / union) if union else 1.0
    return UpdateDecision(
        round=job.round, slot=job.slot, iteration=job.iteration, image_id=job.image_id, annotation_id=job.annotation_id,
        k1=k1_value, k2=k2_value, replaced=replaced, refined_empty=empty, iou_label_refined=iou,
        area_before=int(c.sum()), area_after=int(refined.sum()) if replaced else int(c.sum()),
        k2_next=k2(r_f, refined.astype(np.float32), job.sigma) if replaced else k2_value,
        segmentation=encode_mask(refined) if replaced else None,
    )


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
                                   "(a worker hangs or --crf-workers is too small for --update-every)")
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


class LabelStore:
    """The weak labels a round trains on: a checked COCO file in memory, annotations by id."""

    def __init__(self, labels: CocoFile) -> None:
        self.labels = labels
        self.by_id = {annotation["id"]: annotation for annotation in labels.annotations}

    @classmethod
    def read(cls, path: str | Path) -> "LabelStore":
        return cls(read_instance_file(path, "weak-label file"))

    def annotation(self, annotation_id: int) -> dict[str, Any]:
        return self.by_id[annotation_id]

    def with_decisions(self, decisions: list[UpdateDecision], source: Path) -> CocoFile:
        """The next round (to be written at `source`): these labels with every replaced instance's segmentation and
        area updated."""
        replaced = {decision.annotation_id: decision for decision in decisions if decision.replaced}
        annotations = []
        for annotation in self.labels.annotations:
            decision = replaced.get(annotation["id"])
            if decision is not None:
                annotation = dict(annotation, segmentation=decision.segmentation, area=decision.area_after)
            annotations.append(annotation)
        return CocoFile(str(source), dict(self.labels.data, annotations=annotations))


def round_paths(run_dir: Path, number: int) -> tuple[Path, Path]:
    folder = run_dir / LABELS_DIR
    return folder / f"round_{number:03d}.json", folder / f"round_{number:03d}.log.json"


def label_file_of(state: dict[str, Any] | None, run_dir: Path, data: str | Path) -> Path:
    """The label file a checkpoint's label state trains on (round 0: the original --data)."""
    if not state or not state.get("label_file"):
        return Path(data)
    return run_dir / state["label_file"]


def latest_decisions(decisions: list[UpdateDecision]) -> list[UpdateDecision]:
    """One decision per instance (the latest sighting wins), in sighting order."""
    by_instance = {decision.annotation_id: decision for decision in sorted(decisions, key=lambda d: d.slot)}
    return sorted(by_instance.values(), key=lambda d: d.slot)


def crf_params_of(config: "TrainConfig") -> CRFParams:
    """The CRF settings of the run's label update: those `cgc crf tune` found, if the run was given them."""
    return CRFParams(**config.update_crf) if config.update_crf else CRFParams()


class LabelUpdater:
    """The trainer's side of the scheme: submit jobs during steps, write a round at each boundary.

    Call order per iteration t: ``before_forward`` (sets the RoI heads' switches, adds K2 to the
    targets), forward, ``after_forward`` (submits jobs), backward / step, ``end_of_iteration(t + 1)``
    (writes a round at a boundary), and ``checkpoint_state()`` on every process when a checkpoint
    is due. ``close()`` always (``try/finally``).
    """

    def __init__(self, config: "TrainConfig", dataset: "WeakLabelDataset", run_dir: Path, group: "ProcessGroup",
                 state: dict[str, Any] | None = None) -> None:
        self.config, self.dataset, self.run_dir, self.group = config, dataset, run_dir, group
        self.every, self.start = config.update_every, config.update_start_iteration
        self.loss_on = config.update_weight > 0
        self.params = crf_params_of(config)
        state = state or {}
        self.round = int(state.get("round", 0))
        self.label_file: str | None = state.get("label_file")
        self.k2: dict[int, float] = {int(key): float(value) for key, value in state.get("k2", {}).items()}
        self.collected = [UpdateDecision(**decision) for decision in state.get("decisions", [])]
        self.store = LabelStore.read(label_file_of(state, run_dir, config.data))
        self.window: tuple[int, dict[int, int]] | None = None
        share = config.batch_size // group.world_size
        self.pool = CRFPool(config.crf_workers, max_pending=max(64, 4 * share * config.mask_proposals_per_image))

    def active(self, iteration: int) -> bool:
        return iteration >= self.start

    def before_forward(self, iteration: int, roi_heads: "CGCRoIHeads", targets: list[dict[str, Any]]) -> None:
        import torch

        active = self.active(iteration)
        roi_heads.collect_instance_maps = active
        roi_heads.update_loss_sigma = self.config.update_sigma if active and self.loss_on else None
        if active and self.loss_on:
            for target in targets:
                known = [self.k2.get(int(annotation_id), float("nan")) for annotation_id in target["annotation_ids"]]
                target["label_k2"] = torch.tensor(known, dtype=torch.float32)

    def round_window(self, iteration: int) -> tuple[int, int]:
        """[first, end) iterations whose predictions feed the round written after iteration end - 1."""
        end = (iteration // self.every + 1) * self.every
        return max(end - self.every, self.start), end

    def after_forward(self, iteration: int, roi_heads: "CGCRoIHeads") -> None:
        from cgc.train.data import batch_requests, last_slots

        if not self.active(iteration):
            return
        config = self.config
        first, end = self.round_window(iteration)
        if self.window is None or self.window[0] != end:
            self.window = (end, last_slots(len(self.dataset), config.seed, config.batch_size, first, end))
        last = self.window[1]
        share = config.batch_size // self.group.world_size
        offset = self.group.rank * share
        requests = batch_requests(len(self.dataset), config.seed, iteration, config.batch_size, config.hflip)[offset : offset + share]
        for instance_map in roi_heads.instance_maps:
            request = requests[instance_map.batch_index]
            slot = iteration * config.batch_size + offset + instance_map.batch_index
            if last.get(request.index) != slot:
                continue  # the image is seen again before the round ends: that later sighting decides
            image, path, _ = self.dataset.records[request.index]
            if int(image["id"]) != instance_map.image_id:
                raise RuntimeError(f"batch order and targets disagree at iteration {iteration}")
            self.pool.submit(UpdateJob(
                round=self.round + 1, slot=slot, iteration=iteration, image_id=instance_map.image_id,
                annotation_id=instance_map.annotation_id, picture=str(path),
                probabilities=instance_map.probabilities.numpy(), stride=instance_map.stride,
                resized_size=instance_map.image_size, flipped=request.flip,
                label=self.store.annotation(instance_map.annotation_id)["segmentation"],
                params=self.params, phi=config.update_phi, sigma=config.update_sigma,
            ))
        self.pool.poll()

    def is_boundary(self, done: int) -> bool:
        return done % self.every == 0 and done > self.start

    def end_of_iteration(self, done: int) -> Path | None:
        """After `done` iterations: at a round boundary, apply the round's decisions and write it."""
        self.pool.poll()
        if not self.is_boundary(done):
            return None
        decisions = latest_decisions(self._gather(self.collected + self.pool.wait_all()))
        self.collected = []
        stale = [decision for decision in decisions if decision.round != self.round + 1]
        if stale:
            raise RuntimeError(f"round {self.round + 1}: decisions of round {stale[0].round} were not applied in time")
        number = self.round + 1
        labels_path, log_path = round_paths(self.run_dir, number)
        labels = self.store.with_decisions(decisions, labels_path)
        if self.group.is_main:
            replaced = [decision for decision in decisions if decision.replaced]
            changed = [decision.annotation_id for decision in replaced if decision.changed]
            log = {
                "round": number,
                "iteration": done,
                "window": list(self.round_window(done - 1)),
                "labels": labels_path.name,
                "previous": self.label_file or str(self.config.data),
                "phi": self.config.update_phi,
                "sigma": self.config.update_sigma,
                "counts": {
                    "instances": len(labels.annotations),
                    "decided": len(decisions),
                    "replaced": len(replaced),
                    "changed": len(changed),
                    "kept": len(decisions) - len(replaced),
                    "kept_empty_refinement": sum(decision.refined_empty for decision in decisions),
                },
                "changed": changed,
                "instances": [decision.log_entry() for decision in decisions],
            }
            write_coco_file(labels_path, labels)
            atomic_write_json(log_path, log, indent=1)
        self.store = LabelStore(labels)
        self.round, self.label_file = number, f"{LABELS_DIR}/{labels_path.name}"
        self.k2.update({decision.annotation_id: decision.k2_next for decision in decisions})
        self.dataset.replace_annotations(labels)
        return labels_path

    def checkpoint_state(self) -> dict[str, Any]:
        """What a checkpoint needs to resume the scheme exactly; waits for this round's submitted jobs."""
        self.collected.extend(self.pool.wait_all())
        decisions = latest_decisions(self._gather(self.collected))
        return {
            "round": self.round,
            "label_file": self.label_file,
            "k2": {str(key): value for key, value in sorted(self.k2.items())},
            "decisions": [asdict(decision) for decision in decisions],
        }

    def _gather(self, decisions: list[UpdateDecision]) -> list[UpdateDecision]:
        """Every process's decisions (DDP: each process submits the jobs of its share of the batch)."""
        if not self.group.distributed:
            return list(decisions)
        import torch.distributed as dist

        everyone: list[list[UpdateDecision] | None] = [None] * self.group.world_size
        dist.all_gather_object(everyone, list(decisions))
        return [decision for part in everyone for decision in part or []]

    def close(self) -> None:
        self.pool.close()
