"""Service fixtures: a small trained model published in a temporary store, app factories, and the fake Label Studio
clients and runtime the job tests run rounds with."""

from __future__ import annotations

import logging

import pytest

from beal_backend.config import Settings
from beal_backend.engine import training
from beal_backend.labelstudio.client import Task
from beal_backend.service.app import create_app
from beal_backend.store.versions import ModelStore
from beal_backend.wiring import Runtime, scoring_config
from beal_backend.worker import pool_scores
from beal_backend.worker.local_coordination import LocalCoordinator
from beal_backend.worker.redis_coordination import RedisCoordinator

from .. import redis_server
from ..ls_stub import LabelStudioStub

CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="label" toName="text" choice="multiple">'
    '<Choice value="fruit"/><Choice value="water"/></Choices></View>'
)
TEXTS = ["an apple a day", "the river runs", "apple by the river", "nothing here", "green apple pie", "a wide river"]
LABELS = [["fruit"], ["water"], ["fruit", "water"], [], ["fruit"], ["water"]]
POOL = {101: "apple juice", 102: "river bank", 103: "plain words"}
REDIS_TEST_URL = f"{redis_server.base_url()}/6"  # REDIS_URL, else 127.0.0.1:6379, else a private server


class InMemoryProject:
    """A Label Studio project in memory, as a round's or a rollback's client: ``tasks_`` (edit them freely), the
    scores last pushed (``pushed``, task id -> score) and the model version set (``version``)."""

    def __init__(self, tasks, config: str = CONFIG):
        self.tasks_, self.config, self.version = list(tasks), config, None
        self.pushed: dict[int, float] = {}

    def label_config(self, pid):
        return self.config

    def tasks(self, pid, annotations=True):
        return list(self.tasks_)

    def push_predictions(self, pid, version, predictions):
        self.pushed = {p["task"]: p["score"] for p in predictions}
        return len(predictions)

    def set_model_version(self, pid, version):
        self.version = version

    def model_versions(self, pid):
        return {self.version: len(self.pushed)} if self.version else {}

    def delete_model_version(self, pid, version, n_predictions=0):
        return 0


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


def _runtime(settings, coordinator, client):
    rt = Runtime(settings, ModelStore(settings.model_dir), coordinator)
    rt.client = lambda project: client
    return rt


@pytest.fixture(scope="session")
def tiny_trained():
    cfg = training.TrainConfig(epochs=1, min_steps=0, min_val=100, seed=1)
    return training.train(TEXTS, LABELS, ["fruit", "water"], cfg)


@pytest.fixture
def settings(tmp_path):
    # no idle checks unless a test asks: their timers would outlive the test
    return Settings(
        model_dir=str(tmp_path / "store"),
        mc_passes=4,
        mc_scope="full",
        seed=5,
        predict_passes=3,
        epochs=1,
        min_steps=0,  # a finetune round here trains one epoch of the few texts
        train_idle_seconds=0,
    )


@pytest.fixture
def published(settings, tiny_trained):
    """Project "7" set up with CONFIG and a current version scored on POOL (101, 102; 103 left uncached)."""
    store = ModelStore(settings.model_dir)
    store.write_project("7", {"label_config": CONFIG})
    scores = pool_scores.score_pool(tiny_trained, [101, 102], [POOL[101], POOL[102]], scoring_config(settings))
    version = store.publish("7", tiny_trained, scores, {"n_annotations": 6, "n_pool": 2})
    store.set_current("7", version)
    return version, scores


@pytest.fixture
def redis_conn():
    with redis_server.flushed(REDIS_TEST_URL) as conn:
        yield conn


@pytest.fixture(params=["redis", "local"])
def coord(request, redis_conn):
    """Each coordinator the service can run with: Redis (shared by workers) and in-process."""
    return RedisCoordinator(redis_conn, lock_ttl=5) if request.param == "redis" else LocalCoordinator()


class RecordingQueue:
    """Stands in for the job queue where a test only checks what the API enqueued."""

    def __init__(self):
        self.jobs = []
        self.embedding_jobs = []
        self.idle_checks = []  # (project, delay in s)

    def enqueue(self, project, job_id=None):
        self.jobs.append(project)
        return job_id or f"job-{len(self.jobs)}"

    def enqueue_embedding(self, project, job_id=None):
        self.embedding_jobs.append(project)
        return job_id or f"embed-{len(self.embedding_jobs)}"

    def alive(self, job_id):  # a recorded job never runs, so it waits for ever
        return True

    def enqueue_idle_check(self, project, delay):
        self.idle_checks.append((project, delay))
        return f"idle-{len(self.idle_checks)}"


@pytest.fixture
def app_factory(settings):
    def make(rt=None, **overrides):
        from dataclasses import replace

        s = replace(settings, **overrides)
        rt = rt or Runtime.build(s)
        if rt.queue is None:
            rt.queue = RecordingQueue()
        return create_app(rt), rt

    return make


@pytest.fixture
def ls_stub():
    stub = LabelStudioStub()
    yield stub
    stub.close()


@pytest.fixture
def info_logs(caplog):
    """INFO records in ``caplog`` (a module asks with ``pytest.mark.usefixtures("info_logs")``)."""
    caplog.set_level(logging.INFO)
