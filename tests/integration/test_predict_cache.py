"""/predict's score cache: a cached score serves only the text it was computed on; lone surrogates cost one
task, not the batch; one version's model load never holds another's /predict."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace

import pytest

from beal_backend.labelstudio.client import Task
from beal_backend.labelstudio.label_config import parse_label_config
from beal_backend.store.versions import SCORES, ModelStore
from beal_backend.wiring import scoring_config
from beal_backend.worker import examples, pool_scores, publishing
from beal_backend.worker import rounds as jobs
from beal_backend.worker.locks import Lease

from .conftest import CONFIG, POOL, InMemoryProject


def body(*tasks, project="7"):
    return {"tasks": [{"id": i, "data": {"text": t}} for i, t in tasks], "project": project, "label_config": CONFIG}


def fresh_score(trained, settings, text: str) -> float:
    """What /predict computes for an uncached ``text``: PREDICT_PASSES passes of the same scoring."""
    cfg = replace(scoring_config(settings), passes=settings.predict_passes)
    return pool_scores.score_pool(trained, [0], [text], cfg)["tasks"]["0"]["score"]


def scores_of(response) -> list:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [r["score"] if r else None for r in response.get_json()["results"]]


def test_a_round_stores_each_score_with_the_hash_of_its_text(published):
    _, scores = published
    assert scores["tasks"]["101"]["text_sha256"] == hashlib.sha256(b"apple juice").hexdigest()
    assert scores["tasks"]["102"]["text_sha256"] == hashlib.sha256(b"river bank").hexdigest()


def test_a_score_pre_seeded_with_made_up_text_is_never_served_for_the_real_text(
    app_factory, published, tiny_trained, settings
):
    """/predict for task 500 (not in Label Studio yet) with made-up text, then for the real task 500: the real
    text's own score. Likewise a stored round score (task 101, "apple juice") is not served for an edited text."""
    app, _ = app_factory()
    c = app.test_client()
    fake, real = "green apple pie", "a wide river"
    seeded = scores_of(c.post("/predict", json=body((500, fake))))[0]
    assert seeded == pytest.approx(fresh_score(tiny_trained, settings, fake))
    expected = fresh_score(tiny_trained, settings, real)
    assert abs(expected - seeded) > 1e-3  # the two texts score apart: serving the seeded one would show
    assert scores_of(c.post("/predict", json=body((500, real))))[0] == pytest.approx(expected)
    assert scores_of(c.post("/predict", json=body((500, real))))[0] == pytest.approx(expected)  # now cached

    stored = published[1]["tasks"]["101"]["score"]
    edited = scores_of(c.post("/predict", json=body((101, "river bank"), (102, "river bank"))))
    assert edited[0] == pytest.approx(fresh_score(tiny_trained, settings, "river bank"))
    assert edited[0] != stored and edited[1] == published[1]["tasks"]["102"]["score"]  # 102's own text: cached


def test_scores_stored_before_text_hashes_are_recomputed(app_factory, published, tiny_trained, settings):
    """A version written before scores carried a hash: its text cannot be checked, so it is scored again."""
    version, scores = published
    path = ModelStore(settings.model_dir).version_dir("7", version) / SCORES
    legacy = {**scores, "tasks": {k: {f: v[f] for f in ("score", "ec", "choices")} for k, v in scores["tasks"].items()}}
    path.write_text(json.dumps(legacy))
    app, _ = app_factory()
    got = scores_of(app.test_client().post("/predict", json=body((101, POOL[101]))))[0]
    assert got == pytest.approx(fresh_score(tiny_trained, settings, POOL[101]))
    assert got != scores["tasks"]["101"]["score"]  # MC_PASSES=4 stored, PREDICT_PASSES=3 recomputed


def test_a_lone_surrogate_costs_its_task_nothing_and_the_batch_nothing(app_factory, published, tiny_trained, settings):
    """JSON allows "\\ud800"; the tokenizer does not. The text is read with U+FFFD in its place."""
    app, _ = app_factory()
    raw = json.dumps(body((101, POOL[101]), (9, "apple \ud800 pie")))  # ASCII: the escape "\\ud800" is sent
    r = app.test_client().post("/predict", data=raw, content_type="application/json")
    got = scores_of(r)
    assert got[0] == published[1]["tasks"]["101"]["score"]
    assert got[1] == pytest.approx(fresh_score(tiny_trained, settings, "apple \ufffd pie"))


def test_a_rounds_texts_have_lone_surrogates_replaced():
    schema = parse_label_config(CONFIG)
    result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["fruit"]}}]
    tasks = [Task(1, {"text": "apple\ud800"}, [{"result": result}]), Task(2, {"text": "\udfffriver"}, [])]
    ex = examples.collect_examples(tasks, schema, 1000)
    assert ex.texts == ["apple\ufffd"] and ex.pool_texts == ["\ufffdriver"]
    assert schema.text_of({"text": "\ud83d\ude00 ok"}) == ("\U0001f600 ok", None)  # a real pair is kept


def test_a_slow_model_load_for_one_project_never_delays_another(app_factory, published, tiny_trained, settings):
    """Project 7's model load is held by the test; meanwhile project 8 (loading its own model) and 7's cached
    tasks are answered. Then 7's uncached task is answered once its load ends."""
    store = ModelStore(settings.model_dir)
    store.write_project("8", {"label_config": CONFIG})
    store.set_current("8", store.publish("8", tiny_trained, published[1], {"n_annotations": 6}))
    app, rt = app_factory()
    release, loading_7 = threading.Event(), threading.Event()
    real_load = rt.store.load

    def load(project, version, device=None):
        if project == "7":
            loading_7.set()
            assert release.wait(120), "the test never released project 7's load"
        return real_load(project, version, device)

    rt.store.load = load
    answers: dict = {}

    def call(name, request):
        answers[name] = scores_of(app.test_client().post("/predict", json=request))

    slow = threading.Thread(target=call, args=("7 uncached", body((103, POOL[103]))))
    try:
        slow.start()
        assert loading_7.wait(10)
        others = [
            threading.Thread(target=call, args=("8 uncached", body((103, POOL[103]), project="8"))),
            threading.Thread(target=call, args=("7 cached", body((101, POOL[101])))),
        ]
        for t in others:
            t.start()
        for t in others:
            t.join(20)
        assert [t.is_alive() for t in others] == [False, False], "a request waited for project 7's load"
        assert "7 uncached" not in answers
    finally:
        release.set()
        slow.join(30)
    expected = fresh_score(tiny_trained, settings, POOL[103])
    assert answers["8 uncached"] == [pytest.approx(expected)]
    assert answers["7 cached"] == [published[1]["tasks"]["101"]["score"]]
    assert answers["7 uncached"] == [pytest.approx(expected)]


class SwitchRecorder:
    """The Label Studio calls ``publishing.publish`` makes, recording which versions this process had loaded
    when Label Studio was switched (not a protocol test: the order of our own steps)."""

    def __init__(self, loads):
        self.loads, self.loaded_at_switch = loads, None

    def push_predictions(self, pid, version, predictions):
        return len(predictions)

    def set_model_version(self, pid, version):
        self.loaded_at_switch = list(self.loads)

    def model_versions(self, pid):
        return {}


def test_a_round_in_the_api_process_loads_its_version_before_label_studio_serves_it(
    app_factory, published, tiny_trained, settings
):
    app, rt = app_factory()  # embedded mode: rounds run in this process, on this runtime
    loads: list = []
    real_load = rt.store.load
    rt.store.load = lambda project, version, device=None: (loads.append(version), real_load(project, version))[1]
    version = rt.store.publish("7", tiny_trained, published[1], {"n_annotations": 6})
    ls = SwitchRecorder(loads)
    publishing.publish(rt, ls, "7", version, parse_label_config(CONFIG), published[1], [101, 102], Lease())
    assert ls.loaded_at_switch == [version]
    r = app.test_client().post("/predict", json=body((103, POOL[103])))
    assert scores_of(r) == [pytest.approx(fresh_score(tiny_trained, settings, POOL[103]))]
    assert r.get_json()["model_version"] == version and loads == [version]  # the request found it loaded


def test_a_rollback_rescores_a_task_whose_text_was_edited(app_factory, published, tiny_trained, settings, monkeypatch):
    version, scores = published
    _, rt = app_factory()
    edited = "river bank, edited after the round"
    ls = InMemoryProject([Task(101, {"text": POOL[101]}, []), Task(102, {"text": edited}, [])])
    monkeypatch.setattr(rt, "client", lambda project: ls)
    answer = jobs.rollback("7", version, rt)
    assert answer["rescored"] == 1
    assert ls.pushed[101] == scores["tasks"]["101"]["score"]  # its text is unchanged: the stored score
    expected = pool_scores.score_pool(tiny_trained, [102], [edited], scoring_config(settings))
    assert ls.pushed[102] == pytest.approx(expected["tasks"]["102"]["score"])
    assert ls.pushed[102] != scores["tasks"]["102"]["score"]
