"""Multi-label F1 on binary indicator matrices [N, J]."""

from __future__ import annotations

import numpy as np


def micro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    tp = np.sum(t & p)
    denom = t.sum() + p.sum()
    return float(2 * tp / denom) if denom else 0.0  # scikit-learn's zero_division=0


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-label F1 over the labels present in ``y_true`` or ``y_pred``: scikit-learn's
    ``f1_score(average="macro", zero_division=0, labels=<those labels>)``. A label predicted but never true
    scores 0 (its false positives must cost macro-F1); one neither true nor predicted has no F1 and is left out.
    Nothing true and nothing predicted gives 0.0, as scikit-learn does with ``zero_division=0`` (and ``micro_f1``)."""
    t, p = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    counts = t.sum(0) + p.sum(0)  # 2 tp + fp + fn per label
    present = counts > 0
    if not present.any():
        return 0.0
    tp = (t & p).sum(0)
    return float((2 * tp[present] / counts[present]).mean())


def multi_hot(label_sets, labels: list[str]) -> np.ndarray:
    """[[names]] -> float32 [N, J]; a name outside ``labels`` raises ValueError naming it."""
    index = {name: j for j, name in enumerate(labels)}
    y = np.zeros((len(label_sets), len(labels)), dtype=np.float32)
    for i, names in enumerate(label_sets):
        for name in names:
            if name not in index:
                raise ValueError(f"label {name!r} is not in the label list")
            y[i, index[name]] = 1.0
    return y
