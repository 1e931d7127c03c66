"""Exact evaluation metrics for click-through-rate prediction, computed in NumPy.

Keras's streaming `keras.metrics.AUC` approximates the ROC curve with a fixed number of
thresholds (200 by default), which moves the fourth decimal that CTR papers report. These
functions compute the metrics exactly on the whole evaluation split held in memory.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _as_flat_pair(
    labels: npt.ArrayLike, values: npt.ArrayLike, values_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten labels and values to float64 vectors and check that they match."""
    labels = np.asarray(labels, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64).reshape(-1)

    if labels.shape != values.shape:
        raise ValueError(
            f"labels and {values_name} must have the same number of elements, "
            f"got {labels.size} labels and {values.size} {values_name}"
        )
    if labels.size == 0:
        raise ValueError("labels is empty: the metric needs at least one example")
    if not np.all((labels == 0.0) | (labels == 1.0)):
        bad = labels[(labels != 0.0) & (labels != 1.0)][0]
        raise ValueError(f"labels must be 0 or 1, found {bad!r}")
    if not np.all(np.isfinite(values)):
        bad_index = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(
            f"{values_name} must be finite, found {values[bad_index]!r} at index {bad_index}"
        )
    return labels, values


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Return 1-based ranks of `values`, with tied values sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]

    # Boundaries of the runs of equal values in sorted order.
    run_starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    run_ends = np.r_[run_starts[1:], values.size]

    # A run occupying sorted positions [start, end) gets rank (start + 1 + end) / 2.
    run_ranks = (run_starts + 1 + run_ends) / 2.0
    run_lengths = run_ends - run_starts

    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(run_ranks, run_lengths)
    return ranks


def exact_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Compute the exact area under the ROC curve from ranks.

    AUC = P(score of a random positive > score of a random negative), with a tie counted
    as one half. With average ranks r_i over all N examples, P positives and Q negatives:

        AUC = (sum_{i positive} r_i - P (P + 1) / 2) / (P * Q)

    (the Mann-Whitney U statistic divided by P * Q). Runs in O(N log N).

    Args:
        labels: 0/1 labels, any shape; flattened.
        scores: real-valued scores (probabilities or logits), same number of elements.

    Returns:
        The AUC as a Python float in [0, 1].

    Raises:
        ValueError: if the shapes differ, a label is not 0 or 1, a score is not finite, or
            the labels contain only one class (the AUC is undefined then).

    Example:
    >>> exact_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    labels, scores = _as_flat_pair(labels, scores, "scores")
    num_positives = float(labels.sum())
    num_negatives = float(labels.size - num_positives)
    if num_positives == 0 or num_negatives == 0:
        raise ValueError(
            f"AUC is undefined with only one class: {int(num_positives)} positives and "
            f"{int(num_negatives)} negatives; evaluate on a split with both labels"
        )

    ranks = _average_ranks(scores)
    positive_rank_sum = float(ranks[labels == 1.0].sum())
    u_statistic = positive_rank_sum - num_positives * (num_positives + 1.0) / 2.0
    return u_statistic / (num_positives * num_negatives)


def log_loss(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike, eps: float = 1e-7
) -> float:
    """Compute the mean binary cross-entropy with probabilities clipped to [eps, 1 - eps].

        LogLoss = -1/N sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)]

    The clipping keeps a confident wrong prediction finite; 1e-7 matches Keras's default
    epsilon for `binary_crossentropy`.

    Args:
        labels: 0/1 labels, any shape; flattened.
        probabilities: predicted click probabilities, same number of elements, in [0, 1].
        eps: clipping margin, in (0, 0.5).

    Returns:
        The mean LogLoss in nats as a Python float.

    Raises:
        ValueError: if the shapes differ, a label is not 0 or 1, or a probability is outside
            [0, 1] or not finite.

    Example:
    >>> round(log_loss([1, 0], [0.8, 0.4]), 6)
    0.366985
    """
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
    labels, probabilities = _as_flat_pair(labels, probabilities, "probabilities")
    if np.any((probabilities < 0.0) | (probabilities > 1.0)):
        bad_index = int(np.flatnonzero((probabilities < 0.0) | (probabilities > 1.0))[0])
        raise ValueError(
            f"probabilities must lie in [0, 1], found {probabilities[bad_index]!r} at index "
            f"{bad_index}; pass sigmoid outputs, not logits"
        )

    clipped = np.clip(probabilities, eps, 1.0 - eps)
    losses = -(labels * np.log(clipped) + (1.0 - labels) * np.log1p(-clipped))
    return float(losses.mean())
