"""Job and service errors under the right status (issue item 7): tampered weights are a 500, only a held project
lock is a busy project (409), a failed training-thread job is logged, a Redis outage only degrades /metrics."""

from __future__ import annotations

from dataclasses import replace

import pytest

from beal_backend.service.metrics import Metrics
from beal_backend.store.versions import WEIGHTS, ModelStore
from beal_backend.wiring import Runtime
from beal_backend.worker import queues
from beal_backend.worker.locks import ProjectLocked

from .conftest import CONFIG, POOL, FakeLabelStudio

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("info_logs")]


def test_tampered_weights_are_a_500_and_the_version_is_not_loaded(app_factory, published, settings, caplog):
    version, _ = published
    weights = ModelStore(settings.model_dir).version_dir("7", version) / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    app, _ = app_factory()
    c = app.test_client()
    body = {"tasks": [{"id": 103, "data": {"text": POOL[103]}}], "project": "7", "label_config": CONFIG}
    for _ in range(2):  # a task that needs the model is refused every time: never cached as loaded
        r = c.post("/predict", json=body)
        assert r.status_code == 500 and "sha256" in r.get_json()["error"]
    assert not app.extensions["beal"]["model"].versions_cache.loaded("7", version)
    # a score cached when the version was written (by the verified model) needs no weights: still served
    cached = {**body, "tasks": [{"id": 101, "data": {"text": POOL[101]}}]}
    assert c.post("/predict", json=cached).get_json()["results"][0]["score"] == published[1]["tasks"]["101"]["score"]
    assert "the sha256 of model.safetensors" in caplog.text and "refused" in caplog.text


def test_only_a_held_project_lock_reads_as_a_busy_project(app_factory, published):
    """/rollback runs the real rollback: while a job holds project 7's lock it waits (its 10 s) and is a 409; a
    timeout of its own (Label Studio's socket, here on reading the tasks) is a 500, not a busy project."""

    def socket_timeout():
        raise TimeoutError("timed out")

    app, rt = app_factory()
    c = app.test_client()
    rt.client = lambda project: FakeLabelStudio()
    with rt.coordinator.running("7", timeout=1):  # a training job holds the project
        r = c.post("/projects/7/rollback", json={"version": published[0]})
    assert r.status_code == 409 and "a training job holds the project" in r.get_json()["error"]
    rt.client = lambda project: FakeLabelStudio(on_tasks=socket_timeout)  # e.g. a socket timeout
    r = c.post("/projects/7/rollback", json={"version": published[0]})
    assert r.status_code == 500 and r.get_json()["error"] == "internal error (TimeoutError); see the service log"


def test_the_training_thread_logs_a_failed_job(settings, monkeypatch, caplog):
    def boom(project, rt, job_id, retry_in=None):
        raise ProjectLocked(f"project {project} stayed locked for 1 s")

    monkeypatch.setattr(queues, "attempt_round", boom)
    q = queues.ThreadQueue(Runtime.build(settings))
    job = q.enqueue("4")
    q.join()
    assert f"training job {job} for project 4 failed: ProjectLocked: project 4 stayed locked" in caplog.text


def test_metrics_log_a_redis_outage_and_let_other_errors_through(settings, caplog):
    from prometheus_client import generate_latest

    rt = Runtime.build(replace(settings, redis_url="redis://127.0.0.1:1/0"))
    assert b"beal_jobs" in generate_latest(Metrics(rt).registry)
    assert "/metrics: job states unavailable, Redis unreachable" in caplog.text
    rt.coordinator.statuses = lambda: {"1": "not a record"}  # a bug, not an outage: it must surface
    with pytest.raises(AttributeError):
        generate_latest(Metrics(rt).registry)
