"""Issue #15 items 6-7: one canonical project id everywhere; bad JSON of any shape is a 400."""

from __future__ import annotations

import json

import pytest

from beal_backend.service.model import BadRequest, project_id

from .conftest import CONFIG


@pytest.mark.parametrize("raw, canonical", [("2", "2"), ("2.1795564498", "2"), (2, "2"), ("12.0", "12")])
def test_label_studio_forms_map_to_one_id(raw, canonical):
    assert project_id(raw) == canonical


@pytest.mark.parametrize(
    "raw", ["02", "002", "02.17", "1.2.3", 1.5, 1e3, "1e3", 0, -2, "0", " 2", "2.", True, [2], {"id": 2}]
)
def test_other_project_forms_are_refused(raw):
    with pytest.raises(BadRequest, match="invalid project"):
        project_id(raw)


def test_leading_zero_project_never_creates_a_second_store(app_factory, published):
    app, rt = app_factory()
    c = app.test_client()
    for raw in ("07", "007.5", "7.1.1"):
        r = c.post("/setup", json={"project": raw, "schema": CONFIG})
        assert r.status_code == 400 and "invalid project" in r.get_json()["error"]
        r = c.post("/predict", json={"project": raw, "tasks": [], "label_config": CONFIG})
        assert r.status_code == 400
        r = c.post("/webhook", json={"action": "START_TRAINING", "project": {"id": raw}})
        assert r.status_code == 400
        assert c.get(f"/projects/{raw}/versions").status_code == 400
        assert c.post(f"/projects/{raw}/rollback", json={"version": published[0]}).status_code == 400
    for raw in (1.5, 1e3):
        assert c.post("/webhook", json={"action": "START_TRAINING", "project": {"id": raw}}).status_code == 400
    assert rt.store.projects() == ["7"] and rt.queue.jobs == []
    assert c.get("/projects/7.123/versions").get_json()["project"] == "7"  # answered under its canonical id
    assert c.post("/setup", json={"project": "7.99", "schema": CONFIG}).get_json() == {"model_version": published[0]}


def test_foreign_non_canonical_folders_are_not_projects(settings):
    from beal_backend.store.versions import ModelStore

    store = ModelStore(settings.model_dir)
    for name in ("2", "02", "10", "x"):
        (store.root / name).mkdir(parents=True)
    assert store.projects() == ["2", "10"]


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


@pytest.mark.parametrize("path", ["/setup", "/predict", "/webhook", "/projects/7/rollback"])
@pytest.mark.parametrize("depth", [975, 5000, 65])
def test_deeply_nested_body_is_400_not_500(app_factory, path, depth, caplog):
    c = app_factory()[0].test_client()
    r = c.post(path, data=nested(depth), content_type="application/json")
    assert r.status_code == 400, r.get_json()
    assert "nested deeper than 64 levels" in r.get_json()["error"]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def test_nesting_within_the_limit_still_reaches_the_handler(app_factory, ls_stub):
    c = app_factory()[0].test_client()
    body = json.loads(nested(60))
    # "context": a key /setup does not read
    r = c.post("/setup", json={"project": "3", "schema": CONFIG, **ls_stub.link, "context": body})
    assert r.status_code == 200


@pytest.mark.parametrize("data", [b"[" * 100000, b'{"a": [' * 3000, b"\xff\xfe", b"nul", b'{"project": NaN', b"123"])
def test_any_bad_json_is_400(app_factory, data):
    c = app_factory()[0].test_client()
    for path in ("/setup", "/predict", "/webhook", "/projects/7/rollback"):
        r = c.post(path, data=data, content_type="application/json")
        assert r.status_code == 400 and "error" in r.get_json()


# ---- item 8: texts are clipped before tokenising; item 9: /predict answers in bounded time and caches


def test_clipped_text_tokenises_to_the_same_word_pieces(tiny_trained):
    from beal_backend.engine.batching import (
        CHARS_PER_WORDPIECE,
        MAX_WORDPIECES,
        clip_text,
        encode,
    )

    tok = tiny_trained.tokenizer
    words = ["river", "apple", "x" * 150, "naïve", "a.b.c", "\n\n\t  ", "日本語"]
    long = " ".join(words[i % len(words)] + " " * (i % 7) for i in range(40000))  # ~370k characters
    clipped = clip_text(long)
    assert len(clipped) <= (MAX_WORDPIECES + 1) * (CHARS_PER_WORDPIECE + 1) + 150 < len(long) // 5
    full = tok([long], truncation=True, max_length=MAX_WORDPIECES + 2)["input_ids"][0]
    assert encode(tok, [long]).ids[0] == full
    assert clip_text("short  text\n") == "short  text\n"  # texts under the bound are untouched


def test_encode_never_hands_the_tokenizer_a_megabyte(tiny_trained):
    from beal_backend.engine.batching import encode

    seen = []

    def spy(texts, **kw):
        seen.extend(len(t) for t in texts)
        return tiny_trained.tokenizer(texts, **kw)

    spy.pad_token_id = tiny_trained.tokenizer.pad_token_id
    encode(spy, ["word " * 200_000, "short"])
    assert seen[0] <= 52_000 and seen[1] == 5  # (510 + 1) * 101 characters, not 1,000,000


@pytest.fixture
def fake_scoring(monkeypatch):
    """Replaces the model's scoring with a recorder: the policy under test is how /predict splits the work."""
    from beal_backend.worker import pool_scores

    calls = []

    def score_pool(trained, task_ids, texts, cfg, on_progress=None):
        calls.append((len(task_ids), cfg.passes))
        return {"tasks": {str(t): {"score": 0.25, "ec": 0.5, "choices": ["fruit"]} for t in task_ids}}

    monkeypatch.setattr(pool_scores, "score_pool", score_pool)
    return calls


def predict_body(n, start=1000):
    return {
        "project": "7.1",
        "label_config": CONFIG,
        "tasks": [{"id": start + i, "data": {"text": f"text {i}"}} for i in range(n)],
    }


def test_large_requests_get_fewer_passes(app_factory, published, fake_scoring):
    c = app_factory(predict_passes=10)[0].test_client()
    assert c.post("/predict", json=predict_body(300)).status_code == 200
    assert {p for _, p in fake_scoring} == {10}  # up to 1000 uncached texts: every pass
    fake_scoring.clear()
    c.post("/predict", json=predict_body(2500, start=5000))
    assert {p for _, p in fake_scoring} == {4}  # 10 * 1000 // 2500
    fake_scoring.clear()
    c.post("/predict", json=predict_body(20000, start=50000))
    assert {p for _, p in fake_scoring} == {1}


def test_predict_stops_at_its_deadline_and_caches_what_it_scored(app_factory, published, fake_scoring):
    c = app_factory(predict_seconds=1e-9)[0].test_client()
    results = c.post("/predict", json=predict_body(600)).get_json()["results"]
    assert fake_scoring == [
        (256, 3)
    ]  # PREDICT_PASSES=3 (fixture); the first chunk always; then the deadline had passed
    assert all(r and r["score"] == 0.25 for r in results[:256]) and results[256:] == [[]] * 344
    fake_scoring.clear()
    again = c.post("/predict", json=predict_body(256)).get_json()["results"]
    assert fake_scoring == [] and again == results[:256]  # cached: no scoring at all
