"""Per-text acquisition scores: BEAL's expected confidence (Eqs. 1, 2, 7, 8), BALD and entropy. Pure NumPy.

Axis order everywhere: ``probs[T, N, J]`` = T stochastic passes, N texts, J labels."""

from __future__ import annotations

import numpy as np

EPS = 1e-12


class AcquisitionError(ValueError):
    """The pool or the request cannot be served (empty pool, b too large, missing inputs)."""


# ---------------------------------------------------------------- BEAL (Eqs. 1, 2, 7, 8)


def relevance(y: np.ndarray) -> np.ndarray:
    """Eq. 1: R(y) = 2^y - 1 (R(0) = 0, R(1) = 1)."""
    return np.exp2(y) - 1.0


def harmonic(num_labels: int) -> float:
    """H_J = sum_{k=1..J} 1/k, the largest possible EC; the Label Studio score is EC / H_J."""
    return float(np.sum(1.0 / np.arange(1, num_labels + 1)))


def ec_from_mean_relevance(mean_relevance: np.ndarray) -> np.ndarray:
    """EC from the posterior relevance (1/T) sum_t R(Y^t_j), shape [N, J] -> [N].

    pi-hat is fixed per text, so (1/T) sum_t conf(pi-hat, Y^t) = sum_j meanR_j / pi-hat(j): sort the
    mean relevance descending and dot it with 1/rank. Ties swap equal values, so the tie rule
    (stable sort = lower label index first) cannot change the result."""
    m = np.asarray(mean_relevance, dtype=np.float64)
    ordered = -np.sort(-m, axis=1, kind="stable")
    return ordered @ (1.0 / np.arange(1, m.shape[1] + 1))


def expected_confidence(probs: np.ndarray) -> np.ndarray:
    """Raw expected confidence EC(X) per text from MC-dropout probabilities ``probs[T, N, J]`` -> ``[N]``."""
    p = _check_probs(probs)
    return ec_from_mean_relevance(relevance(p).mean(axis=0))


def normalized_score(ec: np.ndarray, num_labels: int, single_label: bool = False) -> np.ndarray:
    """EC divided by its largest value, in [0, 1]: ascending order is BEAL's acquisition order. The largest
    EC is H_J for independent sigmoids (all ones) and 1 for a softmax vector (one-hot, single-choice)."""
    top = 1.0 if single_label else harmonic(num_labels)
    return np.clip(np.asarray(ec, dtype=np.float64) / top, 0.0, 1.0)


# ---------------------------------------------------------------- other uncertainty scores


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of a Bernoulli(p), elementwise; 0 at p in {0, 1}."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return -(p * np.log(p) + (1.0 - p) * np.log1p(-p))


def bald_from_moments(mean_prob: np.ndarray, mean_entropy: np.ndarray) -> np.ndarray:
    """BALD for sigmoid outputs: sum_j [H(mean_t p_j) - mean_t H(p_j)], each label a Bernoulli. [N, J] -> [N]."""
    return np.clip(binary_entropy(mean_prob) - mean_entropy, 0.0, None).sum(axis=1)


def bald(probs: np.ndarray) -> np.ndarray:
    """BALD mutual information per text from ``probs[T, N, J]`` (no softmax: labels are independent)."""
    p = _check_probs(probs)
    return bald_from_moments(p.mean(axis=0), binary_entropy(p).mean(axis=0))


def mean_entropy(mean_prob: np.ndarray) -> np.ndarray:
    """Mean binary entropy over labels of the mean prediction, [N, J] -> [N]."""
    return binary_entropy(mean_prob).mean(axis=1)


def _check_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 3 or 0 in p.shape:
        raise AcquisitionError(f"probs must be a non-empty [T, N, J] array, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        raise AcquisitionError("probs must be finite probabilities in [0, 1]")
    return p
