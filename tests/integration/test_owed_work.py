"""Work owed to a project is never forgotten and no worker waits on a project lock (issue 21, items 1-3): a
failed round leaves its annotations owed and is retried with backoff; a pending slot whose job ended is freed
however it ended; a round whose project is locked is deferred, never parked on a worker."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from beal_backend import cli, wiring
from beal_backend.labelstudio.client import LabelStudioError
from beal_backend.wiring import build_runtime
from beal_backend.worker import triggers
from beal_backend.worker.coordination import PENDING_TTL
from beal_backend.worker.local_coordination import LocalCoordinator
from beal_backend.worker.queues import ThreadQueue
from beal_backend.worker.redis_coordination import RedisCoordinator

from ..e2e.helpers import wait_until
from .conftest import CONFIG, REDIS_TEST_URL, FakeLabelStudio, _runtime
from .test_coordination import _hold_lock_forever

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]


def _wait(predicate, timeout: float, what: str):
    return wait_until(predicate, timeout, what, poll=0.1)


# ---------------------------------------------------------------- 21.1: a failed round leaves its work owed


def test_a_failed_round_leaves_its_annotations_owed(coord):
    coord.add_annotations("1", 3)
    with pytest.raises(LabelStudioError), coord.running("1", timeout=1):
        assert coord.owed("1") == 0  # the running round reads them: not owed while it runs
        assert coord.add_annotations("1") == 1  # saved during the round: counts towards the next one
        raise LabelStudioError("Label Studio at http://ls: HTTP 502")
    assert (coord.owed("1"), coord.annotations("1")) == (4, 4)  # the 3 are counted again, for any trigger
    with coord.running("1", timeout=1):  # a round that ends well trains them
        pass
    assert (coord.owed("1"), coord.annotations("1")) == (0, 0)


def test_a_killed_round_leaves_its_annotations_owed(redis_conn):
    c = RedisCoordinator(redis_conn, lock_ttl=1)
    c.add_annotations("9", 3)
    proc = mp.get_context("spawn").Process(target=_hold_lock_forever, args=(REDIS_TEST_URL,))
    proc.start()
    try:
        _wait(lambda: redis_conn.exists("beal:lock:9"), 120, "the round to take its lock")
        assert c.owed("9") == 0 and c.annotations("9") == 0  # in flight
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    _wait(lambda: not c.is_running("9"), 5, "the killed round's lock to expire")
    assert c.owed("9") == 3  # the idle check sees them


def test_the_embedded_queue_retries_a_failed_round_after_its_waits(settings):
    """Label Studio answers 502 to the first two fetches: the round is retried 1 s, then 2 s later (the
    ``ROUND_RETRY_SECONDS`` waits), keeps the pending slot meanwhile, and the third try trains all 3 annotations."""
    fetches = []

    def flaky():
        fetches.append(time.monotonic())
        if len(fetches) <= 2:
            raise LabelStudioError("Label Studio at http://ls: HTTP 502")

    rt = _runtime(replace(settings, round_retry_seconds="1,2"), LocalCoordinator(), FakeLabelStudio(on_tasks=flaky))
    rt.queue = ThreadQueue(rt)
    rt.coordinator.add_annotations("1", 3)
    job = triggers.enqueue_round(rt, "1")["job_id"]
    failed = _wait(
        lambda: (
            (rt.coordinator.statuses().get("1", {}).get("current") or {}).get("state") == "failed"
            and rt.coordinator.statuses()["1"]["current"]
        ),
        60,
        "the first failure",
    )
    assert failed["id"] == job and "HTTP 502" in failed["error"] and failed["retry_at"] > time.time() - 1
    assert rt.coordinator.owed("1") == 3 and rt.coordinator.pending_holder("1") == job  # the retry waits
    assert triggers.enqueue_round(rt, "1")["status"] == "coalesced"  # ... and a trigger joins it
    done = _wait(
        lambda: (
            (rt.coordinator.statuses()["1"]["current"] or {}).get("state") == "finished"
            and rt.coordinator.statuses()["1"]["current"]
        ),
        120,
        "the retried round",
    )
    assert done["id"] == job and done["outcome"] == "trained" and done["error"] is None and done["retry_at"] is None
    assert len(fetches) == 3 and fetches[1] - fetches[0] >= 1.0 and fetches[2] - fetches[1] >= 2.0
    assert rt.coordinator.owed("1") == 0 and rt.store.current("1") == done["version"]


# ---------------------------------------------------------------- 21.2: a pending slot never sticks


def test_a_slot_whose_job_ended_before_the_lock_is_freed(redis_conn, settings, app_factory, monkeypatch, ls_stub):
    """The job dies before it takes the project lock (here: while it builds its runtime), after its one
    retry: the next webhook queues a round instead of answering "coalesced" for hours. A job Redis lost frees
    its slot too, and a slot expires after minutes, not after the job timeout."""
    s = replace(settings, redis_url=REDIS_TEST_URL, train_every=1, round_retry_seconds="0")
    for env, value in {"REDIS_URL": REDIS_TEST_URL, "MODEL_DIR": s.model_dir}.items():
        monkeypatch.setenv(env, value)
    app, rt = app_factory(rt=build_runtime(s))
    c = app.test_client()
    assert c.post("/setup", json={"project": "3.1", "schema": CONFIG, **ls_stub.link}).status_code == 200
    event = {"action": "ANNOTATION_CREATED", "annotation": {"id": 1}, "project": {"id": 3}}
    first = c.post("/webhook", json=event).get_json()
    assert first["status"] == "queued" and c.post("/webhook", json=event).get_json()["status"] == "coalesced"
    assert 0 < redis_conn.ttl("beal:pending:3") <= PENDING_TTL < s.job_timeout

    def out_of_memory(settings):
        raise MemoryError("while building the runtime")

    monkeypatch.setattr(wiring, "build_runtime", out_of_memory)  # the job dies before it takes the lock
    assert cli.main(["worker", "--burst"]) == 0
    q = Queue(s.queue_name, connection=redis_conn, serializer=JSONSerializer)
    assert q.fetch_job(first["job_id"]).get_status() == JobStatus.FAILED  # after its one retry
    assert rt.coordinator.pending_holder("3") == first["job_id"]  # nothing freed it ...
    monkeypatch.undo()
    second = c.post("/webhook", json=event).get_json()
    assert second["status"] == "queued"  # ... but it is stale: the trigger frees it

    redis_conn.delete(Job.key_for(second["job_id"]))  # Redis lost the job itself
    assert c.post("/webhook", json=event).get_json()["status"] == "queued"


# ---------------------------------------------------------------- 21.3: no worker waits on a lock


def test_a_round_whose_project_is_locked_frees_the_worker(redis_conn, settings, tmp_path):
    """2 projects, 1 worker: project 1's long round holds its lock; a second round for 1 is queued before one
    for 2. The worker defers 1's (rq runs the same job again later; triggers coalesce into it) and starts 2's
    at once (which then fails for want of a Label Studio, and is shown failed with its retry due)."""
    s = replace(settings, redis_url=REDIS_TEST_URL)
    rt = build_runtime(s)
    env = {**os.environ, "REDIS_URL": REDIS_TEST_URL, "MODEL_DIR": s.model_dir, "PYTHONPATH": str(ROOT)}
    with rt.coordinator.running("1", timeout=1):  # project 1's long round
        a = triggers.enqueue_round(rt, "1")["job_id"]
        b = triggers.enqueue_round(rt, "2")["job_id"]
        log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - the worker writes to it until it exits
        worker = subprocess.Popen(
            [sys.executable, "-m", "beal_backend", "worker", "--burst"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            started = _wait(lambda: rt.coordinator.statuses().get("2"), 180, "project 2's round to start")
            q = Queue(s.queue_name, connection=redis_conn, serializer=JSONSerializer)
            deferred = q.fetch_job(a)
            assert deferred.get_status() == JobStatus.SCHEDULED  # deferred, not holding the worker
            since = started["current"]["started_at"] - deferred.latest_result().created_at.timestamp()
            assert started["current"]["id"] == b and 0 < since < 5, (since, (tmp_path / "worker.log").read_text())
            assert rt.coordinator.pending_holder("1") == a
            assert triggers.enqueue_round(rt, "1")["status"] == "coalesced"
            failed = _wait(lambda: rt.coordinator.statuses()["2"]["current"].get("retry_at"), 60, "2's failure")
            assert failed > time.time() + 20  # ROUND_RETRY_SECONDS: the first retry 30 s after the failure
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            log.close()


def test_the_embedded_queue_defers_a_round_whose_project_is_locked(settings):
    rt = _runtime(settings, LocalCoordinator(), FakeLabelStudio())
    rt.queue = ThreadQueue(rt)
    with rt.coordinator.running("1", timeout=1):  # project 1's long round (or a rollback)
        a = triggers.enqueue_round(rt, "1")["job_id"]
        triggers.enqueue_round(rt, "2")
        done = _wait(lambda: (rt.coordinator.statuses().get("2", {}).get("current") or {}).get("outcome"), 120, "2")
        assert done == "trained" and rt.queue.alive(a) and rt.coordinator.pending_holder("1") == a
    _wait(lambda: (rt.coordinator.statuses().get("1", {}).get("current") or {}).get("outcome"), 120, "1's round")
    assert rt.store.current("1") is not None
