"""The `appearance` rule: shared salient pixels settled by colour models and a graph cut.

`resolve-shared` gives a pixel that several boxes hold to the box whose own region it reaches
most cheaply. That uses the box geometry and the image's edges, but not what each instance
looks like. Here, as in GrabCut, each instance gets a colour model learnt from the pixels it
alone owns (its seeds), and the shared pixels are labelled together by minimising

    E(f) = sum_p [ -log P(colour_p | f_p) + PRIOR_WEIGHT * path_{f_p}(p) / sqrt(area of box f_p) ]
         + sum_{p~q} GAMMA * exp(-beta * |I_p - I_q|^2) * [f_p != f_q]

over the labels allowed at each pixel (the boxes that hold it), with alpha-expansion moves
solved by max-flow (PyMaxflow), starting from `resolve-shared`'s answer. The colour term says
which instance a pixel looks like; the path term (the shortest path, in pixels, through salient
pixels of the box to the box's seeds) keeps the paper's priors and the box geometry (a pixel
deep inside one instance's region stays there); the contrast-sensitive smoothness term
(GrabCut's, with its gamma = 50 and beta from the image's mean contrast) puts the cut on the
image's edges.
The colour model is a smoothed 16x16x16 RGB histogram rather than a GMM: deterministic, and
fast enough for the build's 50 images per second.

Where two instances look alike (crops of one texture, a small object coloured like its
container), colour cannot place the cut, and the cheapest cut often hands the whole shared area
to one box. The consensus boxes say more than "the instance is inside": they are tight, so an
instance crosses every row and every column of its box (the tight-box prior of Lempitsky et al.,
"Image segmentation with a bounding box prior", ICCV 2009; BoxInst's projection term is the
same prior). That is enforced as they do, by pinpointing: after the cut, every row or column of
a box that its label misses, but whose shared pixels it could take, gets one pixel pinned to the
box (the one that costs the box least), and the cut is redone, until no line is missing or
PINPOINT_ROUNDS cuts have been redone.
"""

from __future__ import annotations

from dataclasses import replace

import maxflow
import numpy as np

from cgc.weaklabels.priors import (PriorSettings, SharedPixels, colour_steps, geodesic_distances, owned_masks,
                                   pixel_box, shared_pixel_owner)

BINS = 16  # per colour channel
GAMMA = 50.0  # GrabCut's smoothness weight
PRIOR_WEIGHT = 4.0  # nats per box side of path: a pixel half a box side further from a box's seeds costs it 2 nats
MIN_SEED_PIXELS = 20  # fewer than this and the colour model says nothing (uniform)
EXPANSION_CYCLES = 3
PINPOINT_ROUNDS = 5  # cuts redone for the tight-box prior; on the photo sample scenes more rounds changed no label
PIN_COLOUR_MARGIN = 1.0  # nats: a line's shared pixels, on average at most e times less likely under the box's colours
FORBIDDEN = 1e9  # the cost of a label whose box does not hold the pixel


def colour_bins(image: np.ndarray) -> np.ndarray:
    """Each pixel's histogram bin (0 .. BINS^3 - 1)."""
    quantised = (image.astype(np.int64) * BINS) // 256
    return (quantised[..., 0] * BINS + quantised[..., 1]) * BINS + quantised[..., 2]


def colour_cost(bins: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """-log P(colour | instance) at every pixel, from a histogram of the seed pixels smoothed over
    neighbouring bins, with one pseudo-count per bin so that no colour is impossible."""
    if seeds.sum() < MIN_SEED_PIXELS:
        return np.full(bins.shape, np.log(BINS ** 3))
    counts = np.bincount(bins[seeds], minlength=BINS ** 3).astype(np.float32).reshape(BINS, BINS, BINS)
    smoothed = counts.copy()
    for axis in range(3):
        smoothed = smoothed + np.roll(counts, 1, axis) * 0.5 + np.roll(counts, -1, axis) * 0.5
    probability = (smoothed.ravel() + 1.0) / (smoothed.sum() + BINS ** 3)
    return -np.log(probability)[bins]


def contrast_weights(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GAMMA * exp(-beta |I_p - I_q|^2) between right and lower neighbours, beta = 1 / (2 mean |I_p - I_q|^2)."""
    pixels = image.astype(np.float32)
    horizontal = np.sum((pixels[:, 1:] - pixels[:, :-1]) ** 2, axis=2)
    vertical = np.sum((pixels[1:] - pixels[:-1]) ** 2, axis=2)
    mean = (horizontal.sum() + vertical.sum()) / max(1, horizontal.size + vertical.size)
    beta = 1.0 / (2.0 * mean) if mean > 0 else 0.0
    return GAMMA * np.exp(-beta * horizontal), GAMMA * np.exp(-beta * vertical)


def colour_costs(bins: np.ndarray, seeds: list[np.ndarray]) -> np.ndarray:
    """(boxes, H, W): -log P(colour | box) at every pixel, each box's model learnt from its seed pixels."""
    return np.stack([colour_cost(bins, seed) for seed in seeds])


def pixel_costs(shared: SharedPixels, colour: np.ndarray, distances: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(boxes, H, W) data costs of giving each undecided pixel to each box: its colour cost plus the path prior."""
    costs = np.full(distances.shape, FORBIDDEN)
    for index, box in enumerate(boxes):
        side = np.sqrt(max(1.0, float((box[2] - box[0]) * (box[3] - box[1]))))
        allowed = shared.undecided & shared.in_box[index]
        prior = np.where(np.isfinite(distances[index]), distances[index], 4 * side) * (PRIOR_WEIGHT / side)
        costs[index][allowed] = colour[index][allowed] + prior[allowed]
    return costs


def neighbour_terms(nodes: np.ndarray, owner: np.ndarray, weights: tuple[np.ndarray, np.ndarray]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """The 4-neighbour pairs among the `nodes` pixels (p, q, weight), and each node's pairs with a fixed pixel
    (a seed of box `owner`): (p, that box, weight). Pixels are numbered in raster order of `nodes`."""
    index = np.full(nodes.shape, -1, np.int64)
    index[nodes] = np.arange(int(nodes.sum()))
    pairs, fixed = [], []
    for edge, (a, b) in ((weights[0], ((slice(None), slice(None, -1)), (slice(None), slice(1, None)))),
                         (weights[1], ((slice(None, -1), slice(None)), (slice(1, None), slice(None))))):
        index_a, index_b, owner_a, owner_b = index[a], index[b], owner[a], owner[b]
        both = (index_a >= 0) & (index_b >= 0)
        pairs.append((index_a[both], index_b[both], edge[both]))
        for node, other_owner in ((index_a, owner_b), (index_b, owner_a)):
            towards = (node >= 0) & (other_owner >= 0)
            fixed.append((node[towards], other_owner[towards], edge[towards]))
    p, q, w = (np.concatenate(parts) for parts in zip(*pairs))
    return p, q, w, fixed


def expand(costs: np.ndarray, start: np.ndarray, p: np.ndarray, q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Alpha-expansion (Boykov, Veksler, Zabih) for node costs (labels, nodes) and Potts pairs (p, q, w).

    Each move lets every node keep its label or switch to alpha, the move of least energy found by
    one max-flow; Potts is a metric, so each move is exact.
    """
    labels = start.copy()
    nodes = np.arange(costs.shape[1])
    for _cycle in range(EXPANSION_CYCLES):
        changed = False
        for alpha in range(costs.shape[0]):
            if not (costs[alpha] < FORBIDDEN).any():
                continue
            keep, switch = costs[labels, nodes].copy(), costs[alpha].copy()
            fp, fq = labels[p], labels[q]
            a = w * (fp != fq)  # both keep
            b = w * (fp != alpha)  # p keeps, q switches
            c = w * (alpha != fq)  # p switches, q keeps
            # E = a + (c - a) x_p + (0 - c) x_q + (b + c - a) (1 - x_p) x_q, with x = 1 for "switch"
            switch += np.bincount(p, c - a, minlength=len(nodes)) - np.bincount(q, c, minlength=len(nodes))
            floor = np.minimum(keep, switch)
            graph = maxflow.Graph[float]()
            ids = graph.add_nodes(len(nodes))
            graph.add_grid_tedges(ids, switch - floor, keep - floor)  # a node on the sink side switches
            graph.add_edges(ids[p], ids[q], b + c - a, np.zeros_like(w))
            graph.maxflow()
            switched = graph.get_grid_segments(ids) & (labels != alpha)
            if switched.any():
                labels[switched] = alpha
                changed = True
        if not changed:
            break
    return labels


def missing_crossings(owner: np.ndarray, index: np.ndarray, costs: np.ndarray, colour: np.ndarray,
                      labels: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pins for the tight-box prior: (nodes, their boxes).

    For each row and each column of a box that the box's label does not cross, while some shared pixel
    on it could go to the box, the pixel there that costs the box least, relative to its current label.
    A line is pinned only if its shared pixels, on average, fit the box's colour model about as well as
    their current label's (PIN_COLOUR_MARGIN): the prior breaks the ties colour leaves, and a loose box,
    whose outer lines hold only its neighbour, does not take the neighbour's pixels. `colour` holds those
    models' costs, learnt from the pixels each box alone owns, not from core guesses. `owner` is
    the whole owner map, `index` the node number of each shared pixel (-1 elsewhere).
    """
    height, width = owner.shape
    pins: dict[int, int] = {}
    for box_index, box in enumerate(boxes):
        x0, y0, x1, y1 = pixel_box(box, height, width)
        crosses = owner[y0:y1, x0:x1] == box_index
        nodes = index[y0:y1, x0:x1]
        open_ = (nodes >= 0) & ~crosses  # shared pixels the box could take (FORBIDDEN never holds inside its box)
        if not open_.any():
            continue
        gain = np.full(nodes.shape, np.inf)
        misfit = np.zeros(nodes.shape)  # how much worse each open pixel's colour fits the box than its label
        candidates = nodes[open_]
        gain[open_] = costs[box_index, candidates] - costs[labels[candidates], candidates]
        misfit[open_] = colour[box_index, candidates] - colour[labels[candidates], candidates]
        for axis in (0, 1):  # 0: columns, 1: rows
            count = open_.sum(axis=axis)
            fits = misfit.sum(axis=axis) < PIN_COLOUR_MARGIN * np.maximum(count, 1)  # on average over the line
            missing = np.flatnonzero(~crosses.any(axis=axis) & (count > 0) & fits)
            best = np.argmin(gain, axis=axis)[missing]
            for node in (nodes[best, missing] if axis == 0 else nodes[missing, best]):
                pins.setdefault(int(node), box_index)  # a pixel two boxes want stays with the first
    return np.fromiter(pins, np.int64, len(pins)), np.fromiter(pins.values(), np.int64, len(pins))


def pinpointed_cut(costs: np.ndarray, colour: np.ndarray, labels: np.ndarray, p: np.ndarray, q: np.ndarray,
                   w: np.ndarray, owner: np.ndarray, nodes: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The cut redone until every box's label crosses each of its rows and columns that it can (module
    docstring). `owner` holds the fixed pixels; `nodes` marks the shared ones, numbered in raster order."""
    index = np.full(nodes.shape, -1, np.int64)
    index[nodes] = np.arange(int(nodes.sum()))
    owner, costs, labels = owner.copy(), costs.copy(), labels.copy()  # pins change them; the caller's stay as they were
    for _round in range(PINPOINT_ROUNDS):
        owner[nodes] = labels
        pinned, box = missing_crossings(owner, index, costs, colour, labels, boxes)
        if len(pinned) == 0:
            break
        kept = costs[box, pinned]
        costs[:, pinned] = FORBIDDEN
        costs[box, pinned] = kept
        labels[pinned] = box
        labels = expand(costs, labels, p, q, w)
    return labels


def resolve_by_appearance(salient: np.ndarray, boxes: np.ndarray, image: np.ndarray | None,
                          settings: PriorSettings) -> list[np.ndarray]:
    """Seeds as `resolve-shared`; the shared pixels by the energy of the module docstring.

    Only the own regions (salient pixels inside one box) are fixed. The core seeds of a box that
    owns almost nothing (an enclosed instance) teach its colour model and start the cut, but the
    cut may give them away: a core is a guess from the box's geometry. The work is done on the
    part of the picture that the boxes cover.
    """
    height, width = salient.shape
    if len(boxes) == 0:
        return []
    x0, y0 = (max(0, int(np.floor(v))) for v in boxes[:, :2].min(axis=0))
    x1, y1 = min(width, int(np.ceil(boxes[:, 2].max()))), min(height, int(np.ceil(boxes[:, 3].max())))
    if x1 <= x0 or y1 <= y0:
        return [np.zeros_like(salient) for _ in boxes]
    crop = (slice(y0, y1), slice(x0, x1))
    inside = resolve_in_view(salient[crop], boxes - np.array([x0, y0, x0, y0]), None if image is None else image[crop],
                             settings)
    masks = []
    for mask in inside:
        full = np.zeros_like(salient)
        full[crop] = mask
        masks.append(full)
    return masks


def resolve_in_view(salient: np.ndarray, boxes: np.ndarray, image: np.ndarray | None,
                    settings: PriorSettings) -> list[np.ndarray]:
    height, width = salient.shape
    shared, start = shared_pixel_owner(salient, boxes, image, settings)
    cut = replace(shared, undecided=(start >= 0) & ~shared.own)
    if image is None or not cut.undecided.any():  # no colours to learn, or nothing left to cut: the geometry alone
        return owned_masks(start, len(boxes))
    picture = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    fixed = np.where(shared.own, start, -1)
    # the prior is geometry alone (path length in pixels); the image's edges enter through the smoothness term
    lengths = geodesic_distances(cut, colour_steps(None, height, width), 0.0)
    bins = colour_bins(picture)
    costs = pixel_costs(cut, colour_costs(bins, cut.seeds), lengths, boxes)[:, cut.undecided]
    owned = [shared.own & box for box in shared.in_box]  # the pins' colour test: no core guesses
    colour = colour_costs(bins, owned)[:, cut.undecided]
    colour[[own.sum() < MIN_SEED_PIXELS for own in owned]] = 0.0  # a box that owns too little: colour says nothing
    p, q, w, to_fixed = neighbour_terms(cut.undecided, fixed, contrast_weights(picture))
    nodes = costs.shape[1]
    for node, label, weight in to_fixed:  # a neighbour owned by box j: every other label pays the edge
        costs += np.bincount(node, weight, minlength=nodes)[None, :]
        for box in np.unique(label):
            costs[box] -= np.bincount(node[label == box], weight[label == box], minlength=nodes)
    labels = expand(costs, start[cut.undecided], p, q, w)
    owner = start.copy()
    owner[cut.undecided] = pinpointed_cut(costs, colour, labels, p, q, w, start, cut.undecided, boxes)
    return owned_masks(owner, len(boxes))
