"""Label Studio requests from a round (``labelstudio/client.py``, ``labelstudio/predictions.py``): its errors keep
their cause, a push is as few requests as PUSH_CHUNK allows with a timeout sized by each, and a stale version whose
delete fails is left to the next round."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from label_studio_sdk.core.api_error import ApiError

from beal_backend.labelstudio import client as client_module
from beal_backend.labelstudio import predictions
from beal_backend.labelstudio.client import LabelStudioClient, LabelStudioError

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("info_logs")]


def test_label_studio_errors_keep_their_cause():
    client = LabelStudioClient("http://127.0.0.1:9", "key", retries=0)
    cause = ApiError(status_code=403, body="forbidden")

    def refuse():
        raise cause

    with pytest.raises(LabelStudioError) as info:
        client._call(refuse)
    assert info.value.__cause__ is cause
    client._ls.projects.import_predictions = lambda **k: refuse()
    with pytest.raises(LabelStudioError) as info:
        client.push_predictions(1, "v", [{"task": 1}])
    assert info.value.__cause__ is cause

    def bug():
        raise KeyError("id")  # our own mistake, not Label Studio's: not reported as a 502 from Label Studio

    with pytest.raises(KeyError):
        client._call(bug)


def test_a_push_is_one_request_per_push_chunk_with_a_timeout_sized_by_it(monkeypatch):
    """Label Studio recounts every task of the project after each import request: 50,000 predictions went in
    38 s as one request and took over 5 minutes as 50 of 1,000 (benchmarks/bench_round.py). So a push is as
    few requests as PUSH_CHUNK allows, each with LS_TIMEOUT + 10 ms per prediction to answer."""
    client = LabelStudioClient("http://127.0.0.1:9", "key", timeout=30, retries=0)
    calls: list[tuple[int, float]] = []

    def record(id, request, request_options):
        calls.append((len(request), request_options["timeout_in_seconds"]))
        assert id == 3 and {p["model_version"] for p in request} == {"v2"}
        assert request_options["max_retries"] == 0  # the SDK must never re-send an import on its own
        return SimpleNamespace(created=len(request))

    client._ls.projects.import_predictions = record
    assert client.push_predictions(3, "v2", [{"task": t, "score": 0.5} for t in range(2500)]) == 2500
    assert calls == [(2500, 30 + 25)]
    calls.clear()
    monkeypatch.setattr(client_module, "PUSH_CHUNK", 1000)
    assert client.push_predictions(3, "v2", [{"task": t, "score": 0.5} for t in range(2500)]) == 2500
    assert calls == [(1000, 40), (1000, 40), (500, 35)]


def test_a_stale_version_that_cannot_be_deleted_is_left_to_the_next_round():
    """Deleting 50,000 predictions takes Label Studio over 2 minutes; a failed delete must not fail a round
    whose new version already serves."""

    deleted: list[tuple[str, int]] = []

    class Client:
        def model_versions(self, pid):
            return {"beal-old": 50000, "beal-older": 7, "beal-new": 9, "someone-else": 3}

        def delete_model_version(self, pid, version, n_predictions=0):
            if version == "beal-old":
                raise LabelStudioError("read timeout")
            deleted.append((version, n_predictions))
            return n_predictions

    out = predictions.delete_stale(Client(), "3", "beal-new")
    assert out == {"removed_versions": ["beal-older"], "stale_versions_left": ["beal-old"]}
    assert deleted == [("beal-older", 7)]

    class Unreachable(Client):
        def model_versions(self, pid):
            raise LabelStudioError("connection refused")

    assert predictions.delete_stale(Unreachable(), "3", "beal-new") == {
        "removed_versions": [],
        "versions_not_listed": "connection refused",
    }
