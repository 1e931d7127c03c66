"""Tests of the exact AUC and LogLoss against sklearn and a brute-force pair count."""

import itertools

import numpy as np
import pytest
from sklearn import metrics as sklearn_metrics

from ada_keras.metrics import exact_auc, log_loss


def brute_force_auc(labels, scores):
    """Count every positive-negative pair: 1 if ordered right, 1/2 if tied."""
    positives = [s for y, s in zip(labels, scores) if y == 1]
    negatives = [s for y, s in zip(labels, scores) if y == 0]
    credit = 0.0
    for positive, negative in itertools.product(positives, negatives):
        if positive > negative:
            credit += 1.0
        elif positive == negative:
            credit += 0.5
    return credit / (len(positives) * len(negatives))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_continuous(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=2000)
    scores = rng.normal(size=2000) + 0.7 * labels

    assert exact_auc(labels, scores) == pytest.approx(
        sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(5))
def test_auc_with_ties_matches_both_oracles(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=300)
    # Scores rounded to 3 levels, so most pairs are tied.
    scores = np.round(rng.uniform(size=300) + 0.3 * labels, 1) // 0.5

    expected = brute_force_auc(labels.tolist(), scores.tolist())
    assert exact_auc(labels, scores) == pytest.approx(expected, abs=1e-12)
    assert exact_auc(labels, scores) == pytest.approx(
        sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12
    )


def test_auc_rare_positives_like_ipinyou():
    rng = np.random.default_rng(7)
    labels = (rng.uniform(size=20000) < 0.003).astype(np.float32)
    labels[0] = 1.0
    scores = rng.uniform(size=20000).astype(np.float32) * (1.0 + labels)

    assert exact_auc(labels, scores) == pytest.approx(
        sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12
    )


def test_auc_extremes_and_all_tied():
    labels = [0, 0, 1, 1]
    assert exact_auc(labels, [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert exact_auc(labels, [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert exact_auc(labels, [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_auc_accepts_column_vectors():
    labels = np.array([[0.0], [1.0], [0.0], [1.0]], dtype=np.float32)
    scores = np.array([[0.2], [0.9], [0.4], [0.3]], dtype=np.float32)

    assert exact_auc(labels, scores) == pytest.approx(
        brute_force_auc(labels.ravel().tolist(), scores.ravel().tolist())
    )


def test_auc_one_class_raises():
    with pytest.raises(ValueError, match="only one class"):
        exact_auc([1, 1, 1], [0.1, 0.2, 0.3])


def test_auc_invalid_inputs_raise():
    with pytest.raises(ValueError, match="same number"):
        exact_auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0 or 1"):
        exact_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        exact_auc([0, 1], [0.1, np.nan])


@pytest.mark.parametrize("seed", range(3))
def test_log_loss_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=1000)
    probabilities = rng.uniform(0.01, 0.99, size=1000)

    assert log_loss(labels, probabilities) == pytest.approx(
        sklearn_metrics.log_loss(labels, probabilities), rel=1e-10
    )


def test_log_loss_clips_confident_mistakes():
    labels = np.array([1.0, 0.0])
    probabilities = np.array([0.0, 1.0])
    expected = -np.log(1e-7)

    assert log_loss(labels, probabilities) == pytest.approx(expected, rel=1e-6)
    assert log_loss(labels, probabilities, eps=1e-3) == pytest.approx(-np.log(1e-3), rel=1e-6)


def test_log_loss_formula_by_hand():
    # -(log 0.8 + log 0.6) / 2
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)


def test_log_loss_invalid_inputs_raise():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        log_loss([0, 1], [0.5, 1.5])
    with pytest.raises(ValueError, match="eps"):
        log_loss([0, 1], [0.5, 0.5], eps=0.0)
    with pytest.raises(ValueError, match="empty"):
        log_loss([], [])
