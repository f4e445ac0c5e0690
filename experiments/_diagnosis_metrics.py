"""Pure-NumPy metrics of ``diagnose_acquisition.py`` (issue #13): batch redundancy, density, label bias,
rank statistics. No torch, so the unit tests import them cheaply."""

from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a zero row stays zero): dot products are then cosine similarities."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def mean_pairwise_cosine(x: np.ndarray) -> float:
    """Mean cosine similarity over the n(n-1) ordered pairs of distinct rows (the diagonal left out)."""
    u = unit_rows(x)
    n = len(u)
    if n < 2:
        return float("nan")
    s = u.sum(axis=0)  # sum of the whole Gram matrix = |sum of rows|^2, without forming it
    return float((s @ s - np.einsum("ij,ij->", u, u)) / (n * (n - 1)))


def near_duplicate_share(x: np.ndarray, threshold: float = 0.9) -> float:
    """Share of rows whose nearest other row (by cosine) has similarity above ``threshold``."""
    u = unit_rows(x)
    if len(u) < 2:
        return float("nan")
    g = u @ u.T
    np.fill_diagonal(g, -np.inf)
    return float(np.mean(g.max(axis=1) > threshold))


def knn_cosine_distance(x: np.ndarray, k: int = 10, chunk: int = 1024) -> np.ndarray:
    """Per row, the mean cosine distance (1 - cos) to its ``k`` nearest other rows: high = sparse region
    (an outlier). Chunked so a 10k pool never holds a full [N, N] matrix."""
    u = unit_rows(x)
    n = len(u)
    k = min(k, n - 1)
    out = np.empty(n)
    for start in range(0, n, chunk):
        g = u[start : start + chunk] @ u.T
        g[np.arange(len(g)), np.arange(start, start + len(g))] = -np.inf  # a row is not its own neighbour
        top = -np.partition(-g, k - 1, axis=1)[:, :k]
        out[start : start + chunk] = 1.0 - top.mean(axis=1)
    return out


def rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy.stats.rankdata's default)."""
    a = np.asarray(a, dtype=np.float64)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a))
    ranks[order] = np.arange(1, len(a) + 1)
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the boolean ``positive`` (Mann-Whitney U, ties count
    half); nan when either class is empty."""
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = rankdata(scores)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson correlation of the average ranks."""
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra @ ra) * (rb @ rb))
    return float(ra @ rb / denom) if denom > 0 else float("nan")


def set_f1(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-text F1 of the predicted label set against the gold set; 1 when both are empty."""
    t, p = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    tp = (t & p).sum(axis=1)
    denom = t.sum(axis=1) + p.sum(axis=1)
    return np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 1.0)


def label_profile(y: np.ndarray, freq: np.ndarray, rare: np.ndarray) -> dict[str, float]:
    """Label statistics of the texts ``y`` [n, J] (multi-hot): the mean pool frequency over their (text, gold
    label) pairs, the share of texts with at least one ``rare`` label, and the mean number of labels."""
    y = np.asarray(y, dtype=bool)
    pairs = y.sum()
    return {
        "label_freq": float((y * freq).sum() / pairs) if pairs else float("nan"),
        "rare_share": float(np.mean((y & rare).any(axis=1))),
        "labels_per_text": float(y.sum(axis=1).mean()),
    }


def bootstrap_auroc_diff(
    score_a, pos_a, score_b, pos_b, resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of AUROC(b) - AUROC(a), resampling the same texts for both (paired)."""
    rng = np.random.default_rng(seed)
    n = len(score_a)
    diffs = []
    for _ in range(resamples):
        i = rng.integers(0, n, n)
        diffs.append(auroc(score_b[i], pos_b[i]) - auroc(score_a[i], pos_a[i]))
    tail = 100 * (1 - confidence) / 2
    low, high = np.nanpercentile(diffs, [tail, 100 - tail])
    return float(low), float(high)
