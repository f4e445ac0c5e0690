"""Training jobs: one round of active learning for one project (run by ``queues.py``), and rollback.

A round: fetch every annotation from Label Studio -> train from scratch -> score every unlabeled task
with EC -> write the version atomically -> make it serve (``publishing.py``: push, switch Label Studio,
CURRENT, delete superseded predictions, the project lock re-confirmed before each). Label Studio and the
store agree on the serving version after a crash at any step, once the next job has reconciled them.
Only the project id crosses the queue.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import replace

from beal_backend import acquisition
from beal_backend.engine import learners
from beal_backend.engine.training import TrainedModel
from beal_backend.labelstudio.client import LabelStudioError
from beal_backend.labelstudio.label_config import LabelSchema
from beal_backend.store import scores as score_cache
from beal_backend.worker import label_change, pool_scores, progress, promotion
from beal_backend.worker.examples import Examples, left_out, read_project
from beal_backend.worker.locks import Lease
from beal_backend.worker.publishing import publish, reconcile
from beal_backend.worker.runtime import Runtime

log = logging.getLogger(__name__)
EMBEDDINGS = "embeddings"  # <project dir>/embeddings/: the frozen learner's feature cache


def run_round(project: str, rt: Runtime, job_id: str | None = None, retry_in: float | None = None) -> dict:
    """Run one round for ``project``. Returns its summary.
    Raises ``ProjectLocked`` at once if another job holds the project (``attempts`` defers it); ``retry_in``:
    the seconds until the queue retries this job if it fails (shown with the failure)."""
    job_id = job_id or uuid.uuid4().hex[:12]
    report = progress.Reporter(rt.coordinator, project, job_id)  # first written once the project lock is ours
    with rt.coordinator.running(project, timeout=0) as report.lease:
        started = {"error": None, "retry_at": None, "started_at": time.time()}  # a retry's own record
        report(state="started", stage="fetching annotations", **started)
        try:
            result = _round(project, rt, report)
        except Exception as e:
            retry = {"retry_at": time.time() + retry_in} if retry_in is not None else {}
            report(state="failed", error=f"{type(e).__name__}: {e}", **retry)
            log.exception("training round for project %s failed", project)
            raise
        report(state="finished", progress=1.0, **{"stage": "done", **result})
        return result


def _round(project: str, rt: Runtime, report: progress.Reporter) -> dict:
    s, client, lease = rt.settings, rt.client(project), report.lease
    assert lease is not None  # set by run_round's ``running`` block
    schema, ex = read_project(client, project, s.max_text_chars)
    base = _prepare(rt, client, project, schema, ex, lease)
    if len(ex.texts) < s.min_annotations:
        reason = f"{len(ex.texts)} labeled tasks; need {s.min_annotations}" + left_out(ex)
        return {**base, "outcome": "skipped", "reason": reason}
    cfg = replace(rt.train, single_label=schema.single_label)
    learner = learners.build(s.learner, cfg, rt.store.project_dir(project) / EMBEDDINGS)
    split = promotion.held_out(ex, rt.train)
    trained, train_seconds = _train(learner, schema, ex, split, report)
    gate = promotion.judge(rt, project, schema, ex, split.held, trained, s.promotion_margin)
    scores, score_seconds = _score(rt, learner, ex, trained, gate["promoted"], report)
    timing = {"train_seconds": train_seconds, "score_seconds": score_seconds}
    extra = {**_metadata(project, schema, ex, learner.name, trained, scores), **timing, "promotion": gate}
    lease.check(confirm=True)  # a job that lost its lock publishes nothing (another may run now)
    version = rt.store.publish(project, trained, scores, extra)
    summary = {**base, "version": version, "promotion": gate, **timing}
    summary.update(_serve(rt, client, project, version, schema, scores, ex.pool_ids, gate, report))
    _reconcile_after(rt, client, project, lease)
    lease.check(confirm=True)
    rt.store.prune(project, keep=s.keep_versions)
    return summary


def _prepare(rt: Runtime, client, project: str, schema: LabelSchema, ex: Examples, lease: Lease) -> dict:
    """What a round settles before training (the project lock is ours); -> the start of its summary."""
    rt.store.remove_tmp(project)  # a killed job's half-written version: the lock is ours, so no one writes there
    reconcile(rt, client, project, lease)
    if rt.settings.basic_auth_user:  # webhooks added after /setup's own attempt get the webhook token here
        client.authorize_webhooks(int(project), rt.webhook_authorization)
    return {
        **label_change.withdraw_stale(rt, client, project, schema, lease),  # old order stops
        "n_annotations": len(ex.texts),
        "n_pool": len(ex.pool_ids),
        "skipped": dict(ex.skipped),
        "notes": dict(ex.notes),
    }


def _train(
    learner, schema: LabelSchema, ex: Examples, split: promotion.Split, report: progress.Reporter
) -> tuple[TrainedModel, float]:
    """The candidate, and the seconds it took (embedding what the frozen learner's cache lacks included)."""
    t0 = time.perf_counter()
    if learner.name == "frozen":  # embeds only texts the cache lacks; drops rows of texts no longer in the project
        report(stage="embedding", progress=0.0)
        learner.features(ex.texts + ex.pool_texts, keep=ex.texts + ex.pool_texts)
    report(stage="training", progress=0.0)
    trained = learner.fit(
        split.texts,
        split.label_sets,
        list(schema.labels),
        on_progress=lambda p: report.throttled(
            stage="training", progress=0.8 * p.step / p.steps, loss=round(p.loss, 4)
        ),
        val_rows=split.val_rows,
    )
    return trained, round(time.perf_counter() - t0, 3)


def _score(
    rt: Runtime, learner, ex: Examples, trained: TrainedModel, promoted: bool, report: progress.Reporter
) -> tuple[dict, float]:
    """The pool's ``scores.json`` content and the seconds it took; a rejected candidate never serves, so its pool
    is not scored."""
    report(stage="scoring", progress=0.8)
    t0 = time.perf_counter()
    strategy = rt.settings.strategy
    if not promoted:
        return pool_scores.empty_scores(rt.scoring, trained, strategy), round(time.perf_counter() - t0, 3)
    centers = None
    if acquisition.get_strategy(strategy).centers:
        centers = learners.hidden_of(trained, ex.texts, rt.scoring, learner.features(ex.texts))
    scores = pool_scores.score_pool(
        trained,
        ex.pool_ids,
        ex.pool_texts,
        rt.scoring,
        lambda done, n: report.throttled(stage="scoring", progress=0.8 + 0.15 * done / n),
        features=learner.features(ex.pool_texts),
        strategy=strategy,
        labeled_hidden=centers,
    )
    return scores, round(time.perf_counter() - t0, 3)


def _metadata(project: str, schema: LabelSchema, ex: Examples, learner: str, trained: TrainedModel, scores) -> dict:
    """What the version records of its round (``metadata.json``, besides timings and the gate's verdict)."""
    return {
        "project": project,
        "label_schema": {
            "from_name": schema.from_name,
            "to_name": schema.to_name,
            "value_key": schema.value_key,
            "object_tag": schema.object_tag,
            "single_label": schema.single_label,
        },
        "skipped": dict(ex.skipped),
        "notes": dict(ex.notes),
        "n_annotations": len(ex.texts),
        "trained_on": ex.fingerprint(),  # what a restarted embedded service compares with Label Studio (recovery)
        "n_pool": len(scores["tasks"]),
        "learner": learner,
        "label_counts": dict(Counter(name for names in ex.label_sets for name in names)),
        "mean_score": pool_scores.mean_ec(scores, len(trained.labels), trained.config.single_label),
    }


def _serve(
    rt: Runtime,
    client,
    project: str,
    version: str,
    schema,
    scores: dict,
    pool_ids,
    gate: dict,
    report: progress.Reporter,
) -> dict:
    """A promoted candidate serves (``publishing``); a rejected one is only stored (``/versions`` lists it)."""
    if not gate["promoted"]:
        log.warning("project %s: candidate %s rejected: %s", project, version, gate["reason"])
        return {"outcome": "rejected", "pushed": 0}
    report(stage="pushing predictions", progress=0.95, version=version)
    return {**publish(rt, client, project, version, schema, scores, pool_ids, report.lease), "outcome": "trained"}


def _reconcile_after(rt: Runtime, client, project: str, lease) -> None:
    """A job that lost its lock to this one may have switched Label Studio meanwhile: agree with it now.
    Best effort: this round's own outcome stands, and the next job tries again."""
    try:
        reconcile(rt, client, project, lease)
    except LabelStudioError as e:
        log.warning("project %s: interrupted switch not reconciled (%s); the next job retries", project, e)


def rollback(project: str, version: str, rt: Runtime) -> dict:
    """Make an earlier version current again: re-push its scores for the tasks still unlabeled (scoring
    those it never saw) and switch Label Studio's ``model_version``. Waits briefly for a running job.
    A rejected candidate is served too, as asked, with a ``warning`` in the answer."""
    meta = rt.store.metadata(project, version)
    # not a round: the pending job and the counter stay; the lease guards every write as in a round
    with rt.coordinator.running(project, timeout=10, starts_round=False) as lease:
        client = rt.client(project)
        schema, ex = read_project(client, project, rt.settings.max_text_chars)
        reconcile(rt, client, project, lease)
        if not schema.serves(meta["labels"], meta.get("hparams", {}).get("single_label", False)):
            raise promotion.PromotionError(
                f"version {version} was trained on another label set (or choice mode) than the project's config"
            )
        scores = rt.store.scores(project, version)
        # a stored score serves only the text it was computed on (the task's text may have been edited since)
        missing = [i for i, t in enumerate(ex.pool_ids) if not score_cache.cached(scores["tasks"], t, ex.pool_texts[i])]
        if missing:
            fresh = pool_scores.score_pool(
                rt.store.load(project, version),
                [ex.pool_ids[i] for i in missing],
                [ex.pool_texts[i] for i in missing],
                rt.scoring,
            )
            scores = {**scores, "tasks": {**scores["tasks"], **fresh["tasks"]}}
        result = publish(rt, client, project, version, schema, scores, ex.pool_ids, lease)
    gate = meta.get("promotion") or {}
    if not gate.get("promoted", True):
        result["warning"] = f"{version} was rejected by the quality gate ({gate.get('reason')}); it serves now anyway"
    progress.Reporter(rt.coordinator, project, f"rollback-{uuid.uuid4().hex[:8]}")(
        state="finished", stage=f"rolled back to {version}", version=version, **result
    )
    return {"version": version, "rescored": len(missing), **result}
