"""The label-update scheme during training (paper III.D, Algorithm 1, eq. 9), off the training path.

Where R comes from: no extra inference pass. In each training step the mask head already predicts a
whole-image map for the sampled positive proposals; ``CGCRoIHeads`` hands out, per ground-truth
(weak) instance of the batch, the map R of its best proposal (``InstanceMap``: highest mask IoU
with the label C, among the proposals matched to it), detached, float16, at logit resolution.

What happens to it: an ``UpdateJob`` (image and annotation ids, R, the current label C as RLE, the
picture's path) goes to a small pool of worker processes (``cgc.training.crf_pool.CRFPool``). A
worker runs ``cgc.refine.instance_update.decide_instance``: it maps R to the picture's size, runs
``refine_instance`` (R_f = CRF(R)), K1(R, C), K2(R_f, C) and ``should_replace``, and returns an
``UpdateDecision`` (with C_next = R_f >= 0.5 as RLE when replaced). Where rounds are stored, and
the labels a round trains on, is ``cgc.training.label_rounds``.

Determinism (same seed, same results, whatever the timing):

- Rounds: every ``label_update.every`` iterations (counting iterations done, from ``label_update.start`` on)
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
unweighted (the total ``loss`` adds ``label_update.weight`` * ``loss_upd``). K1 is eq. 5 averaged over
every logit cell of the mask head's sampled positive proposals (C = the weak label at logit
resolution, R = sigmoid of the logits); K2 is, per proposal, the K2(R_f, C) the CRF worker computed
for its instance at image resolution in the last round that decided it (against the label that
instance has had since), cell-weighted like K1, and 0 for instances no round has decided yet. The
gradient is -label_update.weight * dK1 either way: R_f is a constant.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cgc.coco_files import write_coco_file
from cgc.fileio import atomic_write_json
from cgc.refine.instance_update import UpdateDecision, UpdateJob, latest_decisions
from cgc.training.crf_pool import CRFPool
from cgc.training.label_rounds import LABELS_DIR, LabelStore, label_file_of, round_paths

if TYPE_CHECKING:
    from cgc.model.roi_heads import InstanceMap, LabelUpdateRequest
    from cgc.config import TrainConfig
    from cgc.training.data import WeakLabelDataset
    from cgc.training.distributed import ProcessGroup


class LabelUpdater:
    """The trainer's side of the scheme: submit jobs during steps, write a round at each boundary.

    Call order per iteration t: ``request`` (what the forward is asked for; K2 added to the targets), the
    forward, ``after_forward`` with the instance maps it returned (submits jobs), backward / step, ``end_of_iteration(t + 1)``
    (writes a round at a boundary), and ``checkpoint_state()`` on every process when a checkpoint
    is due. ``close()`` always (``try/finally``).
    """

    def __init__(self, config: "TrainConfig", dataset: "WeakLabelDataset", run_dir: Path, group: "ProcessGroup",
                 state: dict[str, Any] | None = None) -> None:
        self.config, self.dataset, self.run_dir, self.group = config, dataset, run_dir, group
        update = config.label_update
        self.every, self.start = update.every, config.update_start_iteration
        self.loss_on = update.weight > 0
        self.params = update.crf  # the CRF settings `cgc crf tune` found, if the run was given them
        state = state or {}
        self.round = int(state.get("round", 0))
        self.label_file: str | None = state.get("label_file")
        self.k2: dict[int, float] = {int(key): float(value) for key, value in state.get("k2", {}).items()}
        self.collected = [UpdateDecision(**decision) for decision in state.get("decisions", [])]
        self.store = LabelStore.read(label_file_of(state, run_dir, config.data.annotations))
        self.window: tuple[int, dict[int, int]] | None = None
        self.index_by_image = {int(image["id"]): index for index, (image, _, _) in enumerate(dataset.records)}
        share = config.solver.batch_size // group.world_size
        self.pool = CRFPool(update.crf_workers, max_pending=max(64, 4 * share * config.network.mask.proposals_per_image))

    def active(self, iteration: int) -> bool:
        return iteration >= self.start

    def request(self, iteration: int, targets: list[dict[str, Any]]) -> "LabelUpdateRequest | None":
        """What this iteration's forward is asked for: from label_update.start, each instance's best map (and L_upd
        when its weight is on, with each label's last K2 put in the targets); None before."""
        import torch

        from cgc.model.roi_heads import LabelUpdateRequest

        if not self.active(iteration):
            return None
        if self.loss_on:
            for target in targets:
                known = [self.k2.get(int(annotation_id), float("nan")) for annotation_id in target["annotation_ids"]]
                target["label_k2"] = torch.tensor(known, dtype=torch.float32)
        return LabelUpdateRequest(collect=True, loss_sigma=self.config.label_update.sigma if self.loss_on else None)

    def round_window(self, iteration: int) -> tuple[int, int]:
        """[first, end) iterations whose predictions feed the round written after iteration end - 1."""
        end = (iteration // self.every + 1) * self.every
        return max(end - self.every, self.start), end

    def after_forward(self, iteration: int, instance_maps: list["InstanceMap"], targets: list[dict[str, Any]]) -> None:
        """Send each instance map of the pass whose picture is seen for the last time in this round to the CRF pool;
        the targets say which run slot each picture filled, and whether it was mirrored."""
        from cgc.training.data import last_slots

        if not self.active(iteration):
            return
        config = self.config
        first, end = self.round_window(iteration)
        if self.window is None or self.window[0] != end:
            self.window = (end, last_slots(len(self.dataset), config.run.seed, config.solver.batch_size, first, end))
        last = self.window[1]
        for instance_map in instance_maps:
            target = targets[instance_map.batch_index]
            slot = int(target["slot"])
            index = self.index_by_image[instance_map.image_id]
            if last.get(index) != slot:
                continue  # the image is seen again before the round ends: that later sighting decides
            _, path, _ = self.dataset.records[index]
            self.pool.submit(UpdateJob(
                round=self.round + 1, slot=slot, iteration=iteration, image_id=instance_map.image_id,
                annotation_id=instance_map.annotation_id, picture=str(path),
                probabilities=instance_map.probabilities.numpy(), stride=instance_map.stride,
                resized_size=instance_map.image_size, flipped=bool(target["flipped"]),
                label=self.store.annotation(instance_map.annotation_id)["segmentation"],
                params=self.params, phi=config.label_update.phi, sigma=config.label_update.sigma,
                **self.guard_inputs(instance_map),
            ))
        self.pool.poll()

    def guard_inputs(self, instance_map: Any) -> dict[str, Any]:
        """The guards of the run, and what they need of this instance: the image's other labels."""
        guards = self.config.label_update.guards
        if not guards.any:
            return {}
        return {"guards": guards, "others": [other["segmentation"] for other in self.store.others(instance_map.annotation_id)]}

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
                "previous": self.label_file or str(self.config.data.annotations),
                "phi": self.config.label_update.phi,
                "sigma": self.config.label_update.sigma,
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
