"""What the service tells the operator and what Label Studio holds of its credentials (issue #23 items 4, 5, 7):
every refusal of a Label Studio call is logged with its reason, webhooks carry a token that opens /webhook only,
and the start says what is on."""

from __future__ import annotations

import base64
import logging
import os
import stat

import pytest

from beal_backend.config import Settings
from beal_backend.service.app import make_app
from beal_backend.store.secrets import TOKEN_FILE
from beal_backend.wiring import Runtime

from .conftest import CONFIG

NER = '<View><Text name="text" value="$text"/><Labels name="ner" toName="text"><Label value="PER"/></Labels></View>'
AUTH = {"Authorization": "Basic " + base64.b64encode(b"ann:s3cret").decode()}


def _warnings(caplog, path):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and f" {path} answered" in r.message]


@pytest.mark.parametrize(
    "path, body, status, reason",
    [
        ("/setup", {"project": "3.1", "schema": NER}, 400, "needs a <Choices> control"),
        ("/setup", {"project": "3.1", "schema": CONFIG, "extra_params": {"train_every": 0}}, 400, "train_every='0'"),
        ("/setup", {"project": "3.1", "schema": CONFIG, "extra_params": {"epochs": 2}}, 400, "'epochs' is not a"),
        ("/setup", {"project": "3.1", "schema": CONFIG, "hostname": "http://elsewhere:8080"}, 403, "set up from"),
        ("/setup", {"project": "9.1", "schema": CONFIG}, 404, "project 9 does not exist in Label Studio"),
        (  # an unreachable Label Studio: a 502, logged the same way
            "/setup",
            {"project": "8.1", "schema": CONFIG, "hostname": "http://127.0.0.1:1", "access_token": "t"},
            502,
            "Label Studio at http://127.0.0.1:1: ConnectError",
        ),
        ("/predict", {"project": "02", "tasks": []}, 400, "invalid project '02'"),
        ("/predict", {"project": "4", "tasks": []}, 400, "project 4 was never set up"),
        ("/webhook", {"action": "START_TRAINING", "project": {"id": 4}}, 404, "never set up with this backend"),
        ("/webhook", {"action": "START_TRAINING"}, 400, "no project.id"),
    ],
)
def test_every_refusal_of_a_label_studio_call_is_logged_once_with_its_reason(
    app_factory, caplog, path, body, status, reason
):
    from ..ls_stub import LabelStudioStub

    ls = LabelStudioStub(projects={3})
    try:
        app, _ = app_factory()
        c = app.test_client()
        assert c.post("/setup", json={"project": "3.1", "schema": CONFIG, **ls.link}).status_code == 200
        assert _warnings(caplog, "/setup") == []  # an accepted call logs no warning
        body = {**body, **ls.link} if path == "/setup" and "hostname" not in body else body
        r = c.post(path, json=body)
        assert r.status_code == status and reason in r.get_json()["error"]
        assert _warnings(caplog, path) == [f"POST {path} answered {status}: {r.get_json()['error']}"]
    finally:
        ls.close()


def test_auth_refusals_and_oversized_bodies_are_logged_too(app_factory, caplog):
    app, _ = app_factory(basic_auth_user="ann", basic_auth_pass="s3cret", max_request_bytes=100)
    c = app.test_client()
    assert c.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 1}}).status_code == 401
    assert c.post("/predict", headers=AUTH, json={"tasks": ["x" * 200]}).status_code == 413
    assert _warnings(caplog, "/webhook") == ["POST /webhook answered 401: authentication required"]
    assert len(_warnings(caplog, "/predict")) == 1 and "413" in _warnings(caplog, "/predict")[0]


def test_the_webhook_token_is_generated_once_private_and_shared(settings):
    api, worker = Runtime.build(settings), Runtime.build(settings)  # two processes on one MODEL_DIR
    header = api.webhook_authorization
    assert header.startswith("Bearer ") and len(header) > 40 and worker.webhook_authorization == header
    path = api.store.root / TOKEN_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and path.read_text().strip() == header.split()[1]
    assert not any(p.name.startswith(TOKEN_FILE + ".") for p in api.store.root.iterdir())  # no leftovers
    given = Runtime.build(Settings(model_dir=settings.model_dir, webhook_token="t0ken-from-the-environment"))
    assert given.webhook_authorization == "Bearer t0ken-from-the-environment"


def test_the_webhook_token_opens_webhook_delivery_and_nothing_else(app_factory, ls_stub):
    app, rt = app_factory(basic_auth_user="ann", basic_auth_pass="s3cret")
    c = app.test_client()
    assert c.post("/setup", headers=AUTH, json={"project": "3.1", "schema": CONFIG, **ls_stub.link}).status_code == 200
    header = rt.webhook_authorization
    assert "s3cret" not in header and AUTH["Authorization"].split()[1] not in header
    token = {"Authorization": header}
    event = {"action": "ANNOTATION_CREATED", "annotation": {"id": 1}, "project": {"id": 3}}
    assert c.post("/webhook", headers=token, json=event).get_json()["status"] == "counted"
    assert c.post("/webhook", headers={"Authorization": "Bearer wrong-token-0123456789"}, json=event).status_code == 401
    assert c.post("/setup", headers=token, json={"project": "3.1", "schema": CONFIG}).status_code == 401
    assert c.post("/predict", headers=token, json={"project": "3", "tasks": []}).status_code == 401
    for path in ("/jobs", "/status", "/metrics", "/projects/3/versions"):
        assert c.get(path, headers=token).status_code == 401


@pytest.mark.parametrize(
    "overrides, fragments, warned",
    [
        (
            {},
            ["basic auth off", "Label Studio per project from /setup (any host", "jobs embedded",
             "learner frozen on cpu", "strategy beal"],
            ["basic auth is off", "LABEL_STUDIO_HOSTS is unset"],
        ),
        (
            {"basic_auth_user": "ann", "basic_auth_pass": "s3cret", "label_studio_hosts": ("http://ls:8080",),
             "strategy": "bald", "learner": "finetune"},
            ["basic auth on", "only http://ls:8080", "learner finetune on cpu", "strategy bald"],
            [],
        ),
        (
            {"basic_auth_user": "ann", "basic_auth_pass": "s3cret", "label_studio_url": "http://ls:8080",
             "label_studio_api_key": "k"},
            ["Label Studio http://ls:8080 (LABEL_STUDIO_URL)"],
            [],
        ),
    ],
)  # fmt: skip
def test_the_start_says_what_is_on_and_warns_of_open_risks(settings, caplog, overrides, fragments, warned):
    from dataclasses import replace

    caplog.set_level(logging.INFO, logger="beal_backend")
    make_app(replace(settings, device="cpu", **overrides))
    lines = [r for r in caplog.records if r.name == "beal_backend"]
    info = [r.getMessage() for r in lines if r.levelno == logging.INFO]
    assert len(info) == 1 and all(f in info[0] for f in fragments), info
    got = [r.getMessage() for r in lines if r.levelno == logging.WARNING]
    assert len(got) == len(warned) and all(w in g for w, g in zip(warned, got)), got


def test_a_worker_says_which_learner_and_device_it_trains_with(settings, monkeypatch, caplog, redis_conn):
    from beal_backend.cli import main

    from .conftest import REDIS_TEST_URL

    for k, v in {"REDIS_URL": REDIS_TEST_URL, "MODEL_DIR": settings.model_dir, "DEVICE": "cpu"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LEARNER", "finetune")
    caplog.set_level(logging.INFO, logger="beal_backend")
    assert main(["worker", "--burst"]) == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "beal_backend"]
    assert len(lines) == 1 and "jobs on Redis (beal worker)" in lines[0] and "learner finetune on cpu" in lines[0]
