"""Coordination semantics on the real Redis (127.0.0.1:6379) and in memory: both must behave alike."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from beal_backend.wiring import build_runtime
from beal_backend.worker.queues import RQQueue
from beal_backend.worker.redis_coordination import RedisCoordinator

from .conftest import CONFIG, REDIS_TEST_URL

pytestmark = pytest.mark.redis


def test_counter_and_reset(coord):
    assert [coord.add_annotations("1") for _ in range(3)] == [1, 2, 3]
    assert coord.add_annotations("1", 4) == 7
    assert coord.add_annotations("2") == 1  # per project
    assert (coord.annotations("1"), coord.annotations("2"), coord.annotations("3")) == (7, 1, 0)
    coord.reset_annotations("1")
    assert coord.annotations("1") == 0
    assert coord.add_annotations("1") == 1


def test_one_pending_claim_until_the_job_starts(coord):
    assert coord.claim_pending("1", "job-a") is True
    assert [coord.claim_pending("1", f"job-{k}") for k in range(5)] == [False] * 5
    assert coord.claim_pending("1", "job-a") is True and coord.pending_holder("1") == "job-a"  # its holder's still
    assert coord.claim_pending("2", "job-b") is True
    with coord.running("1", timeout=1):
        assert coord.is_pending("1") is False  # the job started: the next trigger may queue one more
        assert coord.claim_pending("1", "job-c") is True
        assert coord.claim_pending("1", "job-d") is False
    coord.release_pending("1", "job-d")  # not its slot: nothing freed
    assert coord.pending_holder("1") == "job-c"
    coord.release_pending("1", "job-c")
    assert coord.pending_holder("1") is None


def test_one_running_job_per_project(coord):
    entered = threading.Event()
    release = threading.Event()

    def hold():
        with coord.running("1", timeout=5):
            entered.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    entered.wait(5)
    with pytest.raises(TimeoutError):
        with coord.running("1", timeout=0.3):
            pass
    with coord.running("2", timeout=0.3):  # other projects are not blocked
        pass
    release.set()
    t.join()
    with coord.running("1", timeout=1):
        pass


def test_status_records_keep_current_and_last(coord):
    coord.put_status("1", {"id": "a", "state": "started"})
    coord.put_status("1", {"id": "a", "state": "finished", "version": "v1"})
    with coord.running("1", timeout=1):  # a started job holds the lock (without it, it reads as dead)
        coord.put_status("1", {"id": "b", "state": "started"})
        st = coord.statuses()["1"]
    assert st["current"]["id"] == "b" and st["current"]["state"] == "started"
    assert st["last"]["id"] == "a" and st["last"]["state"] == "finished" and st["last"]["version"] == "v1"


def _hold_lock_forever(url):
    c = RedisCoordinator(redis.Redis.from_url(url), lock_ttl=1)
    with c.running("9", timeout=5):
        time.sleep(60)


def test_a_killed_worker_frees_its_project_lock(redis_conn):
    proc = mp.get_context("spawn").Process(target=_hold_lock_forever, args=(REDIS_TEST_URL,))
    proc.start()
    c = RedisCoordinator(redis_conn, lock_ttl=1)
    deadline = time.time() + 30
    while not redis_conn.exists("beal:lock:9") and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # longer than the TTL: the heartbeat keeps a live holder's lock
    assert redis_conn.exists("beal:lock:9")
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    t0 = time.time()
    with c.running("9", timeout=5):
        waited = time.time() - t0
    assert waited < 2.5


def test_burst_of_webhooks_queues_one_job_in_redis(app_factory, redis_conn, tmp_path, ls_stub):
    from beal_backend.config import Settings

    settings = Settings(model_dir=str(tmp_path / "s"), redis_url=REDIS_TEST_URL, train_every=1)
    rt = build_runtime(settings)
    assert isinstance(rt.queue, RQQueue)
    app, _ = app_factory(rt=rt)
    c = app.test_client()
    c.post("/setup", json={"project": "3.1", "schema": CONFIG, **ls_stub.link})
    event = {"action": "ANNOTATION_CREATED", "annotation": {"id": 1}, "project": {"id": 3}}
    states = [c.post("/webhook", json=event).get_json()["status"] for _ in range(200)]
    assert states.count("queued") == 1 and states.count("coalesced") == 199
    q = Queue(settings.queue_name, connection=redis_conn, serializer=JSONSerializer)
    assert q.count == 1
    job = q.jobs[0]
    assert (
        job.func_name == "beal_backend.wiring.train_project"
        and list(job.args) == ["3"]
        and job.timeout == settings.job_timeout
    )
    # while that job runs, a second burst adds exactly one pending job
    with rt.coordinator.running("3", timeout=1):
        states = [c.post("/webhook", json=event).get_json()["status"] for _ in range(200)]
    assert states.count("queued") == 1 and q.count == 2


def test_webhook_answers_503_when_redis_is_down(app_factory, tmp_path, ls_stub):
    from beal_backend.config import Settings

    settings = Settings(model_dir=str(tmp_path / "s"), redis_url="redis://127.0.0.1:1/0", train_every=1)
    rt = build_runtime(settings)
    app, _ = app_factory(rt=rt)
    c = app.test_client()
    c.post("/setup", json={"project": "3.1", "schema": CONFIG, **ls_stub.link})
    t0 = time.time()
    r = c.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 3}})
    assert r.status_code == 503 and "Redis" in r.get_json()["error"]
    assert time.time() - t0 < 1.0  # within Label Studio's webhook timeout
    assert c.get("/health").get_json()["redis"] is False


def test_worker_health_check_sees_a_worker_of_this_host(redis_conn, monkeypatch, capsys):
    """`beal worker --health` (the worker container's health check) answers 0 only while an rq worker of this
    host is registered in Redis (a registration lives as long as the worker's heartbeats), not just Redis."""
    from rq import Worker

    from beal_backend import cli

    monkeypatch.setenv("REDIS_URL", REDIS_TEST_URL)
    assert cli.main(["worker", "--health"]) == 1 and "no worker of host" in capsys.readouterr().err
    elsewhere = Worker([Queue("beal-training", connection=redis_conn)], connection=redis_conn, name="other")
    elsewhere.hostname = "another-host"
    elsewhere.register_birth()
    assert cli.main(["worker", "--health"]) == 1  # a worker on another host says nothing about this one
    here = Worker([Queue("beal-training", connection=redis_conn)], connection=redis_conn, name="here")
    here.register_birth()
    assert cli.main(["worker", "--health"]) == 0
    here.register_death()
    assert cli.main(["worker", "--health"]) == 1
