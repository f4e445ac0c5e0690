"""The quality gate: a new version becomes current only if its held-out F1 is not worse than the
current version's on the same held-out tasks by more than a margin. The first model always passes."""

from __future__ import annotations


class PromotionError(ValueError):
    """A rollback or promotion that cannot be done (unknown version, other label set)."""


def decide(trained, current: dict | None, margin: float, n_held: int) -> dict:
    """-> {"promoted": bool, "reason": str, "candidate": {...}, "current": {...} | None, "margin": float}."""
    cand = {
        "micro_f1": trained.metrics.get("val_micro_f1"),
        "macro_f1": trained.metrics.get("val_macro_f1"),
        "n_held_out": n_held,
    }
    out = {"candidate": cand, "current": current, "margin": margin}
    if current is None:
        reason = "first model of the project" if n_held else "no held-out slice yet (too few annotations): promoted"
        return {**out, "promoted": True, "reason": reason}
    if current.get("labels_changed"):
        return {**out, "promoted": True, "reason": "the label set changed: the old model cannot serve it"}
    if current.get("saw_the_slice"):
        reason = f"{current['version']} was trained on the held-out tasks (before the slice existed): not comparable"
        return {**out, "promoted": True, "reason": reason}
    drops = {
        k: current[k] - cand[k] for k in ("micro_f1", "macro_f1") if cand[k] is not None and current.get(k) is not None
    }
    worse = {k: d for k, d in drops.items() if d > margin}
    if worse:
        detail = ", ".join(f"{k} {cand[k]:.3f} vs {current[k]:.3f}" for k in worse)
        return {**out, "promoted": False, "reason": f"worse than {current['version']} by more than {margin}: {detail}"}
    detail = ", ".join(f"{k} {cand[k]:.3f} vs {current[k]:.3f}" for k in drops)
    return {**out, "promoted": True, "reason": f"not worse than {current['version']} beyond {margin} ({detail})"}
