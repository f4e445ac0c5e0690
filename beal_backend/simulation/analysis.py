"""The numbers of a finished (or partial) run: learning curves, the area under them, the paper's Table 2
metric, and paired differences against random with t-intervals over the repeats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from beal_backend.simulation.config import ALL_DATA, SimulationConfig
from beal_backend.simulation.datasets import Dataset

METRICS = ("micro_f1", "macro_f1")
NOT_REACHED = "not reached"
# the Table 2 metric against the all-data F1 (the paper's), and against 98 % of it: plateaus just below the
# all-data level make the strict one jump to 100 % on small differences
TARGETS = {"pct_to_all_data": 1.0, "pct_to_98pct_of_all_data": 0.98}
SAVED_TARGET = "pct_to_98pct_of_all_data"  # labels saved against random are counted on the robust target
CONFIDENCE = 0.95


def reach_fraction(fractions, scores, target: float, tol: float = 1e-9) -> float | None:
    """Table 2 metric: the labeled fraction at which a learning curve first reaches ``target``.

    Linear interpolation between the two rounds that straddle the target; the first point when it is
    already there; ``None`` when the curve never reaches it.
    """
    x, y = np.asarray(fractions, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    hit = np.flatnonzero(y >= target - tol)
    if len(hit) == 0:
        return None
    k = int(hit[0])
    if k == 0:
        return float(x[0])
    x0, y0, x1, y1 = x[k - 1], y[k - 1], x[k], y[k]
    return float(min(x1, x0 + (target - y0) / (y1 - y0) * (x1 - x0)))


def curve_area(fractions, scores) -> float:
    """Area under a learning curve divided by its width: the mean F1 over the labeled range."""
    x, y = np.asarray(fractions, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    return float(np.trapezoid(y, x) / (x[-1] - x[0])) if len(x) > 1 else float(y[0])


def paired_interval(diffs, confidence: float = CONFIDENCE) -> dict:
    """Student-t confidence interval of the mean of paired differences (one per repeat): mean ± t_{(1+c)/2, n-1}
    · sd / √n with the sample sd (ddof 1). Repeats of one strategy pair share their initial labels, so the
    differences, not the two curves, are the independent samples. Fewer than 2 differences: no interval."""
    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    out = {"n": n, "mean": _r(d.mean()) if n else None, "low": None, "high": None, "excludes_zero": None}
    if n >= 2:
        half = stats.t.ppf((1 + confidence) / 2, n - 1) * d.std(ddof=1) / np.sqrt(n)
        low, high = d.mean() - half, d.mean() + half
        out.update(low=_r(low), high=_r(high), excludes_zero=bool(low > 0 or high < 0))
    return {**out, "confidence": confidence}


def summarize(rows, cfg: SimulationConfig, data: Dataset | None = None) -> dict:
    """Per strategy over its complete repeats: learning curves (mean, std), area under them, the Table 2
    metric against the all-data F1 (on the mean curve and per repeat) and paired differences against random."""
    table = {(r["strategy"], int(r["repeat"]), int(r["round"])): r for r in rows}
    target = {
        rep: {m: float(table[(ALL_DATA, rep, 0)][m]) for m in METRICS}
        for rep in range(cfg.n_repeats)
        if (ALL_DATA, rep, 0) in table
    }
    curves, out = {}, {}
    for name in dict.fromkeys(cfg.strategies):  # each strategy once, in the order given
        reps = [rep for rep in target if all((name, rep, r) in table for r in range(cfg.n_rounds + 1))]
        if reps:
            curves[name] = _curves(table, name, reps, cfg.n_rounds, target)
            out[name] = _entry(table, name, cfg.n_rounds, curves[name])
    pool = len(data.pool_texts) if data else int(table[(ALL_DATA, min(target), 0)]["n_labeled"]) if target else None
    if "random" in curves and pool is not None:  # the pool size comes from the data or the all-data run
        for name, curve in curves.items():
            out[name]["vs_random"] = {m: _paired(curve, curves["random"], m, pool) for m in METRICS}
    all_data = {}
    for m in METRICS:
        values = [target[rep][m] for rep in sorted(target)]
        if values:
            all_data[m] = {"mean": _r(np.mean(values)), "std": _r(np.std(values)), "per_repeat": _r(values)}
    return {
        "dataset": data.name if data else Path(cfg.data).name,
        "settings": {
            **cfg.identity(),
            "protocol": cfg.protocol,
            "strategies": list(cfg.strategies),
            "rounds": cfg.n_rounds,
            "repeats": cfg.n_repeats,
            "pool": pool,
            "test": len(data.test_y) if data else None,
            "labels": len(data.labels) if data else None,
        },
        "all_data": all_data,
        "strategies": out,
    }


def _curves(table, name: str, reps: list[int], rounds: int, target: dict) -> dict:
    """One strategy's repeats: fractions, F1 per (repeat, round), and per repeat the fraction reaching each target."""
    frac = [float(table[(name, reps[0], r)]["fraction_labeled"]) for r in range(rounds + 1)]
    scores = {
        m: np.array([[float(table[(name, rep, r)][m]) for r in range(rounds + 1)] for rep in reps]) for m in METRICS
    }
    reach = {
        (key, m): [reach_fraction(frac, row, ratio * target[rep][m]) for row, rep in zip(scores[m], reps)]
        for key, ratio in TARGETS.items()
        for m in METRICS
    }
    goal = {m: np.mean([target[rep][m] for rep in reps]) for m in METRICS}
    return {"reps": reps, "frac": frac, "scores": scores, "reach": reach, "goal": goal}


def _entry(table, name: str, rounds: int, c: dict) -> dict:
    frac, reps = c["frac"], c["reps"]
    entry = {"repeats": len(reps), "fraction_labeled": frac, "curve": {}, "auc": {}, **{k: {} for k in TARGETS}}
    for m in METRICS:
        s = c["scores"][m]
        entry["curve"][m] = {"mean": _r(s.mean(0)), "std": _r(s.std(0))}
        auc = [curve_area(frac, row) for row in s]
        entry["auc"][m] = {"mean": _r(np.mean(auc)), "std": _r(np.std(auc)), "per_repeat": _r(auc)}
        for key, ratio in TARGETS.items():
            per = c["reach"][(key, m)]
            entry[key][m] = {
                "mean_curve": _pct(reach_fraction(frac, s.mean(0), ratio * c["goal"][m])),
                "per_repeat": [_pct(p) for p in per],
                "reached": f"{sum(p is not None for p in per)}/{len(per)}",
            }
    sel = [float(table[(name, rep, r)]["select_seconds"]) for rep in reps for r in range(rounds + 1)]
    trn = [float(table[(name, rep, r)]["train_seconds"]) for rep in reps for r in range(rounds + 1)]
    entry["seconds"] = {
        "select_mean": _r(np.mean(sel)),
        "train_mean": _r(np.mean(trn)),
        "total": _r(sum(sel) + sum(trn)),
    }
    return entry


def _paired(c: dict, base: dict, m: str, pool: int) -> dict:
    """A strategy against random, repeat by repeat on the same initial labels: wins/losses on the area under
    the curve, t-intervals for the area difference and for the labels saved to reach 98 % of the all-data F1
    (random's labels minus the strategy's; repeats where either curve never reached it are left out)."""
    common = [rep for rep in c["reps"] if rep in base["reps"]]
    area = [
        curve_area(c["frac"], c["scores"][m][c["reps"].index(rep)])
        - curve_area(base["frac"], base["scores"][m][base["reps"].index(rep)])
        for rep in common
    ]
    mine, theirs = c["reach"][(SAVED_TARGET, m)], base["reach"][(SAVED_TARGET, m)]
    pairs = [(mine[c["reps"].index(rep)], theirs[base["reps"].index(rep)]) for rep in common]
    saved = [(b - a) * pool for a, b in pairs if a is not None and b is not None]
    d = np.asarray(area)
    return {
        "wins": int((d > 0).sum()),
        "losses": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
        "mean_auc_diff": _r(d.mean()) if len(d) else None,
        "std_auc_diff": _r(d.std()) if len(d) else None,
        "auc_diff": paired_interval(area),
        "labels_saved_98pct": {**paired_interval(saved), "per_repeat": _r(saved, 1)},
    }


def _r(x, digits: int = 6):
    if isinstance(x, (list, tuple, np.ndarray)):
        return [round(float(v), digits) for v in x]
    return round(float(x), digits)


def _pct(fraction: float | None):
    return NOT_REACHED if fraction is None else round(100.0 * fraction, 1)
