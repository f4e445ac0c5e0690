"""Tasks imported after a round get their score at once, not at the next round.

Label Studio lists tasks without a score of the project's version last in ascending order, so with
continuous imports the freshest tasks would never be served. The import's job (``TASKS_CREATED``, see
``embedding.py``) therefore scores every unlabeled task that has no prediction of the current version, the
way ``/predict`` scores a task its round did not (EC / H_J with ``PREDICT_PASSES`` passes, same seed), and
pushes the predictions under that version. It never races a round: the push happens under the project
lock, only while the version it scored with is still current (else it scores again with the new one).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from beal_backend.engine import learners
from beal_backend.labelstudio.label_config import LabelSchema
from beal_backend.labelstudio.predictions import from_scores
from beal_backend.worker import pool_scores
from beal_backend.worker.examples import collect_examples
from beal_backend.worker.runtime import Runtime

log = logging.getLogger(__name__)
# How long (s) the push waits for the project lock. A round or rollback holding it longer makes the job fail
# with ProjectLocked, and rq retries it later (``queues.EMBED_RETRY``): it never waits out a whole round.
LOCK_WAIT = 10
ATTEMPTS = 2  # a round that published while we scored: score once more with its version


def score_new_tasks(project: str, rt: Runtime, client, schema: LabelSchema, learner=None) -> dict:
    """Score and push the current version's missing predictions; ``learner``: the frozen learner whose
    feature cache holds the texts (None: the model embeds them itself, as ``/predict`` does)."""
    for _ in range(ATTEMPTS):
        version = rt.store.current(project)
        if version is None:
            return {"scored": 0, "reason": "no model yet"}
        meta = rt.store.metadata(project, version)
        if not schema.serves(meta["labels"], meta.get("hparams", {}).get("single_label", False)):
            return {"scored": 0, "reason": f"{version} was trained on another label set; the next round retrains"}
        ex = collect_examples(client.unscored_tasks(int(project), version), schema, rt.settings.max_text_chars)
        if not ex.pool_ids:
            return {"scored": 0, "version": version}
        t0 = time.perf_counter()
        trained = rt.store.load(project, version)
        scores = pool_scores.score_pool(
            trained,
            ex.pool_ids,
            ex.pool_texts,
            predict_scoring(rt),
            features=_cached_features(learner, trained, ex.pool_texts),
        )
        pushed = _push_if_current(rt, client, project, version, schema, scores)
        if pushed is not None:
            seconds = round(time.perf_counter() - t0, 3)
            log.info("project %s: scored %d new tasks with %s in %s s", project, len(ex.pool_ids), version, seconds)
            return {"scored": len(ex.pool_ids), "pushed": pushed, "version": version, "score_seconds": seconds}
        log.info("project %s: %s was replaced while new tasks were scored; scoring them again", project, version)
    return {"scored": 0, "reason": "the current version kept changing; the next import or round scores them"}


def predict_scoring(rt: Runtime):
    """What ``/predict`` scores an uncached task with: the round's scoring config with ``PREDICT_PASSES``."""
    return replace(rt.scoring, passes=rt.settings.predict_passes)


def _cached_features(learner, trained, texts: list[str]):
    """The feature cache's rows when it was built by the encoder the version was trained on (the same
    features ``/predict`` computes), else None: the version's own encoder embeds the texts."""
    if learner is None or learner.name != "frozen" or not learners.is_frozen(trained):
        return None
    mine, theirs = learner.cfg, trained.config
    if (mine.encoder, mine.pooling, mine.max_wordpieces) != (theirs.encoder, theirs.pooling, theirs.max_wordpieces):
        return None
    return learner.features(texts)


def _push_if_current(rt: Runtime, client, project: str, version: str, schema: LabelSchema, scores: dict) -> int | None:
    """Push under the project lock while ``version`` is still current; None when a round replaced it."""
    predictions = from_scores(schema, scores["tasks"], scores["tasks"])
    with rt.coordinator.running(project, timeout=LOCK_WAIT, starts_round=False) as lease:
        if rt.store.current(project) != version:
            return None
        lease.check(confirm=True)  # the lock is ours: no round publishes while we push
        return client.push_predictions(int(project), version, predictions)
