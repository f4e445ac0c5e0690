"""Across simulation runs (one ``summary.json`` per dataset): the lead table of labels saved, and the choice of
an EC-based variant by leave-one-dataset-out with the rule that decides whether it may become the default."""

from __future__ import annotations

from beal_backend.simulation.analysis import SAVED_TARGET, paired_interval

METRICS = ("micro_f1", "macro_f1")


def paired_auc(summary: dict, a: str, b: str, metric: str) -> dict:
    """Paired t-interval of strategy ``a``'s area minus ``b``'s, one difference per repeat (shared initial labels)."""
    x = summary["strategies"][a]["auc"][metric]["per_repeat"]
    y = summary["strategies"][b]["auc"][metric]["per_repeat"]
    n = min(len(x), len(y))
    return paired_interval([x[i] - y[i] for i in range(n)])


def beats_random(summary: dict, strategy: str) -> bool:
    """Above random in micro- and macro-F1 area, each interval above zero."""
    return all((paired_auc(summary, strategy, "random", m)["low"] or 0) > 0 for m in METRICS)


def not_worse_than_beal(summary: dict, strategy: str) -> bool:
    """No metric where the area is below BEAL's beyond the noise (the paired interval lies below zero)."""
    return all((paired_auc(summary, strategy, "beal", m)["high"] or 0) >= 0 for m in METRICS)


def _gain(summary: dict, strategy: str) -> float:
    """Mean area gain over random, averaged over both metrics: what a variant is chosen by."""
    return sum(paired_auc(summary, strategy, "random", m)["mean"] for m in METRICS) / len(METRICS)


def leave_one_dataset_out(summaries: dict[str, dict], candidates: list[str]) -> dict[str, dict]:
    """For each dataset: the candidate with the best mean gain over random on the *other* datasets, and how it
    does on the held-out one (against random and against BEAL)."""
    out = {}
    for held in summaries:
        others = [s for name, s in summaries.items() if name != held]
        chosen = max(candidates, key=lambda c: sum(_gain(s, c) for s in others) / len(others))
        s = summaries[held]
        out[held] = {
            "chosen": chosen,
            "vs_random": {m: paired_auc(s, chosen, "random", m) for m in METRICS},
            "vs_beal": {m: paired_auc(s, chosen, "beal", m) for m in METRICS} if chosen != "beal" else None,
            "beats_random": beats_random(s, chosen),
            "not_worse_than_beal": not_worse_than_beal(s, chosen),
        }
    return out


def may_be_default(summaries: dict[str, dict], strategy: str) -> bool:
    """Issue #13's rule: beats random on every dataset in both metrics and is never worse than BEAL beyond noise."""
    return all(beats_random(s, strategy) and not_worse_than_beal(s, strategy) for s in summaries.values())


def not_worse_than(summary: dict, strategy: str, base: str) -> bool:
    """No metric where the area is below ``base``'s beyond the noise (the paired interval lies below zero)."""
    return all((paired_auc(summary, strategy, base, m)["high"] or 0) >= 0 for m in METRICS)


def may_be_service_default(summaries: dict[str, dict], strategy: str) -> bool:
    """Issue 20's rule (service-regime runs): on every dataset not worse than random nor than BEAL beyond the
    noise in micro- and macro-F1 area, and better than BEAL beyond the noise somewhere (a dataset and a metric)."""
    never_worse = all(not_worse_than(s, strategy, b) for s in summaries.values() for b in ("random", "beal"))
    better = any((paired_auc(s, strategy, "beal", m)["low"] or 0) > 0 for s in summaries.values() for m in METRICS)
    return never_worse and better


def labels_saved(summary: dict, strategy: str, metric: str, base: str = "random") -> dict:
    """Labels ``strategy`` saves against ``base`` to reach 98 % of the all-data F1 (paired t-interval over the
    repeats where both curves reached it). Against another base than random, from the per-repeat % of the pool
    (rounded to 0.1 %: within pool / 1000 labels of the exact count)."""
    if base == "random":
        return summary["strategies"][strategy]["vs_random"][metric]["labels_saved_98pct"]
    mine, theirs = (summary["strategies"][n][SAVED_TARGET][metric]["per_repeat"] for n in (strategy, base))
    both = [(a, b) for a, b in zip(mine, theirs) if not isinstance(a, str) and not isinstance(b, str)]
    return paired_interval([(b - a) / 100.0 * summary["settings"]["pool"] for a, b in both])
