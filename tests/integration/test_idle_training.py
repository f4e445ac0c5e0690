"""TRAIN_IDLE_SECONDS: the end of an annotation burst is trained on once no annotation came for that long.
The decision (`triggers.check_idle`) on a clock the test moves; then the two real delayed paths: a timer thread
(embedded mode) and rq's scheduler in a `beal worker` on the real Redis."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis
from rq import Queue
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq.serializers import JSONSerializer

from beal_backend import cli
from beal_backend.store.versions import ModelStore
from beal_backend.wiring import Runtime, build_runtime
from beal_backend.worker import local_coordination, triggers
from beal_backend.worker.local_coordination import LocalCoordinator
from beal_backend.worker.queues import ThreadQueue
from beal_backend.worker.redis_coordination import RedisCoordinator

from .conftest import CONFIG, REDIS_TEST_URL

pytestmark = pytest.mark.redis
ANNOTATED = {"action": "ANNOTATION_CREATED", "annotation": {"id": 1}, "project": {"id": 5}}


class Clock:
    """Stands in for the ``time`` module of local_coordination: the test says what time it is."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def time(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(local_coordination, "time", c)
    return c


@pytest.fixture
def idle_app(app_factory, settings, clock, ls_stub):
    """Project 5 with TRAIN_EVERY=10, TRAIN_IDLE_SECONDS=300; the queue records what was enqueued."""
    app, rt = app_factory(rt=None, train_every=10, train_idle_seconds=300)
    c = app.test_client()
    assert c.post("/setup", json={"project": "5.1", "schema": CONFIG, **ls_stub.link}).status_code == 200
    return c, rt


def _annotate(c, n=1):
    return [c.post("/webhook", json=ANNOTATED).get_json()["status"] for _ in range(n)]


def test_a_burst_shorter_than_train_every_is_trained_once_it_goes_quiet(idle_app, clock):
    c, rt = idle_app
    assert _annotate(c, 3) == ["counted"] * 3  # 3 < TRAIN_EVERY: no round from the count
    assert rt.queue.idle_checks == [("5", 300)] and rt.queue.jobs == []  # one check for the whole burst
    assert c.get("/jobs").get_json()["5"]["annotations_since_training"] == 3
    clock.now += 100
    assert _annotate(c) == ["counted"]
    assert rt.queue.idle_checks == [("5", 300)]  # still one: it will see this event's time

    clock.now += 200  # the check is due; the last event was 200 s ago, so it looks again 100 s later
    assert triggers.check_idle(rt, "5") == {"status": "waiting", "project": "5", "seconds": 100.0}
    assert rt.queue.idle_checks == [("5", 300), ("5", 100.0)] and rt.queue.jobs == []

    clock.now += 100  # 300 s without an annotation, 4 untrained: a round
    assert triggers.check_idle(rt, "5")["status"] == "queued"
    assert rt.queue.jobs == ["5"]


def test_the_check_trains_nothing_when_the_last_round_read_everything(idle_app, clock):
    c, rt = idle_app
    _annotate(c, 2)
    with rt.coordinator.running("5", timeout=1):  # a round starts: it reads those 2, the counter restarts
        pass
    assert c.get("/jobs").get_json()["5"]["annotations_since_training"] == 0
    clock.now += 300
    assert triggers.check_idle(rt, "5") == {"status": "up to date", "project": "5"}
    assert rt.queue.jobs == []
    _annotate(c)  # the check freed its slot: the next event schedules a new one
    assert rt.queue.idle_checks == [("5", 300), ("5", 300)]


def test_the_check_trains_what_a_failed_round_left_owed(idle_app, clock):
    """Issue 21.1: a round that fails (Label Studio 502) does not count as having read the annotations."""
    c, rt = idle_app
    _annotate(c, 3)
    with pytest.raises(RuntimeError), rt.coordinator.running("5", timeout=1):
        raise RuntimeError("Label Studio at http://ls: HTTP 502")
    assert c.get("/jobs").get_json()["5"]["annotations_since_training"] == 3
    clock.now += 300
    assert triggers.check_idle(rt, "5")["status"] == "queued" and rt.queue.jobs == ["5"]


def test_an_event_during_the_check_is_never_left_unchecked(idle_app, clock, monkeypatch):
    """The check frees its slot before it reads the time: an event saved in between schedules its own check."""
    c, rt = idle_app
    _annotate(c)
    clock.now += 300
    read = rt.coordinator.release_idle_check

    def released_then_annotated(project):
        quiet = read(project)
        clock.now += 1
        _annotate(c)  # arrives after the slot was freed
        return quiet

    monkeypatch.setattr(rt.coordinator, "release_idle_check", released_then_annotated)
    assert triggers.check_idle(rt, "5")["status"] == "queued"  # it saw 300 s of quiet before that event
    assert rt.queue.idle_checks == [("5", 300), ("5", 300)]  # ... which scheduled the next check


def test_a_count_that_reaches_train_every_leaves_the_check_nothing_to_do(idle_app, clock):
    c, rt = idle_app
    assert _annotate(c, 10)[-1] == "queued"
    with rt.coordinator.running("5", timeout=1):
        pass
    clock.now += 300
    assert triggers.check_idle(rt, "5")["status"] == "up to date" and rt.queue.jobs == ["5"]


def test_zero_turns_idle_checks_off(app_factory, ls_stub):
    app, rt = app_factory(train_idle_seconds=0)
    c = app.test_client()
    c.post("/setup", json={"project": "5.1", "schema": CONFIG, **ls_stub.link})
    assert _annotate(c, 3) == ["counted"] * 3 and rt.queue.idle_checks == []


def test_a_check_redis_refused_is_a_503_and_frees_its_slot(app_factory, settings, redis_conn, ls_stub):
    """Redis refusing the delayed job: the webhook answers 503 naming Redis, and the slot is free again, so the
    next event schedules the check (it must not stay taken until it expires)."""
    rt = Runtime(
        replace(settings, train_idle_seconds=300), ModelStore(settings.model_dir), RedisCoordinator(redis_conn, 5)
    )
    app, rt = app_factory(rt=rt)
    c = app.test_client()
    c.post("/setup", json={"project": "5.1", "schema": CONFIG, **ls_stub.link})
    recorded = rt.queue.enqueue_idle_check
    rt.queue.enqueue_idle_check = lambda p, d: (_ for _ in ()).throw(redis.ConnectionError("connection refused"))
    r = c.post("/webhook", json=ANNOTATED)
    assert r.status_code == 503 and "Redis" in r.get_json()["error"]
    rt.queue.enqueue_idle_check = recorded
    assert _annotate(c) == ["counted"] and rt.queue.idle_checks == [("5", 300)]


def test_an_event_that_makes_a_round_due_schedules_no_check(idle_app):
    """The round it enqueues reads that event: an idle check would have nothing to add."""
    c, rt = idle_app
    _annotate(c, 9)
    assert rt.queue.idle_checks == [("5", 300)]
    rt.coordinator.release_idle_check("5")  # as if that check ran
    assert _annotate(c) == ["queued"] and rt.queue.jobs == ["5"] and rt.queue.idle_checks == [("5", 300)]


def test_a_project_sets_its_own_triggers_through_extra_params(app_factory, clock, ls_stub):
    """Label Studio sends the model connection's extra_params with every /setup: they replace TRAIN_EVERY and
    TRAIN_IDLE_SECONDS for that project only, a bad one is a 400 naming it, and a /setup without them restores
    the service's settings."""
    app, rt = app_factory(train_every=10, train_idle_seconds=300)
    c = app.test_client()
    own = {
        "project": "5.1",
        "schema": CONFIG,
        **ls_stub.link,
        "extra_params": {"train_every": 3, "train_idle_seconds": 60},
    }
    assert c.post("/setup", json=own).status_code == 200
    assert (
        c.post("/setup", json={"project": "6.1", "schema": CONFIG, **ls_stub.link, "extra_params": None}).status_code
        == 200
    )
    assert _annotate(c, 2) == ["counted"] * 2 and rt.queue.idle_checks == [("5", 60)]
    other = c.post("/webhook", json={**ANNOTATED, "project": {"id": 6}}).get_json()
    assert other["status"] == "counted" and rt.queue.idle_checks[-1] == ("6", 300)
    clock.now += 60
    assert triggers.check_idle(rt, "5")["status"] == "queued"  # quiet for the project's 60 s, not 300
    assert _annotate(c) == ["coalesced"]  # the 3rd makes a round due (10 would not): the queued one reads it

    bad = c.post("/setup", json={**own, "extra_params": {"train_every": 0}})
    assert bad.status_code == 400
    assert bad.get_json()["error"] == "extra_params train_every='0' is invalid: use an integer >= 1"
    assert rt.project_settings("5").train_every == 3  # a refused /setup changes nothing
    assert c.post("/setup", json={"project": "5.1", "schema": CONFIG, **ls_stub.link}).status_code == 200
    assert (rt.project_settings("5").train_every, rt.project_settings("5").train_idle_seconds) == (10, 300)


@pytest.mark.parametrize("kind", ["redis", "local"])
def test_the_idle_slot_and_the_quiet_time(kind, redis_conn):
    coord = RedisCoordinator(redis_conn, lock_ttl=5) if kind == "redis" else LocalCoordinator()
    assert coord.release_idle_check("1") == float("inf")  # never annotated
    assert coord.claim_idle_check("1", ttl=10) is True
    assert coord.claim_idle_check("1", ttl=10) is False
    assert coord.claim_idle_check("2", ttl=10) is True  # per project
    coord.mark_annotated("1")
    time.sleep(0.3)
    assert 0.25 < coord.release_idle_check("1") < 2.0
    assert coord.claim_idle_check("1", ttl=10) is True


def test_embedded_mode_runs_the_check_on_a_timer(settings):
    """No REDIS_URL: a timer thread of the API process runs the check, which enqueues the round in process."""
    rounds = []

    class Recorded(ThreadQueue):
        def enqueue(self, project, job_id=None):  # the round itself needs Label Studio; the decision is what is tested
            rounds.append((project, time.monotonic()))
            return "train-recorded"

    rt = Runtime.build(replace(settings, train_every=10, train_idle_seconds=1))
    rt.queue = Recorded(rt)
    rt.store.write_project("5", {"label_config": CONFIG})
    from beal_backend.service.app import create_app

    c = create_app(rt).test_client()
    t0 = time.monotonic()
    assert _annotate(c, 2) == ["counted", "counted"]
    deadline = time.monotonic() + 10
    while not rounds and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p, _ in rounds] == ["5"] and rounds[0][1] - t0 >= 1.0


def test_a_beal_worker_schedules_the_check_and_it_enqueues_the_round(redis_conn, settings, monkeypatch):
    """REDIS_URL: the check is a delayed rq job; the scheduler of a worker started as `beal worker` starts it
    (with_scheduler=True), and the check, rebuilt from the worker's environment, enqueues the round."""
    s = replace(settings, redis_url=REDIS_TEST_URL, train_every=10, train_idle_seconds=1)
    for env, value in {"REDIS_URL": REDIS_TEST_URL, "MODEL_DIR": s.model_dir, "TRAIN_IDLE_SECONDS": "1"}.items():
        monkeypatch.setenv(env, value)
    rt = build_runtime(s)
    rt.store.write_project("5", {"label_config": CONFIG})
    from beal_backend.service.app import create_app

    c = create_app(rt).test_client()
    assert _annotate(c, 3) == ["counted"] * 3
    q = Queue(s.queue_name, connection=redis_conn, serializer=JSONSerializer)
    scheduled = ScheduledJobRegistry(queue=q)
    [job_id] = scheduled.get_job_ids()
    check = q.fetch_job(job_id)
    assert check.func_name == "beal_backend.wiring.check_idle" and q.count == 0
    assert check.retries_left == 3  # a check that failed (e.g. Redis away) is retried: its events stay covered

    # due after 1 s plus the 1 s that rq may round off; a burst worker's scheduler enqueues due jobs once
    time.sleep(2.2)
    assert cli.main(["worker", "--burst"]) == 0
    assert q.fetch_job(job_id).return_value()["status"] == "queued"
    # the round it enqueued ran next, stopped where this test gave it no Label Studio, and waits for its retry
    [round_id] = ScheduledJobRegistry(queue=q).get_job_ids()
    round_job = q.fetch_job(round_id)
    assert round_job.func_name == "beal_backend.wiring.train_project" and list(round_job.args) == ["5"]
    assert round_job.retries_left == 2 and FailedJobRegistry(queue=q).get_job_ids() == []
    failed = rt.coordinator.statuses()["5"]["current"]
    assert failed["id"] == round_id and "no Label Studio URL and API key for project 5" in failed["error"]
    assert failed["retry_at"] > time.time() + 20  # ROUND_RETRY_SECONDS: the first retry 30 s after the failure
