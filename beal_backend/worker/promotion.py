"""The quality gate: a new version becomes current unless it is worse than the current version beyond the
noise, judged on the gate half of the stable held-out slice (texts neither version trained on, and that the
candidate's early stopping never saw: ``engine.holdout``). The first model always passes.

Worse beyond the noise: for micro- or macro-F1, the upper bound of a paired bootstrap of (candidate - current)
over the gate texts lies below -``PROMOTION_MARGIN``. A small slice spreads the bootstrap, so a candidate is
then rejected only when it is clearly worse; a negative margin asks the candidate to be plausibly better.
"""

from __future__ import annotations

from typing import NamedTuple

from beal_backend.engine import evaluation, holdout, training
from beal_backend.engine.holdout import HeldOut
from beal_backend.engine.training import TrainConfig
from beal_backend.worker.examples import Examples
from beal_backend.worker.runtime import Runtime

METRICS = ("micro_f1", "macro_f1")


class PromotionError(ValueError):
    """A rollback or promotion that cannot be done (unknown version, other label set)."""


class Split(NamedTuple):
    held: HeldOut  # the held-out rows of ``Examples``: early-stopping half and gate half
    texts: list[str]  # what the learner is given: every labeled text but the gate half
    label_sets: list[list[str]]
    val_rows: list[int]  # the early-stopping half's positions in ``texts`` (trained on unless a learner early-stops)


def held_out(ex: Examples, cfg: TrainConfig) -> Split:
    """The project's stable held-out slice of ``ex`` (``engine.holdout``) and the training set it leaves: the
    gate half never reaches the learner, so ``judge`` compares versions on texts neither trained on."""
    held = holdout.held_out_split(ex.task_ids, cfg.val_fraction, cfg.min_val)
    rows, stop = held.training_rows(len(ex.texts))
    return Split(held, [ex.texts[i] for i in rows], [ex.label_sets[i] for i in rows], stop)


def judge(rt: Runtime, project: str, schema, ex, held: HeldOut, trained, margin: float) -> dict:
    """Score ``trained`` and the current version on the gate half of ``ex`` (``worker.examples.Examples``),
    then ``decide``."""
    cand: dict = {"micro_f1": None, "macro_f1": None, "n_held_out": len(held.stop) + len(held.gate)}
    cand["n_gate"] = len(held.gate)
    if not held.gate:
        version = rt.store.current(project)
        return decide(cand, None if version is None else {"version": version}, margin)
    texts, label_sets = [ex.texts[i] for i in held.gate], [ex.label_sets[i] for i in held.gate]
    y = evaluation.multi_hot(label_sets, trained.labels)
    ours = training.predictions(trained, texts)
    cand.update(micro_f1=evaluation.micro_f1(y, ours), macro_f1=evaluation.macro_f1(y, ours))
    current = current_version(rt, project, schema)
    if current is None or "model" not in current:
        return decide(cand, current, margin)
    model = current.pop("model")
    theirs = _by_name(training.predictions(model, texts), model.labels, trained.labels)
    current["bootstrap"] = holdout.paired_bootstrap(y, ours, theirs, seed=rt.train.seed)
    current.update({k: current["bootstrap"][k]["current"] for k in METRICS})
    return decide(cand, current, margin)


def current_version(rt: Runtime, project: str, schema) -> dict | None:
    """The current version to compare with: None (none yet), marked not comparable (another label set; or
    trained before the project had a slice, so on those very tasks: its F1 there made every later candidate
    look worse), else {"version", "model"}."""
    current = rt.store.current(project)
    if current is None:
        return None
    meta = rt.store.metadata(project, current)
    if not schema.serves(meta["labels"], meta.get("hparams", {}).get("single_label", False)):
        return {"version": current, "labels_changed": True}
    if not meta.get("promotion", {}).get("candidate", {}).get("n_held_out"):
        return {"version": current, "saw_the_slice": True}
    return {"version": current, "model": rt.store.load(project, current, rt.train.device)}


def decide(cand: dict, current: dict | None, margin: float) -> dict:
    """-> {"promoted": bool, "reason": str, "candidate": ``cand``, "current": ``current``, "margin": margin}.
    ``current["bootstrap"]``: ``holdout.paired_bootstrap`` of candidate vs current on the gate half."""
    out = {"candidate": cand, "current": current, "margin": margin}
    if current is None:
        return {**out, "promoted": True, "reason": "first model of the project"}
    if not cand.get("n_gate"):
        reason = f"no gate slice yet (too few held-out annotations): not compared with {current['version']}"
        return {**out, "promoted": True, "reason": reason}
    if current.get("labels_changed"):
        return {**out, "promoted": True, "reason": "the label set changed: the old model cannot serve it"}
    if current.get("saw_the_slice"):
        reason = f"{current['version']} was trained on the held-out tasks (before the slice existed): not comparable"
        return {**out, "promoted": True, "reason": reason}
    boot = current["bootstrap"]
    detail = {
        k: f"{k} {boot[k]['candidate']:.3f} vs {boot[k]['current']:.3f} (difference at most {boot[k]['upper']:+.3f})"
        for k in METRICS
    }
    worse = [k for k in METRICS if boot[k]["upper"] < -margin]
    n = cand["n_gate"]
    if worse:
        text = ", ".join(detail[k] for k in worse)
        reason = f"worse than {current['version']} beyond the noise of {n} gate texts and margin {margin}: {text}"
        return {**out, "promoted": False, "reason": reason}
    text = ", ".join(detail.values())
    reason = f"not worse than {current['version']} beyond the noise of {n} gate texts and margin {margin} ({text})"
    return {**out, "promoted": True, "reason": reason}


def _by_name(pred, labels: list[str], order: list[str]):
    """0/1 predictions [N, J] over ``labels`` re-ordered to ``order`` (the same label set, any order)."""
    return pred[:, [list(labels).index(name) for name in order]]
