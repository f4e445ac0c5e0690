"""Job safety on the real Redis and in memory: lost project locks, Redis outages during a round,
reads that must not write, the annotation counter of a coalesced trigger, and errors under the right status."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest
from label_studio_sdk.core.api_error import ApiError

from beal_backend.labelstudio import client as client_module
from beal_backend.labelstudio import predictions
from beal_backend.labelstudio.client import LabelStudioClient, LabelStudioError, Task
from beal_backend.service.metrics import Metrics
from beal_backend.store.versions import WEIGHTS, ModelStore
from beal_backend.wiring import Runtime
from beal_backend.worker import queues
from beal_backend.worker import rounds as jobs
from beal_backend.worker.coordination import WORKER_DIED
from beal_backend.worker.local_coordination import LocalCoordinator
from beal_backend.worker.locks import LockLost, ProjectLocked
from beal_backend.worker.redis_coordination import RedisCoordinator

from .. import redis_server
from .conftest import CONFIG, LABELS, POOL, REDIS_TEST_URL, TEXTS, RecordingQueue

pytestmark = pytest.mark.redis


# ---------------------------------------------------------------- helpers


class FakeLabelStudio:
    """The Label Studio client a round uses; ``on_tasks`` runs when the round fetches its annotations."""

    def __init__(self, on_tasks=lambda: None):
        self.on_tasks, self.pushed = on_tasks, []

    def label_config(self, pid):
        return CONFIG

    def tasks(self, pid, annotations=True):
        self.on_tasks()
        labeled = [Task(i + 1, {"text": t}, [_annotation(ls)]) for i, (t, ls) in enumerate(zip(TEXTS, LABELS))]
        return labeled + [Task(tid, {"text": text}, []) for tid, text in POOL.items()]

    def push_predictions(self, pid, version, predictions):
        self.pushed.append((version, predictions))
        return len(predictions)

    def set_model_version(self, pid, version):
        pass

    def model_versions(self, pid):
        return {}

    def delete_model_version(self, pid, version, n_predictions=0):
        return 0


def _annotation(labels):
    return {"result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": labels}}]}


@pytest.fixture
def private_redis():
    r = redis_server.PrivateRedis().start()
    yield r
    r.stop()


def _runtime(settings, coordinator, client):
    rt = Runtime(settings, ModelStore(settings.model_dir), coordinator)
    rt.client = lambda project: client
    return rt


@pytest.fixture(params=["redis", "local"])
def coord(request, redis_conn):
    return RedisCoordinator(redis_conn, lock_ttl=5) if request.param == "redis" else LocalCoordinator()


# ---------------------------------------------------------------- item 5: lost locks, Redis outages


def test_a_lease_whose_lock_was_taken_over_is_lost(redis_conn):
    coord = RedisCoordinator(redis_conn, lock_ttl=1)
    with coord.running("1", timeout=1) as lease:
        lease.check(confirm=True)  # ours: no error
        redis_conn.set("beal:lock:1", "another-job")  # as if it expired and another worker took it
        time.sleep(0.6)  # > one heartbeat (TTL / 3)
        with pytest.raises(LockLost, match="expired or was taken"):
            lease.check()
    assert redis_conn.get("beal:lock:1") == b"another-job"  # leaving did not delete the other job's lock


def test_a_job_that_lost_its_lock_publishes_nothing(settings, redis_conn):
    def lose_the_lock():
        redis_conn.set("beal:lock:1", "another-job")
        time.sleep(0.6)

    client = FakeLabelStudio(on_tasks=lose_the_lock)
    rt = _runtime(settings, RedisCoordinator(redis_conn, lock_ttl=1), client)
    with pytest.raises(LockLost):
        jobs.run_round("1", rt, job_id="lost")
    assert rt.store.versions("1") == [] and client.pushed == []
    # the job did not write "failed" over a record that may belong to the job holding the lock now
    assert rt.coordinator.statuses()["1"]["current"]["state"] != "failed"


def test_redis_outage_during_a_round_does_not_kill_it(settings, private_redis):
    coord = RedisCoordinator(private_redis.conn, lock_ttl=600)
    client = FakeLabelStudio(on_tasks=private_redis.stop)  # Redis dies just after the round started
    rt = _runtime(settings, coord, client)
    result = jobs.run_round("1", rt, job_id="outage")
    assert result["outcome"] == "trained" and rt.store.current("1") == result["version"]
    assert [v for v, _ in client.pushed] == [result["version"]] and len(client.pushed[0][1]) == len(POOL)


def test_a_failing_round_during_a_redis_outage_raises_its_own_error(settings, private_redis):
    def fail():
        private_redis.stop()
        raise LabelStudioError("Label Studio at http://ls: HTTP 502")

    rt = _runtime(settings, RedisCoordinator(private_redis.conn, lock_ttl=60), FakeLabelStudio(on_tasks=fail))
    with pytest.raises(LabelStudioError, match="HTTP 502"):  # not the ConnectionError of reporting it
        jobs.run_round("1", rt, job_id="fails")


# ---------------------------------------------------------------- item 6: reads never write


def test_reads_show_a_dead_job_failed_without_writing(coord, app_factory, settings):
    app, _rt = app_factory(rt=Runtime(settings, ModelStore(settings.model_dir), coord))
    coord.put_status("1", {"id": "dead", "state": "started", "stage": "training"})  # its worker died: no lock
    c = app.test_client()
    shown = c.get("/jobs").get_json()["1"]["current_job"]
    assert shown["state"] == "failed" and shown["error"] == WORKER_DIED
    assert c.get("/status").status_code == 200
    assert coord._raw_status("1")["current"]["state"] == "started" and coord.job_log("1") == []  # nothing written
    with coord.running("1", timeout=1):  # the next job to take the lock records it, once
        pass
    assert coord._raw_status("1")["current"] == {
        **coord._raw_status("1")["current"],
        "state": "failed",
        "error": WORKER_DIED,
    }
    assert [(e["id"], e["message"]) for e in coord.job_log("1")] == [("dead", WORKER_DIED)]


def test_a_running_job_reads_as_started(coord):
    with coord.running("1", timeout=1):
        coord.put_status("1", {"id": "live", "state": "started"})
        assert coord.statuses()["1"]["current"]["state"] == "started"


def test_a_job_finishing_during_a_read_is_never_logged_failed(redis_conn, app_factory, settings, monkeypatch):
    """The old read checked the record, then the lock: a job finishing in between was logged as failed. Now
    the job finishes after the read has found its record and before it reads record and lock (atomically)."""
    coord = RedisCoordinator(redis_conn, lock_ttl=5)
    app, _ = app_factory(rt=Runtime(settings, ModelStore(settings.model_dir), coord))
    release, entered = threading.Event(), threading.Event()

    def job():
        with coord.running("1", timeout=1):
            coord.put_status("1", {"id": "j", "state": "started"})
            entered.set()
            release.wait(5)
            coord.put_status("1", {"id": "j", "state": "finished"})

    t = threading.Thread(target=job)
    t.start()
    entered.wait(5)
    real_scan = coord.r.scan_iter

    def scan_then_finish(*args, **kwargs):
        keys = list(real_scan(*args, **kwargs))  # the read has found the started job's record ...
        release.set()  # ... and the job finishes and releases its lock before the read reads it
        t.join()
        return iter(keys)

    monkeypatch.setattr(coord.r, "scan_iter", scan_then_finish)
    shown = app.test_client().get("/jobs").get_json()["1"]["current_job"]
    assert not t.is_alive() and shown["state"] == "finished"
    assert coord._raw_status("1")["current"]["state"] == "finished" and coord.job_log("1") == []


# ---------------------------------------------------------------- item 10: counting after a coalesced trigger


@pytest.mark.parametrize("backend", ["redis", "local"])
def test_annotations_read_by_a_pending_job_do_not_count_towards_the_next(backend, app_factory, redis_conn, ls_stub):
    app, rt = app_factory(train_every=3, redis_url=REDIS_TEST_URL if backend == "redis" else None)
    rt.queue = RecordingQueue()
    c = app.test_client()
    c.post("/setup", json={"project": "1.1", "schema": CONFIG, **ls_stub.link})
    event = {"action": "ANNOTATION_CREATED", "annotation": {"id": 1}, "project": {"id": 1}}
    states = [c.post("/webhook", json=event).get_json()["status"] for _ in range(6)]
    assert states == ["counted", "counted", "queued", "coalesced", "coalesced", "coalesced"]
    with rt.coordinator.running("1", timeout=1):  # the pending job starts: it reads all six
        answer = c.post("/webhook", json=event).get_json()
    assert answer == {"status": "counted", "project": "1", "annotations_since_training": 1}
    assert rt.queue.jobs == ["1"]


def test_a_rollback_keeps_the_pending_job_and_the_count(coord, settings, published):
    """The real rollback (re-push a published version) on both coordinators: not a round, so the owed job and
    the annotation counter stay."""
    rt = _runtime(settings, coord, FakeLabelStudio())
    assert coord.add_annotations("7", 2) == 2 and coord.claim_pending("7")
    assert jobs.rollback("7", published[0], rt)["version"] == published[0]
    assert coord.is_pending("7") and coord.add_annotations("7") == 3


# ---------------------------------------------------------------- item 7: errors under the right status


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


def test_label_studio_errors_keep_their_cause():
    client = LabelStudioClient("http://127.0.0.1:9", "key", retries=0)
    cause = ApiError(status_code=403, body="forbidden")

    def refuse():
        raise cause

    with pytest.raises(LabelStudioError) as info:
        client._call(refuse)
    assert info.value.__cause__ is cause
    client._ls.projects.import_predictions = lambda **k: refuse()
    with pytest.raises(LabelStudioError) as info:
        client.push_predictions(1, "v", [{"task": 1}])
    assert info.value.__cause__ is cause

    def bug():
        raise KeyError("id")  # our own mistake, not Label Studio's: not reported as a 502 from Label Studio

    with pytest.raises(KeyError):
        client._call(bug)


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


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO)


def test_a_push_is_one_request_per_push_chunk_with_a_timeout_sized_by_it(monkeypatch):
    """Label Studio recounts every task of the project after each import request: 50,000 predictions went in
    38 s as one request and took over 5 minutes as 50 of 1,000 (benchmarks/bench_round.py). So a push is as
    few requests as PUSH_CHUNK allows, each with LS_TIMEOUT + 10 ms per prediction to answer."""
    client = LabelStudioClient("http://127.0.0.1:9", "key", timeout=30, retries=0)
    calls: list[tuple[int, float]] = []

    def record(id, request, request_options):
        calls.append((len(request), request_options["timeout_in_seconds"]))
        assert id == 3 and {p["model_version"] for p in request} == {"v2"}
        assert request_options["max_retries"] == 0  # the SDK must never re-send an import on its own
        return SimpleNamespace(created=len(request))

    client._ls.projects.import_predictions = record
    assert client.push_predictions(3, "v2", [{"task": t, "score": 0.5} for t in range(2500)]) == 2500
    assert calls == [(2500, 30 + 25)]
    calls.clear()
    monkeypatch.setattr(client_module, "PUSH_CHUNK", 1000)
    assert client.push_predictions(3, "v2", [{"task": t, "score": 0.5} for t in range(2500)]) == 2500
    assert calls == [(1000, 40), (1000, 40), (500, 35)]


def test_a_stale_version_that_cannot_be_deleted_is_left_to_the_next_round():
    """Deleting 50,000 predictions takes Label Studio over 2 minutes; a failed delete must not fail a round
    whose new version already serves."""

    deleted: list[tuple[str, int]] = []

    class Client:
        def model_versions(self, pid):
            return {"beal-old": 50000, "beal-older": 7, "beal-new": 9, "someone-else": 3}

        def delete_model_version(self, pid, version, n_predictions=0):
            if version == "beal-old":
                raise LabelStudioError("read timeout")
            deleted.append((version, n_predictions))
            return n_predictions

    out = predictions.delete_stale(Client(), "3", "beal-new")
    assert out == {"removed_versions": ["beal-older"], "stale_versions_left": ["beal-old"]}
    assert deleted == [("beal-older", 7)]

    class Unreachable(Client):
        def model_versions(self, pid):
            raise LabelStudioError("connection refused")

    assert predictions.delete_stale(Unreachable(), "3", "beal-new") == {
        "removed_versions": [],
        "versions_not_listed": "connection refused",
    }
