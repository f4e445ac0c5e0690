"""The import job: when Label Studio imports tasks (``TASKS_CREATED``), put their texts into the frozen
learner's feature cache ahead of the next round, and score them with the current version (``fresh_tasks``).
Coalesced like training (one running, one waiting)."""

from __future__ import annotations

import logging
import time

from beal_backend.engine import learners
from beal_backend.labelstudio.label_config import parse_label_config
from beal_backend.worker import fresh_tasks
from beal_backend.worker.examples import read_project
from beal_backend.worker.rounds import EMBEDDINGS
from beal_backend.worker.runtime import Runtime

log = logging.getLogger(__name__)


def embed_key(project: str) -> str:
    """The coordinator name of a project's embedding jobs: one running and one waiting, like training."""
    return f"embed-{project}"


def embed_tasks(project: str, rt: Runtime, job_id: str | None = None) -> dict:
    """Low-priority job run when Label Studio imports tasks (``TASKS_CREATED``): put every task text the
    frozen learner's cache lacks into it, so the next round only trains and scores (best effort: a round
    embeds whatever is still missing); then score the tasks the current version has no prediction for
    (``fresh_tasks``), with either learner, so they are served now instead of after the next round."""
    s = rt.settings
    learner = learners.build(s.learner, rt.train, rt.store.project_dir(project) / EMBEDDINGS)
    with rt.coordinator.running(embed_key(project), timeout=s.job_timeout):  # frees the waiting slot first
        client = rt.client(project)
        if learner.name == "frozen":
            schema, ex = read_project(client, project, s.max_text_chars, annotations=False)
            result = _embed(learner, ex.texts + ex.pool_texts)
        else:
            schema, result = parse_label_config(client.label_config(int(project))), {"outcome": "scored"}
        result["new_tasks"] = fresh_tasks.score_new_tasks(project, rt, client, schema, learner)
    log.info("project %s: embedding job %s: %s", project, job_id, result)
    return result


def _embed(learner, texts: list[str]) -> dict:
    """Put ``texts`` into the frozen learner's cache; what the job record shows."""
    t0 = time.perf_counter()
    learner.features(texts)
    return {
        "outcome": "embedded",
        "n_texts": len(texts),
        "embedded": learner.encoder_calls,
        "seconds": round(time.perf_counter() - t0, 3),
    }
