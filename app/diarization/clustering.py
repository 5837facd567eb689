"""Average-linkage agglomerative clustering on cosine distance, in numpy.

It computes what SciPy's `linkage(x, method="average", metric="cosine")` cut by `fcluster(criterion="distance")`
computes (and `criterion="maxclust"` when too many clusters remain), so the runtime needs no SciPy (about 140 MB of
the image for this one function). Clusters merge closest first (the distance between two clusters is the mean
distance between their members, Lance-Williams update); average linkage has no inversions, so merging greedily by
the smallest distance gives SciPy's dendrogram, and cutting it at a height is stopping the merges there.
`tests/test_clustering.py` compares the partitions with SciPy's on random data.

Memory is one n x n float64 matrix (n = embeddings; 1 h of speech at 0.8 s windows is ~4500: 160 MB). Time is
O(n^2) per pass over the matrix, with a cached nearest neighbour per row so a merge usually touches O(n).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


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
