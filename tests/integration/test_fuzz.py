"""Fuzzing the three endpoints Label Studio calls: whatever JSON (or bytes) arrives, the answer is a JSON
object with status 200 or a 4xx carrying an "error" message, never a 500 or a stack trace."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import CONFIG, POOL

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
tasks = st.lists(
    st.fixed_dictionaries(
        {"id": st.one_of(st.integers(-5, 200), st.text(max_size=5), st.none())},
        optional={
            "data": st.one_of(st.dictionaries(st.sampled_from(["text", "other"]), json_values, max_size=2), json_values)
        },
    )
    | json_values,
    max_size=5,
)
bodies = {
    "/predict": st.fixed_dictionaries(
        {},
        optional={
            "tasks": tasks | json_values,
            "project": st.sampled_from(["7", "7.1", "0", "x", "../7", "1.2.3", ""]) | json_values,
            "label_config": st.sampled_from([CONFIG, "<View/>", "<View", ""]) | json_values,
        },
    ),
    "/setup": st.fixed_dictionaries(
        {},
        optional={
            "project": st.sampled_from(["7.1", "8", "..", "7/../../x"]) | json_values,
            "schema": st.sampled_from([CONFIG, "<View/>", "<<<", ""]) | json_values,
            "hostname": json_values,
            "access_token": json_values,
        },
    ),
    "/webhook": st.fixed_dictionaries(
        {},
        optional={
            "action": st.sampled_from(["ANNOTATION_CREATED", "ANNOTATIONS_DELETED", "START_TRAINING", "X"])
            | json_values,
            "project": st.fixed_dictionaries({"id": st.sampled_from([7, "7", "..", None, 1.5])}) | json_values,
            "annotations": json_values,
        },
    ),
}


def _check(resp):
    assert resp.status_code == 200 or 400 <= resp.status_code < 500, (
        resp.status_code,
        resp.get_data(as_text=True)[:300],
    )
    body = resp.get_json()
    assert isinstance(body, dict)
    if resp.status_code >= 400:
        assert isinstance(body.get("error"), str) and "Traceback" not in body["error"]


@pytest.fixture
def client(app_factory, published):
    app, _ = app_factory(train_every=1000)
    return app.test_client()


def _fuzz_json(client, path: str, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies[path] | json_values)
    def run(body):
        _check(client.post(path, data=json.dumps(body), content_type="application/json"))

    run()


@pytest.mark.parametrize("path", sorted(bodies))
def test_json_bodies_never_cause_a_server_error(client, path):
    _fuzz_json(client, path, 150)


@pytest.mark.parametrize("path", sorted(bodies))
def test_raw_bytes_never_cause_a_server_error(client, path):
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(raw=st.binary(max_size=200))
    def run(raw):
        _check(client.post(path, data=raw, content_type="application/json"))

    run()


def test_valid_predict_still_works_after_fuzzing(client):
    """The app that was just fuzzed on every path (not a fresh one) still scores a valid task."""
    for path in sorted(bodies):
        _fuzz_json(client, path, 40)
    r = client.post(
        "/predict", json={"tasks": [{"id": 101, "data": {"text": POOL[101]}}], "project": "7", "label_config": CONFIG}
    )
    assert r.status_code == 200 and r.get_json()["results"][0]["score"] is not None
