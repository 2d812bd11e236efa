"""Several annotators' boxes for one image -> one consensus box per salient instance.

The paper labels each instance with "the average of five annotators' boxes". To average, we
must first know which boxes show the same instance: boxes are matched across annotators by
Hungarian assignment on IoU, so a cluster never holds two boxes of one annotator (the way
CVAT's and Datumaro's consensus merge work). A quorum then decides which clusters are real
instances, and each kept cluster is reduced to one box.

Input is a plain `{annotator: [Box, ...]}` per image, including annotators who drew nothing,
so any source (an export file, a live server) can feed it. Results do not depend on the order
of annotators or boxes: both are sorted before matching.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from cgc.annotate.geometry import Box, box_iou

Reduce = Literal["mean", "median"]
REDUCE_METHODS: tuple[str, ...] = ("mean", "median")
DEFAULT_MATCH_IOU = 0.5
# Re-assignment passes after the greedy first pass; matching settles in one or two.
MAX_REFINE_PASSES = 5

Cluster = dict[str, Box]


@dataclass
class ConsensusBox:
    """One instance: the reduced box, who drew it (and their boxes), who missed it, agreement."""

    box: Box
    members: dict[str, Box]
    missed_by: list[str]
    agreement: float

    @property
    def annotators(self) -> list[str]:
        return sorted(self.members)

    @property
    def num_annotators(self) -> int:
        return len(self.members)


@dataclass
class ImageConsensus:
    """Consensus for one image: clusters that met the quorum and those dropped by it."""

    kept: list[ConsensusBox]
    dropped: list[ConsensusBox]
    min_annotators: int


def majority_quorum(num_annotators: int) -> int:
    """Default quorum: more than half of the image's annotators, floor(n/2) + 1."""
    return num_annotators // 2 + 1


def average_annotator_boxes(boxes: Sequence[Box], reduce: Reduce = "mean") -> Box:
    """Coordinate-wise mean (the paper) or median (robust to one sloppy annotator) of boxes."""
    if not boxes:
        raise ValueError("cannot average an empty list of boxes")
    if reduce not in REDUCE_METHODS:
        raise ValueError(f"unknown reduce method {reduce!r}; expected one of {REDUCE_METHODS}")
    corners = np.array([(b.x1, b.y1, b.x2, b.y2) for b in boxes], dtype=np.float64)
    reduced = corners.mean(axis=0) if reduce == "mean" else np.median(corners, axis=0)
    return Box(*(float(v) for v in reduced))


def _cluster_box(cluster: Cluster, reduce: Reduce) -> Box:
    # Members in annotator order, so float sums do not depend on insertion order.
    return average_annotator_boxes([cluster[a] for a in sorted(cluster)], reduce)


def _assign_boxes_to_clusters(
    annotator: str, boxes: Sequence[Box], clusters: list[Cluster], match_iou: float, reduce: Reduce
) -> None:
    """Add one annotator's boxes to clusters (none of which holds that annotator yet).

    Hungarian assignment maximises total IoU to the clusters' current consensus boxes; pairs
    under `match_iou` are not matches. Each cluster takes at most one box; the rest open new
    clusters.
    """
    matched: dict[int, int] = {}
    if boxes and clusters:
        centres = [_cluster_box(cluster, reduce) for cluster in clusters]
        iou = np.array([[box_iou(box, centre) for centre in centres] for box in boxes])
        score = np.where(iou >= match_iou, iou, 0.0)
        rows, cols = linear_sum_assignment(score, maximize=True)
        matched = {int(r): int(c) for r, c in zip(rows, cols) if score[r, c] > 0}
    for index, box in enumerate(boxes):
        if index in matched:
            clusters[matched[index]][annotator] = box
        else:
            clusters.append({annotator: box})


def _partition(clusters: list[Cluster]) -> tuple:
    return tuple(sorted(tuple(sorted(cluster.items())) for cluster in clusters))


def match_boxes_across_annotators(
    boxes_by_annotator: Mapping[str, Sequence[Box]],
    match_iou: float = DEFAULT_MATCH_IOU,
    reduce: Reduce = "mean",
    max_refine_passes: int = MAX_REFINE_PASSES,
) -> list[Cluster]:
    """Group boxes that show the same instance; each cluster maps annotator -> their box.

    First pass: annotators in sorted order, each one's boxes assigned to the clusters built so
    far. Refinement: each annotator's boxes are taken out and re-assigned against the other
    members' consensus, until nothing changes, so the first annotator's boxes do not fix the
    clusters for good. Clusters come out sorted by their consensus box.
    """
    annotators = sorted(boxes_by_annotator)
    boxes = {a: sorted(boxes_by_annotator[a]) for a in annotators}
    clusters: list[Cluster] = []
    for annotator in annotators:
        _assign_boxes_to_clusters(annotator, boxes[annotator], clusters, match_iou, reduce)
    for _ in range(max_refine_passes):
        before = _partition(clusters)
        for annotator in annotators:
            for cluster in clusters:
                cluster.pop(annotator, None)
            clusters = [cluster for cluster in clusters if cluster]
            _assign_boxes_to_clusters(annotator, boxes[annotator], clusters, match_iou, reduce)
        if _partition(clusters) == before:
            break
    return sorted(clusters, key=lambda cluster: (_cluster_box(cluster, reduce), sorted(cluster)))


def build_consensus_boxes(
    boxes_by_annotator: Mapping[str, Sequence[Box]],
    match_iou: float = DEFAULT_MATCH_IOU,
    reduce: Reduce = "mean",
    min_annotators: int | None = None,
) -> ImageConsensus:
    """Match, reduce and apply the quorum for one image.

    `boxes_by_annotator` must list every annotator who saw the image, with an empty list for
    those who drew nothing: they count in the default quorum (majority of all annotators) and
    appear in `missed_by`. `agreement` is the mean IoU of the members' boxes to the consensus.
    """
    everyone = sorted(boxes_by_annotator)
    quorum = majority_quorum(len(everyone)) if min_annotators is None else min_annotators
    kept: list[ConsensusBox] = []
    dropped: list[ConsensusBox] = []
    for cluster in match_boxes_across_annotators(boxes_by_annotator, match_iou, reduce):
        consensus = _cluster_box(cluster, reduce)
        agreement = float(np.mean([box_iou(cluster[a], consensus) for a in sorted(cluster)]))
        missed_by = [a for a in everyone if a not in cluster]
        result = ConsensusBox(consensus, dict(sorted(cluster.items())), missed_by, agreement)
        (kept if len(cluster) >= quorum else dropped).append(result)
    return ImageConsensus(kept, dropped, quorum)
