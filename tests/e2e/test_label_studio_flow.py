"""End to end against a real Label Studio 1.23.2, real Redis and a real `rq worker`:
connect the backend, annotate, train from webhooks and from "Start Training", and check what Label
Studio stores and how it orders its task list."""

from __future__ import annotations

import json

import pytest
import requests

from beal_backend.config import Settings
from beal_backend.engine import learners
from beal_backend.labelstudio.client import LabelStudioClient
from beal_backend.labelstudio.label_config import parse_label_config
from beal_backend.store.versions import ModelStore
from beal_backend.wiring import scoring_config, train_config
from beal_backend.worker import examples, pool_scores
from beal_backend.worker import rounds as jobs

from .helpers import CONFIG, LS, listed_predictions, make_project, rows, wait_for_version, wait_until

pytestmark = pytest.mark.e2e


def _check_round(ls, backend, project, version, annotated_ids):
    """Every unlabeled task: one prediction of `version` whose score is the engine's EC / H_J; LS orders
    its list by that score ascending (lowest EC first)."""
    assert ls("GET", f"/api/projects/{project}")["model_version"] == version
    settings = Settings.from_env(backend["env"])
    client = LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key)
    schema = parse_label_config(CONFIG)
    ex = examples.collect_examples(client.tasks(project), schema, settings.max_text_chars)
    assert set(ex.pool_ids).isdisjoint(annotated_ids) and len(ex.pool_ids) > 0
    store = ModelStore(settings.model_dir)
    trained = store.load(str(project), version)
    # a frozen round scored the cached features: read the same ones (the cache must hold every pool text)
    cached = learners.build(settings.learner, train_config(settings), store.project_dir(str(project)) / jobs.EMBEDDINGS)
    features = cached.features(ex.pool_texts)
    assert getattr(cached, "encoder_calls", 0) == 0
    expected = pool_scores.score_pool(trained, ex.pool_ids, ex.pool_texts, scoring_config(settings), features=features)[
        "tasks"
    ]
    assert store.metadata(str(project), version)["learner"] == settings.learner

    listing = ls(
        "GET",
        "/api/tasks",
        params={
            "project": project,
            "fields": "all",
            "page_size": 1000,
            "query": json.dumps({"ordering": ["tasks:predictions_score"]}),
        },
    )["tasks"]
    pool = [t for t in listing if t["id"] in set(ex.pool_ids)]
    assert len(pool) == len(ex.pool_ids)
    for t in pool:
        preds = t["predictions"]
        assert [p["model_version"] for p in preds] == [version], (
            f"task {t['id']}: {[p['model_version'] for p in preds]}"
        )
        assert preds[0]["score"] == pytest.approx(expected[str(t["id"])]["score"], abs=1e-6)
        assert 0.0 <= preds[0]["score"] <= 1.0
    listed = [t["predictions_score"] for t in pool]
    assert listed == sorted(listed)  # Label Studio's own ascending order = lowest EC first
    assert pool[0]["predictions_score"] == pytest.approx(min(v["score"] for v in expected.values()), abs=1e-6)
    versions = ls("GET", f"/api/projects/{project}/model-versions/")
    assert [v for v in versions if v.startswith("beal-")] == [version]


@pytest.mark.parametrize("learner", ["finetune", "frozen"])
def test_full_active_learning_loop(label_studio, backend_factory, learner):
    backend = backend_factory(LEARNER=learner)
    backend.worker()
    ls = LS(*label_studio)
    data = rows(40)
    project, tasks = make_project(ls, data)

    ml = ls("POST", "/api/ml", json={"project": project, "url": backend["url"], "title": "beal"})
    assert ml["state"] == "CO"

    # 10 annotations (TRAIN_EVERY=10): the 10th webhook enqueues round 1
    annotated = []
    for task, row in zip(tasks[:10], data[:10]):
        ls.annotate(task["id"], row["labels"])
        annotated.append(task["id"])
    v1 = wait_for_version(backend, project)
    _check_round(ls, backend, project, v1, annotated)

    # two more annotations, then the "Start Training" button: round 2 replaces round 1's predictions
    for task, row in zip(tasks[10:12], data[10:12]):
        ls.annotate(task["id"], row["labels"])
        annotated.append(task["id"])
    ls("POST", f"/api/ml/{ml['id']}/train")
    v2 = wait_for_version(backend, project, not_version=v1)
    assert v2 > v1  # versions sort by creation time
    _check_round(ls, backend, project, v2, annotated)
    meta = ModelStore(backend["env"]["MODEL_DIR"]).metadata(str(project), v2)
    assert meta["n_annotations"] == 12

    status = requests.get(backend["url"] + "/jobs", timeout=5).json()[str(project)]
    assert status["last_job"]["version"] == v1 and status["current_job"]["pushed"] == 28

    # a task imported after the round: the import's job scores it with the current version (either learner;
    # test_fresh_tasks.py checks the score and the order); Label Studio then asks /predict for nothing more
    ls("POST", f"/api/projects/{project}/import", json=[{"text": "thank you so much, this made my day"}])
    new = max(t["id"] for t in ls("GET", "/api/tasks", params={"project": project, "page_size": 1000})["tasks"])
    preds = wait_until(lambda: listed_predictions(ls, project, new), 120, "its prediction", backend["logs"])
    ls(
        "POST",
        f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
        json={"selectedItems": {"all": False, "included": [new]}},
    )
    assert [p["model_version"] for p in ls("GET", f"/api/tasks/{new}")["predictions"]] == [v2]
    assert 0.0 <= preds[0]["score"] <= 1.0
    if (
        learner == "frozen"
    ):  # the import's TASKS_CREATED webhook made a worker embed the new task ahead of the next round
        settings = Settings.from_env(backend["env"])
        cache = learners.build(
            "frozen", train_config(settings), ModelStore(settings.model_dir).project_dir(str(project)) / jobs.EMBEDDINGS
        ).cache
        wait_until(lambda: cache.size() == len(data) + 1, 120, "the imported task's embedding", backend["logs"])

    # the Label Studio token never reaches a log
    for log in backend["logs"].glob("*.log"):
        assert label_studio[1] not in log.read_text(), log.name


def test_embedded_mode_trains_in_process(label_studio, backend_factory):
    """No REDIS_URL (the default a new user gets): the same round runs in a thread of the API process."""
    ls = LS(*label_studio)
    b = backend_factory(REDIS_URL="", TRAIN_EVERY=5, EPOCHS=1, MC_PASSES=4)
    assert requests.get(b.url + "/health", timeout=5).json()["queue"] == "embedded"
    data = rows(14, offset=100)
    project, tasks = make_project(ls, data, title="embedded")
    ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal"})
    for task, row in zip(tasks[:5], data[:5]):
        ls.annotate(task["id"], row["labels"])
    version = wait_for_version(b, project)
    listing = ls("GET", "/api/tasks", params={"project": project, "fields": "all", "page_size": 1000})["tasks"]
    assert {t["id"]: [p["model_version"] for p in t["predictions"]] for t in listing if not t["annotations"]} == {
        t["id"]: [version] for t in tasks[5:]
    }
    assert ls("GET", f"/api/projects/{project}")["model_version"] == version


def test_the_end_of_a_burst_is_trained_once_annotation_goes_quiet(label_studio, backend_factory):
    """TRAIN_EVERY=100 is never reached and the service's TRAIN_IDLE_SECONDS is 0 (off): the project's own
    {"train_idle_seconds": 3}, set in Label Studio's model connection (extra_params, sent with /setup), makes
    the idle check that rq's scheduler in the `beal worker` process starts train the 6 annotations."""
    ls = LS(*label_studio)
    b = backend_factory(LEARNER="frozen", TRAIN_EVERY=100)
    assert b["env"]["TRAIN_IDLE_SECONDS"] == "0"
    b.worker()
    data = rows(16, offset=60)
    project, tasks = make_project(ls, data, title="idle")
    extra = {"train_idle_seconds": 3}
    ml = ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal", "extra_params": extra})
    assert ml["extra_params"] == extra
    for task, row in zip(tasks[:6], data[:6]):
        ls.annotate(task["id"], row["labels"])
    version = wait_for_version(b, project)
    assert ModelStore(b["env"]["MODEL_DIR"]).metadata(str(project), version)["n_annotations"] == 6
    assert ls("GET", f"/api/projects/{project}")["model_version"] == version
