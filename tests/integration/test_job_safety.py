"""Job safety on the real Redis and in memory: lost project locks, Redis outages during a round, reads that must
not write, and the annotation counter of a coalesced trigger. Errors under the right status: test_error_statuses
and test_label_studio_requests."""

from __future__ import annotations

import threading
import time

import pytest

from beal_backend.labelstudio.client import LabelStudioError
from beal_backend.store.versions import ModelStore
from beal_backend.wiring import Runtime
from beal_backend.worker import rounds as jobs
from beal_backend.worker.coordination import WORKER_DIED
from beal_backend.worker.locks import LockLost
from beal_backend.worker.redis_coordination import RedisCoordinator

from .. import redis_server
from .conftest import CONFIG, POOL, REDIS_TEST_URL, FakeLabelStudio, RecordingQueue, _runtime

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("info_logs")]


@pytest.fixture
def private_redis():
    r = redis_server.PrivateRedis().start()
    yield r
    r.stop()


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
