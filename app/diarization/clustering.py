"""Speaker clustering: average-linkage agglomerative clustering on cosine distance in numpy, and the policy that
turns embeddings of encoder windows into speakers (`cluster`, `cluster_bounded`: cut, fold, split, and for
telephone-band audio recentre; ADR 18, ADR 67).

It computes what SciPy's `linkage(x, method="average", metric="cosine")` cut by `fcluster(criterion="distance")`
computes (and `criterion="maxclust"` when too many clusters remain), so the runtime needs no SciPy (about 140 MB of
the image for this one function). Clusters merge closest first (the distance between two clusters is the mean
distance between their members, Lance-Williams update); average linkage has no inversions, so merging greedily by
the smallest distance gives SciPy's dendrogram, and cutting it at a height is stopping the merges there.
`tests/unit/test_clustering.py` compares the partitions with SciPy's on random data.

Memory is one n x n float64 matrix (n = embeddings; 1 h of speech at 0.8 s windows is ~4500: 160 MB). Time is
O(n^2) per pass over the matrix, with a cached nearest neighbour per row so a merge usually touches O(n).
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


def average_linkage_labels(
    embeddings: npt.NDArray[np.floating], threshold: float, max_clusters: int
) -> npt.NDArray[np.int64]:
    """Cluster labels 0..k-1 (in order of each cluster's first row) for the rows of `embeddings`.

    Clusters merge while the closest pair is at most `threshold` apart (cosine distance, average linkage), and go on
    merging while more than `max_clusters` remain.
    """
    n = len(embeddings)
    if n <= 1:
        return np.zeros(n, np.int64)
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    dist = 1.0 - x @ x.T
    np.fill_diagonal(dist, np.inf)
    size = np.ones(n)
    alive = np.ones(n, dtype=bool)
    owner = np.arange(n)  # the cluster (a surviving row) each row belongs to
    nearest = np.argmin(dist, axis=1)
    nearest_dist = dist[np.arange(n), nearest]
    clusters = n
    while clusters > 1:
        i = int(np.argmin(nearest_dist))
        j = int(nearest[i])
        if nearest_dist[i] > threshold and clusters <= max_clusters:
            break
        # Merge j into i: the new cluster's distance to every other is the size-weighted mean of i's and j's.
        merged = (size[i] * dist[i] + size[j] * dist[j]) / (size[i] + size[j])
        merged[i] = np.inf
        merged[~alive] = np.inf
        dist[i, :] = merged
        dist[:, i] = merged
        dist[j, :] = np.inf
        dist[:, j] = np.inf
        size[i] += size[j]
        alive[j] = False
        owner[owner == j] = i
        nearest_dist[j] = np.inf
        clusters -= 1
        # Rows whose nearest was i or j look again; the others only compare with the merged cluster.
        stale = np.flatnonzero(alive & ((nearest == i) | (nearest == j)))
        for k in [*stale.tolist(), i]:
            nearest[k] = int(np.argmin(dist[k]))
            nearest_dist[k] = dist[k, nearest[k]]
        closer = alive & (merged < nearest_dist)
        closer[i] = False
        nearest[closer] = i
        nearest_dist[closer] = merged[closer]
    _, first = np.unique(owner, return_index=True)
    order = {int(owner[f]): rank for rank, f in enumerate(sorted(first.tolist()))}
    return np.array([order[int(o)] for o in owner], dtype=np.int64)


def two_means(embeddings: npt.NDArray[np.floating], restarts: int = 4, iterations: int = 50) -> npt.NDArray[np.int64]:
    """Split rows into two groups (labels 0/1) by spherical 2-means on unit vectors; deterministic.

    Each restart seeds with a row and the row farthest from it (cosine), the first restarts using the rows
    farthest from the mean; the split with the highest total cosine to its centres wins.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    n = len(x)
    if n < 2:
        return np.zeros(n, np.int64)
    mean = x.mean(axis=0)
    seeds = np.argsort(x @ mean)[:restarts]  # the least typical rows first
    best: npt.NDArray[np.int64] | None = None
    best_score = -np.inf
    for first in seeds.tolist():
        second = int(np.argmin(x @ x[first]))
        centres = x[[first, second]]
        labels = np.zeros(n, np.int64)
        for _ in range(iterations):
            new = np.asarray(np.argmax(x @ centres.T, axis=1), dtype=np.int64)
            if np.all(new == new[0]):  # degenerate: everything on one side
                break
            sums = np.stack([x[new == 0].sum(axis=0), x[new == 1].sum(axis=0)])
            centres = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-300)
            if np.array_equal(new, labels):
                break
            labels = new
        if np.all(labels == labels[0]):
            continue
        score = float(np.sum(np.max(x @ centres.T, axis=1)))
        if score > best_score:
            best, best_score = labels, score
    return best if best is not None else np.zeros(n, np.int64)


DISTANCE_THRESHOLD = 0.40
MIN_CLUSTER_S = 1.0  # a cluster covering less speech than this is folded into the nearest larger one
MAX_SPEAKERS = 12
REFINE_ITERATIONS = 10


class Calibration(msgspec.Struct, frozen=True):
    """How embeddings of one kind of audio become speakers (ADR 67).

    `threshold`: the average-linkage cut (cosine distance); `min_cluster_s`: clusters covering less speech are
    folded into their nearest neighbour; `recentre`: once the count is known, the windows are clustered again into
    that many speakers on embeddings with the recording's mean removed (what every voice of the recording shares,
    its channel, is taken out), then refined by spherical k-means.
    """

    threshold: float
    min_cluster_s: float = MIN_CLUSTER_S
    recentre: bool = False


# Wide-band speech: ADR 18's calibration (chosen on the espeak set's tuning seeds).
WIDE_BAND = Calibration(DISTANCE_THRESHOLD)
# Telephone-band speech (no power above 4 kHz): the encoder, trained on wide-band speech, puts every voice closer
# together (mean window cosine between two real voices 0.54-0.66 instead of 0.42-0.59; within one 0.72-0.81 in both),
# so the cut is lower; clusters must cover 3 s, since a lower cut also isolates a voice's odd windows; and the
# channel all voices share is removed before the windows are assigned. Chosen on the real-voice set's tuning seeds.
NARROW_BAND = Calibration(0.30, min_cluster_s=3.0, recentre=True)
# A cluster is split in two (once) when both halves cover >= SPLIT_MIN_SIDE_S of speech, their centroids are at
# most SPLIT_MAX_COSINE alike, and consecutive windows of one region fall on the same side at least SPLIT_COHERENCE
# of the time over >= SPLIT_MIN_PAIRS such pairs: a second voice comes in turns, noise in one voice does not.
SPLIT_MAX_COSINE = 0.93  # halves of one voice: >= 0.93 once large; two voices alike: 0.77-0.93
SPLIT_COHERENCE = 0.95
SPLIT_MIN_PAIRS = 10
SPLIT_MIN_SIDE_S = 3.0
# Clustering memory and time are quadratic in the windows clustered: beyond this many (~13 min of speech), blocks of
# consecutive windows spread over the file are clustered and every other window joins its nearest centroid.
MAX_CLUSTERED = 1000
SAMPLE_BLOCK = 10


def cluster(
    embeddings: FloatArray,
    durations: FloatArray,
    calibration: Calibration = WIDE_BAND,
    follows: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.int64]:
    """Cluster labels 0..k-1 for L2-normalised embeddings in time order; k estimated, never given.

    Average linkage cut at the calibration's threshold, small clusters folded into their nearest neighbour, then
    clusters that hold two voices taking turns are split (`_split_mixed`; needs `follows`: row i is the window right
    after row i-1 in the same speech region); with `recentre`, the k speakers are then found again on centred
    embeddings (`_recentred`).
    """
    n = len(embeddings)
    if n <= 1:
        return np.zeros(n, np.int64)
    merged = average_linkage_labels(embeddings, calibration.threshold, MAX_SPEAKERS)
    labels = _fold_small(embeddings, durations, merged, calibration.min_cluster_s)
    if follows is not None:
        labels = _split_mixed(embeddings, durations, follows, labels)
    if calibration.recentre:
        labels = _recentred(embeddings, durations, labels, calibration.min_cluster_s)
    _, dense = np.unique(labels, return_inverse=True)
    return np.asarray(dense, dtype=np.int64)


def cluster_bounded(
    embeddings: FloatArray,
    durations: FloatArray,
    follows: npt.NDArray[np.bool_],
    calibration: Calibration = WIDE_BAND,
    max_clustered: int = MAX_CLUSTERED,
) -> npt.NDArray[np.int64]:
    """`cluster` on at most ~`max_clustered` windows: blocks of SAMPLE_BLOCK consecutive windows evenly spread over
    the file are clustered (so turn coherence can still be seen), the others take their nearest centroid.

    Memory: the clustering matrix is at most `max_clustered`^2 float64 (8 MB at 1000, ~2x that while it is
    built), whatever the file's length; the embeddings themselves are 1 kB per window (~4.6 MB per hour).
    """
    n = len(embeddings)
    stride = -(-n // max_clustered)
    if stride <= 1:
        return cluster(embeddings, durations, calibration, follows)
    sample = np.flatnonzero((np.arange(n) // SAMPLE_BLOCK) % stride == 0)
    sample_follows = follows[sample] & (np.diff(sample, prepend=-2) == 1)
    sample_labels = cluster(embeddings[sample], durations[sample], calibration, sample_follows)
    space = embeddings - embeddings[sample].mean(axis=0) if calibration.recentre else embeddings
    sums = np.stack([space[sample[sample_labels == c]].sum(axis=0) for c in range(int(sample_labels.max()) + 1)])
    centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)
    labels = np.asarray(np.argmax(space @ centroids.T, axis=1), dtype=np.int64)
    labels[sample] = sample_labels
    return labels


def _recentred(
    embeddings: FloatArray, durations: FloatArray, labels: npt.NDArray[np.int64], min_cluster_s: float
) -> npt.NDArray[np.int64]:
    """The same number of speakers found again on embeddings with the recording's mean removed: average linkage
    down to that count, small clusters folded, then spherical k-means from there (an odd window that average
    linkage left alone joins its nearest speaker)."""
    count = len(np.unique(labels))
    if count < 2:
        return labels
    centred = embeddings - embeddings.mean(axis=0)
    centred /= np.maximum(np.linalg.norm(centred, axis=1, keepdims=True), 1e-9)
    labels = _fold_small(centred, durations, average_linkage_labels(centred, -np.inf, count), min_cluster_s)
    for _ in range(REFINE_ITERATIONS):
        ids = np.unique(labels)
        sums = np.stack([centred[labels == c].sum(axis=0) for c in ids])
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)
        moved = ids[np.argmax(centred @ centroids.T, axis=1)]
        if np.array_equal(moved, labels):
            break
        labels = moved
    return labels


def _fold_small(
    embeddings: FloatArray, durations: FloatArray, labels: npt.NDArray[np.int64], min_cluster_s: float = MIN_CLUSTER_S
) -> npt.NDArray[np.int64]:
    """Fold clusters that cover less than `min_cluster_s` of speech into the nearest larger cluster (by centroid
    cosine)."""
    labels = labels.copy()
    while True:
        ids = np.unique(labels)
        if len(ids) <= 1:
            return labels
        cover = {int(c): float(durations[labels == c].sum()) for c in ids}
        small = min(cover, key=lambda c: cover[c])
        if cover[small] >= min_cluster_s:
            return labels
        centroids = {int(c): embeddings[labels == c].mean(axis=0) for c in ids}
        mine = centroids[small] / max(float(np.linalg.norm(centroids[small])), 1e-9)
        best = max(
            (c for c in centroids if c != small),
            key=lambda c: float(mine @ centroids[c]) / max(float(np.linalg.norm(centroids[c])), 1e-9),
        )
        labels[labels == small] = best


def _split_mixed(
    embeddings: FloatArray, durations: FloatArray, follows: npt.NDArray[np.bool_], labels: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Split clusters that hold two voices, once each.

    Average linkage merges voices that sound alike (two synthetic voices of one engine, two readers) because their
    windows are nearly as close as one voice's noisy windows are to each other. A two-means split of such a cluster
    follows the turns (consecutive windows of a region land on the same side) and its halves' centroids are clearly
    apart; a split of one voice scatters and its halves stay close. Splitting the halves again over-split long
    recordings of few voices (5-7 speakers for 4 on a 10 min input) for no gain on the tuning conversations.
    """
    labels = labels.copy()
    next_id = int(labels.max()) + 1
    for current in np.unique(labels).tolist():
        members = np.flatnonzero(labels == current)
        if len(members) < 4:
            continue
        side = two_means(embeddings[members])
        sums = np.stack([embeddings[members[side == k]].sum(axis=0) for k in (0, 1)])
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)
        adjacent = (np.diff(members) == 1) & follows[members[1:]]
        pairs = int(adjacent.sum())
        agree = float(np.mean(side[1:][adjacent] == side[:-1][adjacent])) if pairs else 0.0
        covers = [float(durations[members[side == k]].sum()) for k in (0, 1)]
        if (
            pairs >= SPLIT_MIN_PAIRS
            and agree >= SPLIT_COHERENCE
            and float(centroids[0] @ centroids[1]) <= SPLIT_MAX_COSINE
            and min(covers) >= SPLIT_MIN_SIDE_S
        ):
            labels[members[side == 1]] = next_id
            next_id += 1
    return labels
