"""Each endpoint through Flask's test client: the protocol shapes, bad input, auth, metrics."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from beal_backend import acquisition
from beal_backend.service import statuspage

from .conftest import CONFIG, POOL

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "label_studio_payloads"


def payload(name):
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def task(tid, text):
    return {"id": tid, "data": {"text": text}, "annotations": [], "predictions": []}


@pytest.mark.timing
def test_health_is_open_and_fast(app_factory):
    """Open under basic auth, and well inside Label Studio's 1-s health timeout (median of 20 calls < 0.1 s)."""
    app, _ = app_factory(basic_auth_user="u", basic_auth_pass="p")
    client = app.test_client()
    body = client.get("/health").get_json()
    assert body["status"] == "UP" and body["model_class"] == "BealModel" and body["queue"] == "embedded"
    took = []
    for _ in range(20):
        t0 = time.perf_counter()
        assert client.get("/health").status_code == 200
        took.append(time.perf_counter() - t0)
    assert sorted(took)[10] < 0.1, took


def test_setup_with_label_studio_payload_remembers_project(app_factory, ls_stub):
    app, rt = app_factory()
    body = {**payload("setup_request"), **ls_stub.link}  # Label Studio's call, naming a Label Studio that answers
    resp = app.test_client().post("/setup", json=body)
    assert resp.status_code == 200 and resp.get_json() == {"model_version": "beal-untrained"}
    info = rt.store.read_project("1")  # "1.1795564498" -> project 1
    assert info["label_config"] == body["schema"] and info["hostname"] == body["hostname"]


def test_setup_reports_the_current_version(app_factory, published):
    app, _ = app_factory()
    resp = app.test_client().post("/setup", json={"project": "7.123", "schema": CONFIG})
    assert resp.get_json() == {"model_version": published[0]}


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"schema": CONFIG}, "missing field 'project'"),
        ({"project": "1.2"}, "missing field 'schema'"),
        ({"project": "1.2", "schema": "<View><Text name='t' value='$t'/></View>"}, "<Choices>"),
        ({"project": "1.2", "schema": "<View"}, "does not parse"),
        ({"project": "../../etc", "schema": CONFIG}, "invalid project"),
    ],
)
def test_setup_bad_input_is_a_clear_400(app_factory, body, fragment, ls_stub):
    app, _ = app_factory()
    resp = app.test_client().post("/setup", json={**body, **ls_stub.link})
    assert resp.status_code == 400 and fragment in resp.get_json()["error"]


def test_setup_accepts_choices_of_any_name(app_factory, ls_stub):
    app, rt = app_factory()
    renamed = CONFIG.replace('name="label"', 'name="a"')
    resp = app.test_client().post("/setup", json={"project": "1.2", "schema": renamed, **ls_stub.link})
    assert resp.status_code == 200 and rt.store.read_project("1")["label_config"] == renamed


def test_non_json_and_non_object_bodies_are_400(app_factory):
    c = app_factory()[0].test_client()
    for path in ("/setup", "/predict", "/webhook"):
        r = c.post(path, data=b"\x00\xffnot json", content_type="application/json")
        assert r.status_code == 400 and "JSON object" in r.get_json()["error"]
        r = c.post(path, json=[1, 2])
        assert r.status_code == 400


def test_oversized_body_is_413_json(app_factory):
    c = app_factory(max_request_bytes=1000)[0].test_client()
    r = c.post("/predict", json={"tasks": [task(1, "x" * 5000)], "project": "7.1"})
    assert r.status_code == 413 and "error" in r.get_json()


def test_predict_before_any_model_gives_empty_predictions(app_factory, ls_stub):
    app, _ = app_factory()
    c = app.test_client()
    c.post("/setup", json={**payload("setup_request"), **ls_stub.link})
    r = c.post("/predict", json=payload("predict_request"))
    assert r.status_code == 200
    assert r.get_json()["results"] == [[], []]


def test_predict_uses_cached_scores_and_scores_new_tasks(app_factory, published, tiny_trained, settings):
    version, scores = published
    app, _rt = app_factory()
    tasks = [task(102, POOL[102]), task(103, POOL[103]), task(101, POOL[101])]
    r = app.test_client().post("/predict", json={"tasks": tasks, "project": "7.99", "label_config": CONFIG})
    assert r.status_code == 200
    results = r.get_json()["results"]
    assert [x["model_version"] for x in results] == [version] * 3
    # cached: exactly the stored scores, in the caller's task order
    assert results[0]["score"] == scores["tasks"]["102"]["score"]
    assert results[2]["score"] == scores["tasks"]["101"]["score"]
    # uncached task 103: EC / H_J of a fresh MC-dropout run with the bounded T, in [0, 1]
    assert 0.0 <= results[1]["score"] <= 1.0
    for res, _tid in zip(results, (102, 103, 101)):
        for item in res["result"]:
            assert item["from_name"] == "label" and item["to_name"] == "text" and item["type"] == "choices"
            assert set(item["value"]["choices"]) <= {"fruit", "water"}
    cached = scores["tasks"]["101"]
    assert cached["score"] == pytest.approx(cached["ec"] / acquisition.harmonic(2))


def test_predict_skips_bad_tasks_but_answers_the_rest(app_factory, published):
    app, _ = app_factory(max_text_chars=50)
    tasks = [
        task(101, POOL[101]),
        {"id": 5, "data": {}},
        task(6, ""),
        task(7, "y" * 51),
        {"id": 8, "data": {"text": 3}},
        "junk",
    ]
    r = app.test_client().post("/predict", json={"tasks": tasks, "project": "7", "label_config": CONFIG})
    assert r.status_code == 200
    results = r.get_json()["results"]
    assert len(results) == len(tasks)
    assert results[0]["model_version"] == published[0]
    assert results[1:] == [[], [], [], [], []]


def test_predict_with_a_changed_label_set_does_not_mix_models(app_factory, published):
    app, _ = app_factory()
    changed = CONFIG.replace('<Choice value="water"/>', '<Choice value="water"/><Choice value="sky"/>')
    r = app.test_client().post(
        "/predict", json={"tasks": [task(101, POOL[101])], "project": "7", "label_config": changed}
    )
    assert r.status_code == 200 and r.get_json()["results"] == [[]]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"project": "7"}, 400, "missing field 'tasks'"),
        ({"tasks": [], "project": None}, 400, "missing field 'project'"),
        ({"tasks": "abc", "project": "7", "label_config": CONFIG}, 400, "tasks must be a list"),
        ({"tasks": [task(1, "a")], "project": "55"}, 400, "never set up"),
        ({"tasks": [task(1, "a")], "project": "x.1", "label_config": CONFIG}, 400, "invalid project"),
    ],
)
def test_predict_bad_input(app_factory, body, status, fragment):
    r = app_factory()[0].test_client().post("/predict", json=body)
    assert r.status_code == status and fragment in r.get_json()["error"]


def test_webhook_counts_then_enqueues_and_coalesces(app_factory, ls_stub):
    app, rt = app_factory(train_every=3)
    c = app.test_client()
    c.post("/setup", json={**payload("setup_request"), **ls_stub.link})
    event = payload("webhook_annotation_created")
    states = [c.post("/webhook", json=event).get_json()["status"] for _ in range(3)]
    assert states == ["counted", "counted", "queued"]
    assert rt.queue.jobs == ["1"]
    # a pending job exists: START_TRAINING and further annotations coalesce into it
    assert c.post("/webhook", json=payload("webhook_start_training")).get_json()["status"] == "coalesced"
    assert rt.queue.jobs == ["1"]
    assert c.get("/jobs").get_json()["1"]["pending"] is True


def test_webhook_ignores_other_actions_and_rejects_unknown_projects(app_factory, ls_stub):
    app, rt = app_factory()
    c = app.test_client()
    r = c.post("/webhook", json={"action": "TASKS_CREATED", "project": {"id": 1}})
    assert r.status_code == 404 and "never set up" in r.get_json()["error"]
    c.post("/setup", json={**payload("setup_request"), **ls_stub.link})
    assert (
        c.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {"id": 1}}).get_json()["status"] == "ignored"
    )
    # imported tasks: the CPU default (LEARNER=auto -> frozen) queues one embedding job, never a round
    assert c.post("/webhook", json={"action": "TASKS_CREATED", "project": {"id": 1}}).get_json()["status"] == "queued"
    assert (
        c.post("/webhook", json={"action": "TASKS_CREATED", "project": {"id": 1}}).get_json()["status"] == "coalesced"
    )
    assert rt.queue.embedding_jobs == ["1"] and rt.queue.jobs == []
    assert c.post("/webhook", json={"action": "START_TRAINING"}).status_code == 400
    assert c.post("/webhook", json={"project": {"id": 1}}).status_code == 400


def test_deleted_annotations_count_each_deleted_one(app_factory, ls_stub):
    app, _rt = app_factory(train_every=3)
    c = app.test_client()
    c.post("/setup", json={**payload("setup_request"), **ls_stub.link})
    body = {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 1}, {"id": 2}, {"id": 3}], "project": {"id": 1}}
    assert c.post("/webhook", json=body).get_json()["status"] == "queued"


def test_basic_auth_protects_everything_but_health(app_factory):
    c = app_factory(basic_auth_user="ann", basic_auth_pass="s3cret")[0].test_client()
    assert c.get("/health").status_code == 200
    for method, path in (
        ("post", "/setup"),
        ("post", "/predict"),
        ("post", "/webhook"),
        ("get", "/metrics"),
        ("get", "/jobs"),
    ):
        r = getattr(c, method)(path, json={})
        assert r.status_code == 401 and r.get_json() == {"error": "authentication required"}
    bad = {"Authorization": "Basic " + base64.b64encode(b"ann:wrong").decode()}
    assert c.get("/jobs", headers=bad).status_code == 401
    good = {"Authorization": "Basic " + base64.b64encode(b"ann:s3cret").decode()}
    assert c.get("/jobs", headers=good).status_code == 200


def test_access_token_is_never_returned(app_factory, ls_stub):
    app, _ = app_factory()
    c = app.test_client()
    assert c.post("/setup", json={**payload("setup_request"), **ls_stub.link}).status_code == 200
    token = ls_stub.TOKEN
    for path in ("/jobs", "/metrics", "/health"):
        assert token not in c.get(path).get_data(as_text=True)


def test_metrics_report_models_and_requests(app_factory, published):
    app, _ = app_factory()
    c = app.test_client()
    c.post("/predict", json={"tasks": [task(101, POOL[101])], "project": "7", "label_config": CONFIG})
    text = c.get("/metrics").get_data(as_text=True)
    assert f'beal_model_info{{project="7",version="{published[0]}"}} 1.0' in text
    assert 'beal_predictions_pushed{project="7"} 2.0' in text
    assert 'beal_http_requests_total{endpoint="/predict",status="200"} 1.0' in text
    assert "beal_predict_seconds_count 1.0" in text


def test_unknown_route_is_json_404(app_factory):
    r = app_factory()[0].test_client().get("/nope")
    assert r.status_code == 404 and "error" in r.get_json()


def test_status_page_shows_the_current_version_and_its_pool(app_factory, published):
    version, scores = published
    r = app_factory()[0].test_client().get("/status")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert "Project 7" in html and version in html
    assert f"EC over the unlabeled pool ({len(scores['tasks'])} tasks)" in html
    assert r.headers["Content-Security-Policy"] == statuspage.CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


def test_foreign_folders_in_the_model_dir_do_not_break_status(app_factory, published, settings):
    from pathlib import Path

    (Path(settings.model_dir) / "lost+found").mkdir()
    (Path(settings.model_dir) / "chromium").mkdir()
    c = app_factory()[0].test_client()
    assert c.get("/status").status_code == 200
    assert list(c.get("/jobs").get_json()) == ["7"]


def test_uncached_tasks_without_ids_keep_their_own_scores(app_factory, published):
    c = app_factory()[0].test_client()
    texts = ["apple pie", "the river", "plain words here"]
    results = c.post(
        "/predict", json={"tasks": [{"data": {"text": t}} for t in texts], "project": "7", "label_config": CONFIG}
    ).get_json()["results"]
    scores = [r["score"] for r in results]
    assert len(set(scores)) == 3  # three texts, three scores: tasks without ids are not merged
