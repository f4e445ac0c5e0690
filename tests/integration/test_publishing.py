"""Making a version serve: a fault between any two steps of a publish (the lock lost, an error, a kill) leaves
Label Studio and the store agreeing on the serving version once the next job has reconciled them; rollback
holds the project lock; retention keeps the rollback targets; /versions says which version never served."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from beal_backend.labelstudio.client import LabelStudioError, Task
from beal_backend.labelstudio.label_config import parse_label_config
from beal_backend.store.versions import ModelStore
from beal_backend.wiring import Runtime, scoring_config
from beal_backend.worker import pool_scores, promotion, publishing
from beal_backend.worker import rounds as jobs
from beal_backend.worker.local_coordination import LocalCoordinator
from beal_backend.worker.locks import Lease, LockLost
from beal_backend.worker.redis_coordination import RedisCoordinator

from .conftest import CONFIG, LABELS, POOL, TEXTS

pytestmark = pytest.mark.redis
# the versions below are the session's tiny BERT (labels A, B: tests/conftest.py): seconds less per test than MiniLM
TINY_CONFIG = CONFIG.replace('"fruit"', '"A"').replace('"water"', '"B"')
PROMOTED = {"promotion": {"promoted": True, "reason": "first model of the project"}}
REJECTED = {"promotion": {"promoted": False, "reason": "worse than v1 by more than 0.02: micro_f1 0.1 vs 0.9"}}


class Killed(BaseException):
    """The process dies here: no ``except Exception`` runs (what kill -9 leaves behind)."""


class LabelStudio:
    """Label Studio's state as the publish steps change it; ``fail`` = (method, before|after, exception)."""

    def __init__(self, shown=None, fail=(None, None, None), config=TINY_CONFIG):
        self.shown, self.predictions, self.fail, self.config = shown, {}, fail, config
        self.calls: list[str] = []

    def _step(self, name, when):
        if self.fail[:2] == (name, when):
            raise self.fail[2]

    def label_config(self, pid):
        return self.config

    def tasks(self, pid, annotations=True):
        labeled = [Task(i + 1, {"text": t}, [_annotation(ls)]) for i, (t, ls) in enumerate(zip(TEXTS, LABELS))]
        return labeled + [Task(tid, {"text": text}, []) for tid, text in POOL.items()]

    def push_predictions(self, pid, version, predictions):
        self.calls.append("push")
        self._step("push", "before")
        self.predictions[version] = len(predictions)
        return len(predictions)

    def set_model_version(self, pid, version):
        self.calls.append("switch")
        self._step("switch", "before")
        self.shown = version
        self._step("switch", "after")  # applied, but the reply was lost

    def model_version(self, pid):
        return self.shown

    def model_versions(self, pid):
        self.calls.append("list")
        return dict(self.predictions)

    def delete_model_version(self, pid, version, n_predictions=0):
        self.calls.append(f"delete {version}")
        return self.predictions.pop(version)


def _annotation(labels):
    return {"result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": labels}}]}


class FaultyLease(Lease):
    """Raises ``error`` at the ``at``-th confirmed check (1-based): the lock lost, or the process killed, there."""

    def __init__(self, at=0, error=None):
        self.at, self.error, self.checks = at, error, 0

    def check(self, confirm=False):
        if confirm:
            self.checks += 1
            if self.checks == self.at:
                raise self.error


@pytest.fixture
def two_versions(settings, tiny_bert_trained):
    """Project 7: v1 current (Label Studio's state is each test's), v2 promoted, not yet published."""
    store = ModelStore(settings.model_dir)
    scores = pool_scores.score_pool(tiny_bert_trained, [101, 102], [POOL[101], POOL[102]], scoring_config(settings))
    v1 = store.publish("7", tiny_bert_trained, scores, PROMOTED)
    store.set_current("7", v1)
    v2 = store.publish("7", tiny_bert_trained, scores, PROMOTED)
    return store, v1, v2, scores


def _publish(settings, store, ls, version, scores, lease):
    rt = Runtime(settings, store, LocalCoordinator())
    return publishing.publish(rt, ls, "7", version, parse_label_config(TINY_CONFIG), scores, [101, 102], lease)


# the confirmed checks come before: 1 the push, 2 the switch, 3 CURRENT, 4 deleting stale predictions
FAULTS = {
    **{f"lock lost before step {k}": ((None, None, None), k, LockLost("taken")) for k in (1, 2, 3, 4)},
    **{f"killed before step {k}": ((None, None, None), k, Killed()) for k in (1, 2, 3, 4)},
    "push refused": (("push", "before", LabelStudioError("HTTP 502")), 0, None),
    "switch refused": (("switch", "before", LabelStudioError("HTTP 502")), 0, None),
    "switch made, reply lost": (("switch", "after", LabelStudioError("read timeout")), 0, None),
    "switch made, then killed": (("switch", "after", Killed()), 0, None),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_between_any_two_publish_steps_leaves_one_serving_version(fault, settings, two_versions):
    store, v1, v2, scores = two_versions
    fail, at, error = FAULTS[fault]
    ls = LabelStudio(shown=v1, fail=fail)
    ls.predictions[v1] = 2
    with pytest.raises((Exception, Killed)):
        _publish(settings, store, ls, v2, scores, FaultyLease(at, error))
    if store.switching("7") is None:  # no switch under way: they agree as the job left them
        assert store.current("7") == ls.shown
    # the next job on the project reconciles first (it holds the lock)
    publishing.reconcile(Runtime(settings, store, LocalCoordinator()), ls, "7", Lease())
    assert store.switching("7") is None
    assert store.current("7") == ls.shown in (v1, v2)
    if at == 4:  # the lock was lost after v2 served: another job's predictions are not deleted as stale
        assert store.current("7") == v2 and "list" not in ls.calls and v1 in ls.predictions


def test_a_lost_lock_stops_the_publish_at_the_next_step(settings, two_versions):
    store, v1, v2, scores = two_versions
    ls = LabelStudio(shown=v1)
    with pytest.raises(LockLost):
        _publish(settings, store, ls, v2, scores, FaultyLease(2, LockLost("taken")))
    assert ls.calls == ["push"] and ls.shown == v1 and store.current("7") == v1


def test_a_clean_publish_serves_and_deletes_the_old_predictions(settings, two_versions):
    store, v1, v2, scores = two_versions
    ls = LabelStudio(shown=v1)
    ls.predictions[v1] = 2
    out = _publish(settings, store, ls, v2, scores, Lease())
    assert out == {"pushed": 2, "removed_versions": [v1]}
    assert ls.calls == ["push", "switch", "list", f"delete {v1}"]
    assert store.current("7") == ls.shown == v2 and store.switching("7") is None
    assert store.publish_state("7", v2) == "served"


def test_a_round_reconciles_a_switch_its_predecessor_left(settings, two_versions, monkeypatch):
    """A worker was killed after it switched Label Studio to v2 and before it wrote CURRENT: the next round
    makes v2 current before anything else (its own candidate is then judged against v2)."""
    store, v1, v2, scores = two_versions
    ls = LabelStudio(shown=v1, fail=("switch", "after", Killed()))
    with pytest.raises(Killed):
        _publish(settings, store, ls, v2, scores, Lease())
    assert (store.current("7"), ls.shown) == (v1, v2)
    rt = Runtime(settings, store, LocalCoordinator())
    rt.client = lambda project: LabelStudio(shown=v2, config=CONFIG)
    judged_against, real = [], promotion.judge

    def judge(rt, project, *args):
        judged_against.append(rt.store.current(project))
        return real(rt, project, *args)

    monkeypatch.setattr(promotion, "judge", judge)
    jobs.run_round("7", rt)
    assert judged_against == [v2] and store.switching("7") is None


def test_rollback_holds_the_project_lock_and_stops_once_it_is_lost(settings, redis_conn, two_versions):
    store, v1, v2, _ = two_versions
    store.set_current("7", v2)

    class TakenOver(LabelStudio):
        def tasks(self, pid, annotations=True):
            redis_conn.set("beal:lock:7", "another-job")  # our lock expired and a round took it
            time.sleep(0.6)  # > one heartbeat (TTL / 3)
            return super().tasks(pid)

    ls = TakenOver(shown=v2)
    rt = Runtime(settings, store, RedisCoordinator(redis_conn, lock_ttl=1))
    rt.client = lambda project: ls
    with pytest.raises(LockLost):
        jobs.rollback("7", v1, rt)
    assert "push" not in ls.calls and ls.shown == v2 and store.current("7") == v2


def test_rollback_to_a_rejected_version_serves_it_with_a_warning(two_versions, tiny_bert_trained, app_factory):
    store, v1, _, scores = two_versions
    bad = store.publish("7", tiny_bert_trained, scores, REJECTED)
    app, rt = app_factory()
    ls = LabelStudio(shown=v1)
    rt.client = lambda project: ls
    r = app.test_client().post("/projects/7/rollback", json={"version": bad})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["warning"] == (
        f"{bad} was rejected by the quality gate (worse than v1 by more than 0.02: micro_f1 0.1 vs 0.9); "
        "it serves now anyway"
    )
    assert rt.store.current("7") == ls.shown == bad
    ok = app.test_client().post("/projects/7/rollback", json={"version": v1}).get_json()
    assert "warning" not in ok and ok["version"] == v1


def test_versions_shows_a_version_whose_push_failed_as_never_served(settings, two_versions, app_factory):
    store, v1, v2, scores = two_versions
    with pytest.raises(LabelStudioError):
        _publish(settings, store, LabelStudio(shown=v1, fail=("push", "before", LabelStudioError("HTTP 502"))), v2,
                 scores, Lease())  # fmt: skip
    v3 = store.publish("7", *_model_and_scores(store, v1), PROMOTED)
    store.note_publish("7", v3, publishing.PUBLISHING)  # its worker was killed while pushing
    app, _ = app_factory()
    listed = {v["version"]: v for v in app.test_client().get("/projects/7/versions").get_json()["versions"]}
    assert listed[v1]["status"] == "current" and "publish" not in listed[v1]
    assert listed[v2]["status"] == "unserved"
    assert listed[v2]["publish"] == "promoted, never served: push failed (LabelStudioError: HTTP 502)"
    assert listed[v3]["status"] == "unserved" and "interrupted before it served" in listed[v3]["publish"]
    store.set_current("7", v2)  # served later (e.g. a rollback to it): a rollback target like any other
    store.set_current("7", v1)
    listed = {v["version"]: v for v in app.test_client().get("/projects/7/versions").get_json()["versions"]}
    assert listed[v2]["status"] == "promoted" and "publish" not in listed[v2]


def _model_and_scores(store, version):
    return store.load("7", version), store.scores("7", version)


def test_a_round_removes_a_half_written_version_of_a_killed_job(settings, published):
    """Opening a store removes only folders untouched for LOCK_TTL; a round holds the lock, so it removes every
    ``.tmp-*`` of its project at once (a fresh one too), and leaves other projects' to their own jobs."""
    store = ModelStore(settings.model_dir)
    for project in ("7", "8"):
        (store.project_dir(project) / ".tmp-killed" / "m").mkdir(parents=True)
        (store.project_dir(project) / ".tmp-killed" / "m" / "model.safetensors").write_bytes(b"half")
    rt = Runtime(settings, store, LocalCoordinator())
    rt.client = lambda project: LabelStudio(shown=published[0], config=CONFIG)
    jobs.run_round("7", rt)
    assert not list(store.project_dir("7").glob(".tmp-*"))
    assert [p.name for p in store.project_dir("8").glob(".tmp-*")] == [".tmp-killed"]


def test_rejections_never_prune_the_rollback_targets(settings, monkeypatch):
    """The red team's case: KEEP_VERSIONS=2, two good rounds, then six rejected candidates. Kept: v2 (current),
    v1 (promoted) and the two newest rejected; rolling back to v1 works."""
    s = replace(settings, keep_versions=2)
    rt = Runtime(s, ModelStore(s.model_dir), LocalCoordinator())
    ls = LabelStudio(config=CONFIG)
    rt.client = lambda project: ls
    good = [jobs.run_round("3", rt)["version"] for _ in range(2)]
    reject = {"promoted": False, "reason": "worse", "candidate": {}, "current": None, "margin": 0.0}
    monkeypatch.setattr(promotion, "decide", lambda *a: reject)
    bad = [jobs.run_round("3", rt)["version"] for _ in range(6)]
    assert rt.store.versions("3") == [*good, *bad[-2:]] and rt.store.current("3") == good[1]
    assert jobs.rollback("3", good[0], rt)["version"] == good[0]
    assert rt.store.current("3") == ls.shown == good[0]
