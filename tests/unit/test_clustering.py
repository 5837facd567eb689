"""Our average-linkage clustering makes exactly SciPy's partitions (SciPy is a dev tool only)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.cluster.hierarchy import fcluster, linkage

from app.diarization.clustering import average_linkage_labels, two_means


def _partition(labels: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)}


def _scipy_labels(x: np.ndarray, threshold: float, max_clusters: int) -> np.ndarray:
    tree = linkage(x, method="average", metric="cosine")
    labels = fcluster(tree, t=threshold, criterion="distance")
    if labels.max() > max_clusters:
        labels = fcluster(tree, t=max_clusters, criterion="maxclust")
    return labels


def _speakers(seed: int, n: int, speakers: int, spread: float, dim: int = 16) -> np.ndarray:
    """Points scattered around a few random directions, like speaker embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((speakers, dim))
    return centres[rng.integers(0, speakers, n)] + spread * rng.standard_normal((n, dim))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 60),
    speakers=st.integers(1, 5),
    spread=st.floats(0.05, 1.5),
    threshold=st.floats(0.05, 0.9),
    max_clusters=st.integers(1, 12),
)
def test_partitions_equal_scipys(
    seed: int, n: int, speakers: int, spread: float, threshold: float, max_clusters: int
) -> None:
    x = _speakers(seed, n, speakers, spread)
    ours = average_linkage_labels(x, threshold, max_clusters)
    assert _partition(ours) == _partition(_scipy_labels(x, threshold, max_clusters))
    assert len(np.unique(ours)) <= max_clusters


def test_labels_count_from_zero_in_order_of_first_row() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0], [0.99, 0.05], [0.02, 1.0], [-1.0, 0.1]])
    assert average_linkage_labels(x, threshold=0.2, max_clusters=12).tolist() == [0, 1, 0, 1, 2]
    assert average_linkage_labels(x[:1], 0.2, 12).tolist() == [0]
    assert average_linkage_labels(x[:0], 0.2, 12).tolist() == []


def test_an_hour_of_windows_gives_scipys_partition() -> None:
    x = _speakers(7, 4500, 3, 0.4, dim=256)  # 1 h of speech at one 1.6 s window every 0.8 s
    assert _partition(average_linkage_labels(x, 0.4, 12)) == _partition(_scipy_labels(x, 0.4, 12))


def test_two_means_separates_two_voices() -> None:
    x = _speakers(7, 60, 2, 0.2)
    truth = _partition(average_linkage_labels(x, 0.5, 2))
    assert len(truth) == 2
    labels = two_means(x)
    assert _partition(labels) == truth
    assert np.array_equal(labels, two_means(x))  # deterministic


def test_two_means_degenerate() -> None:
    assert two_means(np.ones((1, 4))).tolist() == [0]
    assert two_means(np.ones((5, 4))).tolist() == [0] * 5  # identical rows: nothing to split
