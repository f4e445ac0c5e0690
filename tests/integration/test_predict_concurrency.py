"""/predict under gunicorn-style threads: requests that score in the request share one cached model."""

from __future__ import annotations

import threading

from beal_backend.service.model import BealModel

from .conftest import CONFIG

WORDS = ["apple", "river", "pie", "bank", "water", "fruit", "juice", "stream", "orchard", "boat"]


def body(i: int) -> dict:
    # uncached tasks (ids outside the scored pool), a different text mix per request
    texts = [" ".join(WORDS[(i + k) % len(WORDS)] for k in range(j, j + 3 + i % 4)) for j in range(3)]
    return {
        "tasks": [{"id": 1000 + 10 * i + j, "data": {"text": t}} for j, t in enumerate(texts)],
        "project": "7",
        "label_config": CONFIG,
    }


def scores(response) -> list[float]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [r["score"] for r in response.get_json()["results"]]


def test_concurrent_uncached_predicts_equal_the_same_calls_one_by_one(app_factory, published, monkeypatch):
    """8 threads x uncached /predict (MC dropout, full scope, in the request) give exactly the scores of the
    same calls made one after another: no request may switch dropout or reseed the RNG under another. The
    threads use a second app, whose score cache is empty: every threaded call scores its texts itself."""
    scored_in = []  # the thread of every call that scored texts in the request
    score = BealModel._score_bounded

    def spy(self, *args, **kwargs):
        scored_in.append(threading.get_ident())
        return score(self, *args, **kwargs)

    monkeypatch.setattr(BealModel, "_score_bounded", spy)
    sequential, _ = app_factory(predict_passes=24)
    one_by_one = [scores(sequential.test_client().post("/predict", json=body(i))) for i in range(8)]
    app, _ = app_factory(predict_passes=24)
    scored_in.clear()
    start, threaded = threading.Barrier(8), [None] * 8

    def call(i):
        client = app.test_client()
        start.wait()
        threaded[i] = scores(client.post("/predict", json=body(i)))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert threaded == one_by_one
    assert len(scored_in) == 8 and threading.get_ident() not in scored_in  # each thread scored, none hit a cache
    assert len({s for call in one_by_one for s in call}) > 8  # the calls really scored different texts
