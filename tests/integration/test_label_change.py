"""Issue 21 item 12, the API's side: which /setup calls and PROJECT_UPDATED webhooks are a label-set change
that starts a round (the round's side, against a real Label Studio: tests/e2e/test_label_change.py)."""

from __future__ import annotations

from .conftest import CONFIG

ADDED = CONFIG.replace('<Choice value="water"/>', '<Choice value="water"/><Choice value="stone"/>')
REORDERED = CONFIG.replace(
    '<Choice value="fruit"/><Choice value="water"/>', '<Choice value="water"/><Choice value="fruit"/>'
)
SINGLE = CONFIG.replace('choice="multiple"', 'choice="single"')


def test_setup_starts_one_round_for_a_label_set_first_seen(app_factory, published):
    app, rt = app_factory()
    c = app.test_client()
    setup = {"project": "7.1700000000"}
    assert c.post("/setup", json={**setup, "schema": REORDERED}).status_code == 200  # same set: nothing
    assert rt.queue.jobs == []
    c.post("/setup", json={**setup, "schema": ADDED})  # 'stone' added: the current version no longer serves
    assert rt.queue.jobs == ["7"]
    rt.coordinator.release_pending("7")  # (as the round's start does)
    c.post("/setup", json={**setup, "schema": ADDED})  # Label Studio's next /setup: seen already, no new round
    assert rt.queue.jobs == ["7"]


def test_project_updated_starts_a_round_only_for_a_label_set_the_named_version_does_not_serve(app_factory, published):
    app, rt = app_factory()
    c = app.test_client()
    c.post("/setup", json={"project": "7", "schema": CONFIG})
    version, _ = published

    def update(config, model_version=version):
        project = {"id": 7, "label_config": config, "model_version": model_version}
        return c.post("/webhook", json={"action": "PROJECT_UPDATED", "project": project}).get_json()["status"]

    assert update(REORDERED) == "ignored"  # choices matched by value: the version still serves
    assert update(CONFIG, model_version="beal") == "ignored"  # a title change, say: same set
    assert rt.queue.jobs == []
    assert update(SINGLE) == "queued"  # single <-> multiple is a new label set
    assert update(ADDED) == "coalesced"  # into the waiting round, which reads the config itself
    assert rt.queue.jobs == ["7"]
