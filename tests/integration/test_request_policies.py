"""Issue #15 items 6-7: one canonical project id everywhere; bad JSON of any shape is a 400."""

from __future__ import annotations

import json

import pytest

from beal_backend.service import BadRequest, project_id

from .conftest import CONFIG


@pytest.mark.parametrize("raw, canonical", [("2", "2"), ("2.1795564498", "2"), (2, "2"), ("12.0", "12")])
def test_label_studio_forms_map_to_one_id(raw, canonical):
    assert project_id(raw) == canonical


@pytest.mark.parametrize("raw", ["02", "002", "02.17", "1.2.3", 1.5, 1e3, "1e3", 0, -2, "0", " 2", "2.", True, [2], {"id": 2}])
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
    assert c.post("/setup", json={"project": "7.99", "schema": CONFIG}).get_json() == {"model_version": published[0]}


def test_foreign_non_canonical_folders_are_not_projects(settings):
    from beal_backend.store import ModelStore

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


def test_nesting_within_the_limit_still_reaches_the_handler(app_factory):
    c = app_factory()[0].test_client()
    body = json.loads(nested(60))
    r = c.post("/setup", json={"project": "3", "schema": CONFIG, "extra_params": body})
    assert r.status_code == 200


@pytest.mark.parametrize("data", [b"[" * 100000, b'{"a": [' * 3000, b"\xff\xfe", b"nul", b'{"project": NaN', b"123"])
def test_any_bad_json_is_400(app_factory, data):
    c = app_factory()[0].test_client()
    for path in ("/setup", "/predict", "/webhook", "/projects/7/rollback"):
        r = c.post(path, data=data, content_type="application/json")
        assert r.status_code == 400 and "error" in r.get_json()
