"""Against a real Label Studio 1.23.2: a score /predict cached for made-up text under a task id that does not
exist yet is not what Label Studio stores once the real task with that id is imported."""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests

from beal_backend.config import Settings
from beal_backend.engine import training
from beal_backend.store.versions import ModelStore
from beal_backend.wiring import scoring_config
from beal_backend.worker import pool_scores

from .helpers import CONFIG, LABELS, LS, make_project, rows

pytestmark = pytest.mark.e2e


def test_a_score_pre_seeded_for_a_future_task_id_is_not_stored_for_the_real_task(label_studio, backend_factory):
    ls = LS(*label_studio)
    data = rows(8, offset=140)
    project, tasks = make_project(ls, data[:2], title="pre-seed")
    b = backend_factory(REDIS_URL="")  # /predict needs no queue
    settings = Settings.from_env(b["env"])
    store = ModelStore(settings.model_dir)
    trained = training.train(
        [r["text"] for r in data[2:]],
        [r["labels"] for r in data[2:]],
        LABELS,
        training.TrainConfig(epochs=1, min_steps=0, min_val=100, seed=1),
    )
    pool = [t["id"] for t in tasks]
    scores = pool_scores.score_pool(trained, pool, [r["text"] for r in data[:2]], scoring_config(settings))
    version = store.publish(str(project), trained, scores, {"n_annotations": 6})
    store.set_current(str(project), version)
    ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal"})

    # the next task id (Label Studio's ids only grow), asked for before that task exists, with made-up text
    future, fake, real = max(pool) + 1, "I hate this, worst thing ever", "thank you so much, this made my day"
    seeded = requests.post(
        f"{b.url}/predict",
        json={"tasks": [{"id": future, "data": {"text": fake}}], "project": f"{project}.1", "label_config": CONFIG},
        timeout=60,
    ).json()["results"][0]["score"]

    ls("POST", f"/api/projects/{project}/import", json=[{"text": real}])
    assert max(t["id"] for t in ls.tasks(project)) == future
    ls(
        "POST",
        f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
        json={"selectedItems": {"all": False, "included": [future]}},
    )
    preds = ls("GET", f"/api/tasks/{future}")["predictions"]
    loaded = store.load(str(project), version)
    cfg = replace(scoring_config(settings), passes=settings.predict_passes)  # what /predict scores with
    expected = pool_scores.score_pool(loaded, [future], [real], cfg)["tasks"][str(future)]["score"]
    assert abs(expected - seeded) > 1e-3  # the two texts score apart: a seeded score would show
    assert [p["model_version"] for p in preds] == [version]
    assert preds[0]["score"] == pytest.approx(expected, abs=1e-6)
