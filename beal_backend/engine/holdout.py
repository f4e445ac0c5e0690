"""The stable held-out slice of a project's annotations, split into an early-stopping half and a gate half,
and the paired bootstrap the quality gate judges a candidate with.

Early stopping picks the candidate's best epoch on the texts it scores best on; judging the candidate on
those same texts favours it. So the slice is split in two disjoint halves: one chooses the epoch (both learners
train on it instead by default: on so few texts their early stopping measured worse), the other is never
trained on and only compares versions. Both splits hash the task id, so a task keeps its role in every round
(and the simulation, which calls ``held_out_split`` too, holds out the same way).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

RESAMPLES = 1000  # paired bootstrap resamples of the gate half
CONFIDENCE = 0.95  # one-sided: the upper bound of candidate - current the gate compares with the margin


@dataclass(frozen=True)
class HeldOut:
    stop: list[int]  # rows whose texts choose the best epoch (early stopping)
    gate: list[int]  # rows whose texts the quality gate compares versions on

    def training_rows(self, n: int) -> tuple[list[int], list[int]]:
        """(the rows a learner is given: all but the gate half; positions of the early-stopping half
        among them, the learner's ``val_rows``: held out of training too)."""
        gate = set(self.gate)
        rows = [i for i in range(n) if i not in gate]
        stop = set(self.stop)
        return rows, [k for k, i in enumerate(rows) if i in stop]


def held_out_split(task_ids: list[int], fraction: float, min_val: int) -> HeldOut:
    """The held-out slice (``held_out_rows``) split by a second hash of the task id into two disjoint halves,
    (about) half each: early stopping and the gate. Both empty while the slice is."""
    held = held_out_rows(task_ids, fraction, min_val)
    gate = [i for i in held if _bucket(task_ids[i], "gate") < 0.5]
    return HeldOut(stop=[i for i in held if i not in set(gate)], gate=gate)


def held_out_rows(task_ids: list[int], fraction: float, min_val: int) -> list[int]:
    """Rows whose task is in the stable held-out slice: a task is held out by a hash of its id, so it
    stays held out in every round and versions are compared on texts none of them trained on."""
    rows = [i for i, t in enumerate(task_ids) if _bucket(t) < fraction]
    return rows if len(rows) >= min_val and len(rows) < len(task_ids) else []


def _bucket(task_id: int, salt: str = "") -> float:
    """A uniform number in [0, 1) fixed by the task id (and ``salt``, for an independent second draw)."""
    return int(hashlib.sha256(f"{salt}{task_id}".encode()).hexdigest()[:8], 16) / 16**8


def paired_bootstrap(
    y_true: np.ndarray,
    candidate: np.ndarray,
    current: np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict:
    """Candidate vs current on the same texts (0/1 [N, J] truth and predictions of each), resampled in pairs:
    each resample draws N texts with replacement and scores both models on them. -> per metric (``micro_f1``,
    ``macro_f1``) {"candidate", "current": F1 on all N texts, "difference": candidate - current,
    "upper": the ``confidence`` quantile of the resampled differences}. Few texts give a wide spread, so the
    upper bound sits far above the difference: the evidence needed to reject grows as the slice shrinks."""
    y, a, b = (np.asarray(m, dtype=bool) for m in (y_true, candidate, current))
    n = len(y)
    if n == 0 or a.shape != y.shape or b.shape != y.shape:
        raise ValueError(f"need equal non-empty [N, J] arrays, got {y.shape}, {a.shape}, {b.shape}")
    rng = np.random.default_rng(seed)
    diffs = []  # [resamples, 2]: (micro, macro) differences, resampled in chunks of at most ~32 MB of counts
    for size in np.diff(np.append(np.arange(0, resamples, max(1, 4_000_000 // n)), resamples)):
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)  # [B, N] draws per text
        diffs.append(np.subtract(_f1(counts, y, a), _f1(counts, y, b)).T)
    diff = np.concatenate(diffs)
    whole = np.ones((1, n))
    out = {}
    for k, metric in enumerate(("micro_f1", "macro_f1")):
        full_a, full_b = _f1(whole, y, a)[k][0], _f1(whole, y, b)[k][0]
        out[metric] = {
            "candidate": float(full_a),
            "current": float(full_b),
            "difference": float(full_a - full_b),
            "upper": float(np.quantile(diff[:, k], confidence)),
        }
    return out


def _f1(counts: np.ndarray, y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(micro-F1 [B], macro-F1 [B]) of the texts weighted by ``counts`` [B, N], as ``evaluation.micro_f1`` /
    ``macro_f1`` on the resampled rows (0 where nothing is true or predicted; macro over labels present)."""
    tp = counts @ (y & pred).astype(np.float64)  # [B, J]
    both = counts @ (y.astype(np.float64) + pred)  # 2 tp + fp + fn per label
    micro = np.divide(2 * tp.sum(1), both.sum(1), out=np.zeros(len(counts)), where=both.sum(1) > 0)
    present = both > 0
    per_label = np.divide(2 * tp, both, out=np.zeros_like(tp), where=present)
    n_present = present.sum(1)
    macro = np.divide(per_label.sum(1), n_present, out=np.zeros(len(counts)), where=n_present > 0)
    return micro, macro
