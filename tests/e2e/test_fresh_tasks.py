"""Issue 21 item 11 against a real Label Studio 1.23.2, Redis and an rq worker: tasks imported after a round
are scored with the current version by the import's job and take their place in Label Studio's order
within a minute, instead of waiting, unscored and listed last, for the next round."""

from __future__ import annotations

import bisect
import json
import time
from dataclasses import replace

import pytest
import requests

from beal_backend.config import Settings
from beal_backend.store.versions import ModelStore
from beal_backend.wiring import scoring_config
from beal_backend.worker import pool_scores

from .helpers import CONFIG, LABELS, LS, make_project, rows, wait_for_version, wait_until

pytestmark = pytest.mark.e2e


def _listing(ls, project):
    query = json.dumps({"ordering": ["tasks:predictions_score"]})
    params = {"project": project, "fields": "all", "page_size": 1000, "query": query}
    return ls("GET", "/api/tasks", params=params)["tasks"]


def test_tasks_imported_after_a_round_are_scored_and_ordered_within_a_minute(label_studio, backend_factory):
    backend = backend_factory(LEARNER="frozen", PREDICT_PASSES=6)  # MC_PASSES is 8: /predict's T differs
    backend.worker()
    ls = LS(*label_studio)
    data = rows(24, offset=120)
    project, tasks = make_project(ls, data, title="fresh tasks")
    ls("POST", "/api/ml", json={"project": project, "url": backend["url"], "title": "beal"})
    for task, row in zip(tasks[:10], data[:10]):
        ls.annotate(task["id"], row["labels"])
    version = wait_for_version(backend, project)

    new_texts = [r["text"] for r in rows(3, offset=150)]
    ls("POST", f"/api/projects/{project}/import", json=[{"text": t} for t in new_texts])
    imported = time.monotonic()
    new_ids = sorted(t["id"] for t in ls.tasks(project) if t["id"] not in {x["id"] for x in tasks})
    assert len(new_ids) == 3

    def scored():
        listing = _listing(ls, project)
        return listing if all(t["predictions"] for t in listing if t["id"] in new_ids) else None

    listing = wait_until(scored, 60, "predictions for the imported tasks", backend["logs"])
    assert time.monotonic() - imported < 60
    new = {t["id"]: t for t in listing if t["id"] in new_ids}
    for t in new.values():
        assert [p["model_version"] for p in t["predictions"]] == [version]  # one, of the current version

    # hand-check: each score is what /predict answers for the task, and that is the version's EC / H_J
    answer = requests.post(
        backend["url"] + "/predict",
        json={
            "project": str(project),
            "label_config": CONFIG,
            "tasks": [{"id": i, "data": {"text": t}} for i, t in zip(new_ids, new_texts)],
        },
        timeout=60,
    ).json()
    assert answer["model_version"] == version
    settings = Settings.from_env(backend["env"])
    trained = ModelStore(settings.model_dir).load(str(project), version)
    cfg = replace(scoring_config(settings), passes=6)  # /predict's T (PREDICT_PASSES), not the round's MC_PASSES
    ec = pool_scores.score_pool(trained, new_ids, new_texts, cfg)["tasks"]
    h_j = sum(1 / k for k in range(1, len(LABELS) + 1))
    for task_id, predicted in zip(new_ids, answer["results"]):
        pushed = new[task_id]["predictions"][0]["score"]
        assert pushed == pytest.approx(predicted["score"], abs=1e-5)
        assert pushed == pytest.approx(ec[str(task_id)]["ec"] / h_j, abs=1e-5)

    # Label Studio orders them by that score among the round's tasks (not last, as unscored tasks are)
    pool = [t for t in listing if not t["annotations"]]
    listed = [t["predictions_score"] for t in pool]
    assert None not in listed and listed == sorted(listed)
    others = sorted(s for t, s in zip(pool, listed) if t["id"] not in new)
    new_scores = sorted(t["predictions_score"] for t in new.values())
    for t in new.values():  # its place: after every lower-scored task, the round's and the imported ones
        place = bisect.bisect_left(others, t["predictions_score"]) + new_scores.index(t["predictions_score"])
        assert [x["id"] for x in pool].index(t["id"]) == place

    # Label Studio asks /predict for no more: the tasks keep their one prediction
    ls(
        "POST",
        f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
        json={"selectedItems": {"all": False, "included": new_ids}},
    )
    for task_id in new_ids:
        assert [p["model_version"] for p in ls("GET", f"/api/tasks/{task_id}")["predictions"]] == [version]
