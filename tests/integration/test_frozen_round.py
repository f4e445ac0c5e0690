"""A whole round with the frozen learner against a stand-in Label Studio client: the TASKS_CREATED
webhook's coalesced embedding job fills the cache, the round then embeds only what is new, drops rows of
deleted or edited texts, and publishes a version /predict can serve."""

from __future__ import annotations

import numpy as np
import pytest

from beal_backend.config import Settings
from beal_backend.engine import learners
from beal_backend.engine.feature_cache import EmbeddingCache
from beal_backend.labelstudio.client import Task
from beal_backend.service.model import BealModel
from beal_backend.wiring import Runtime
from beal_backend.worker import embedding, pool_scores
from beal_backend.worker import rounds as jobs
from tests.conftest import synthetic_texts

from .conftest import InMemoryProject

CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="label" toName="text" choice="multiple">'
    '<Choice value="A"/><Choice value="B"/></Choices></View>'
)


USABLE = 27  # of the 30 tasks: 3 of the 12 annotated ones have an empty result and are left out (README)


def labeled_tasks(texts, label_sets, n_labeled) -> list[Task]:
    """One task per text from id 1000, the first ``n_labeled`` with their labels as an annotation."""
    tasks = []
    for i, (t, y) in enumerate(zip(texts, label_sets)):
        result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": y}}]
        tasks.append(Task(1000 + i, {"text": t}, [{"result": result}] if i < n_labeled else []))
    return tasks


class Queue:
    def __init__(self):
        self.jobs = []

    def enqueue(self, project, job_id=None):
        self.jobs.append(("train", project))
        return "t"

    def enqueue_embedding(self, project, job_id=None):
        self.jobs.append(("embed", project))
        return "e"

    def alive(self, job_id):
        return True


def frozen_runtime(tmp_path, encoder_dir, monkeypatch, n_texts, n_labeled, **settings):
    """A frozen-learner runtime on the tiny encoder whose Label Studio is a ``InMemoryProject`` of ``n_texts``
    synthetic texts, the first ``n_labeled`` annotated (``runtime.fake``), and whose queue records."""
    runtime = Runtime.build(
        Settings(
            model_dir=str(tmp_path / "store"),
            learner="frozen",
            encoder=str(encoder_dir),
            pooling="cls",
            label_studio_url="http://ls",
            label_studio_api_key="k",
            **settings,
        )
    )
    runtime.queue = Queue()
    texts, label_sets = synthetic_texts(n_texts, seed=0)
    runtime.fake = InMemoryProject(labeled_tasks(texts, label_sets, n_labeled), CONFIG)
    monkeypatch.setattr(runtime, "client", lambda project: runtime.fake)
    return runtime


@pytest.fixture
def rt(tmp_path, tiny_encoder_dir, monkeypatch):
    # 30 texts, 12 annotated: tasks 0, 4 and 8 are annotated with no choice, so left out
    runtime = frozen_runtime(tmp_path, tiny_encoder_dir, monkeypatch, 30, 12, min_val=100, mc_passes=4, seed=2)
    calls = []
    real_embed = learners.embed
    monkeypatch.setattr(
        learners, "embed", lambda enc, tok, texts, *a: (calls.append(list(texts)), real_embed(enc, tok, texts, *a))[1]
    )
    runtime.embed_calls = calls
    return runtime


def test_tasks_created_queues_one_embedding_job_and_coalesces(rt):
    model = BealModel(rt)
    payload = {"project": {"id": 7}}
    assert model.fit("TASKS_CREATED", payload)["status"] == "queued"
    assert model.fit("TASKS_CREATED", payload) == {"status": "coalesced", "project": "7", "job": "embedding"}
    assert rt.queue.jobs == [("embed", "7")]
    out = embedding.embed_tasks("7", rt)  # the worker runs it: the waiting slot is free again
    assert out["outcome"] == "embedded" and out["n_texts"] == USABLE and out["embedded"] == USABLE
    assert model.fit("TASKS_CREATED", payload)["status"] == "queued"
    assert rt.coordinator.is_pending(embedding.embed_key("7")) and not rt.coordinator.is_pending(
        "7"
    )  # training untouched


def test_finetune_deployment_queues_the_import_job_which_only_scores(rt):
    from dataclasses import replace

    rt.settings = replace(rt.settings, learner="finetune")
    assert BealModel(rt).fit("TASKS_CREATED", {"project": {"id": 7}})["status"] == "queued"
    out = embedding.embed_tasks("7", rt)  # no feature cache to fill; no version yet to score with
    assert out == {"outcome": "scored", "new_tasks": {"scored": 0, "reason": "no model yet"}}
    assert rt.queue.jobs == [("embed", "7")] and rt.embed_calls == []


def test_round_embeds_only_what_the_import_job_missed_and_never_reuses_stale_features(rt):
    embedding.embed_tasks("7", rt)
    assert [len(c) for c in rt.embed_calls] == [USABLE]

    rt.fake.tasks_.append(Task(2000, {"text": "apple near the river"}, []))  # imported after the job
    first = jobs.run_round("7", rt)
    assert first["outcome"] == "trained" and first["n_pool"] == 19
    assert rt.embed_calls[1:] == [["apple near the river"]]  # the round embedded just the new task
    meta = rt.store.metadata("7", first["version"])
    assert meta["learner"] == "frozen" and rt.store.scores("7", first["version"])["scope"] == "head"

    # an edited and a deleted task: the edited text is embedded anew, the deleted one leaves the cache
    edited = rt.fake.tasks_[20]
    rt.fake.tasks_[20] = Task(edited.id, {"text": edited.data["text"] + " apple"}, [])
    del rt.fake.tasks_[21]
    second = jobs.run_round("7", rt)
    assert rt.embed_calls[2:] == [[edited.data["text"] + " apple"]]
    cache = EmbeddingCache(
        rt.store.project_dir("7") / jobs.EMBEDDINGS, rt.train.encoder, "cls", rt.train.max_wordpieces
    )
    assert cache.size() == USABLE + 1 - 1  # one imported, one deleted, one edited (old row dropped, new row added)

    # Label Studio got EC / H_J of the cached features; the stored version reproduces them for /predict
    pool = [t for t in rt.fake.tasks_ if not t.annotations]
    loaded = rt.store.load("7", second["version"])
    served = pool_scores.score_pool(loaded, [t.id for t in pool], [t.data["text"] for t in pool], rt.scoring)["tasks"]
    for t in pool:
        assert rt.fake.pushed[t.id] == pytest.approx(served[str(t.id)]["score"], abs=1e-5)
    assert np.all([0.0 <= s <= 1.0 for s in rt.fake.pushed.values()])


def test_rq_embedding_jobs_wait_in_their_own_lower_queue(redis_conn):
    import rq
    from rq.serializers import JSONSerializer

    from beal_backend.worker.queues import RQQueue, embedding_queue_name

    q = RQQueue(redis_conn, "beal-training", 60)
    job_id = q.enqueue_embedding("7")
    low = rq.Queue(embedding_queue_name("beal-training"), connection=redis_conn, serializer=JSONSerializer)
    assert low.job_ids == [job_id] and low.name == "beal-training-embedding"
    assert rq.Queue("beal-training", connection=redis_conn, serializer=JSONSerializer).job_ids == []
    assert low.fetch_job(job_id).func_name == "beal_backend.wiring.embed_project"


def test_embedded_queue_runs_waiting_rounds_before_embedding_jobs(monkeypatch):
    import threading
    from types import SimpleNamespace

    from beal_backend.worker import queues

    ran, gate = [], threading.Event()

    def fake_round(project, rt, job_id, retry_in=None):
        ran.append(("train", project))
        gate.wait(5)  # the first round holds the worker while more jobs queue up
        return {"outcome": "trained"}

    monkeypatch.setattr(queues, "attempt_round", fake_round)
    monkeypatch.setattr(queues, "embed_tasks", lambda project, rt, job_id: ran.append(("embed", project)))
    q = queues.ThreadQueue(runtime=SimpleNamespace(settings=Settings()))
    q.enqueue("1")
    while not ran:
        threading.Event().wait(0.01)
    q.enqueue_embedding("2")
    q.enqueue("3")
    q.enqueue_embedding("4")
    gate.set()
    q.join()
    assert ran == [("train", "1"), ("train", "3"), ("embed", "2"), ("embed", "4")]


def test_round_with_another_strategy_pushes_its_order_and_keeps_the_mean_ec(rt):
    from dataclasses import replace

    rt.settings = replace(rt.settings, strategy="coreset")
    out = jobs.run_round("7", rt)
    scores = rt.store.scores("7", out["version"])
    assert scores["strategy"] == "coreset"
    pushed = sorted(rt.fake.pushed.values())
    assert pushed == pytest.approx([k / 17 for k in range(18)])  # 18 unlabeled tasks ranked 0, 1/17, ..., 1
    ec = np.array([v["ec"] for v in scores["tasks"].values()])
    meta = rt.store.metadata("7", out["version"])
    assert meta["mean_score"] == pytest.approx(float(np.mean(ec)) / 1.5)  # EC / H_2, not the mean rank 0.5
    # the status page's EC histogram shows EC / H_J too, not the ranks
    shown = BealModel(rt).status_projects()[0]["ec_scores"]
    assert sorted(shown) == pytest.approx(sorted(ec / 1.5))
