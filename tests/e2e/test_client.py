"""The Label Studio client against a real Label Studio: the two-read task fetch, the bulk push, stale deletion."""

from __future__ import annotations

import pytest

from beal_backend.labelstudio import client as client_module
from beal_backend.labelstudio import predictions
from beal_backend.labelstudio.client import LabelStudioClient, LabelStudioError

from .helpers import LS, make_project, rows

pytestmark = pytest.mark.e2e


def _full_listing(ls, project):
    """Label Studio's own full read of every task (what the client read before it split the fetch)."""
    tasks = ls("GET", "/api/tasks", params={"project": project, "fields": "all", "page_size": 1000})["tasks"]
    return {t["id"]: t for t in tasks}


def test_tasks_reads_annotations_of_annotated_tasks_and_data_of_all(label_studio):
    ls = LS(*label_studio)
    data = rows(8)
    project, tasks = make_project(ls, data, title="client fetch")
    ids = [t["id"] for t in tasks]
    first = ls.annotate(ids[0], ["anger"])["id"]
    second = ls.annotate(ids[0], ["neutral"])["id"]  # newer
    ls.annotate(ids[1], ["gratitude"])
    ls("POST", f"/api/tasks/{ids[2]}/annotations", json={"result": [], "was_cancelled": True})  # skipped only
    ls("POST", f"/api/tasks/{ids[3]}/annotations", json={"result": [], "was_cancelled": True})
    ls.annotate(ids[3], ["amusement"])  # skipped once, then labeled
    pushed = [{"task": t, "score": 0.5, "result": []} for t in ids]
    client = LabelStudioClient(*label_studio)
    client.push_predictions(project, "beal-x", pushed)  # predictions must not change what a task reads as

    got = {t.id: t for t in client.tasks(project)}
    full = _full_listing(ls, project)
    assert sorted(got) == sorted(full) == sorted(ids)
    assert all(got[i].data == full[i]["data"] for i in ids)
    assert [a["id"] for a in got[ids[0]].annotations] == [second, first]  # newest first
    assert [a["result"][0]["value"]["choices"] for a in got[ids[1]].annotations] == [["gratitude"]]
    assert got[ids[2]].annotations == []  # a cancelled annotation is no label: the task stays in the pool
    assert [a["result"][0]["value"]["choices"] for a in got[ids[3]].annotations] == [["amusement"]]
    assert all(got[i].annotations == [] for i in ids[4:])
    # what the old full read gives, minus cancelled annotations, for every task
    for i in ids:
        expected = sorted(a["id"] for a in full[i]["annotations"] if not a["was_cancelled"])
        assert sorted(a["id"] for a in got[i].annotations) == expected

    texts_only = client.tasks(project, annotations=False)
    assert sorted(t.id for t in texts_only) == sorted(ids) and all(t.annotations == [] for t in texts_only)


def test_bulk_push_and_stale_deletion(label_studio):
    ls = LS(*label_studio)
    project, tasks = make_project(ls, rows(6), title="client push")
    ids = [t["id"] for t in tasks]
    client = LabelStudioClient(*label_studio)
    for v in ("beal-1", "beal-2", "other-model"):
        assert client.push_predictions(project, v, [{"task": t, "score": 0.1, "result": []} for t in ids]) == 6
    assert client.model_versions(project) == {"beal-1": 6, "beal-2": 6, "other-model": 6}

    out = predictions.delete_stale(client, str(project), "beal-2")
    assert out == {"removed_versions": ["beal-1"]}  # another model's predictions are not ours to delete
    assert client.model_versions(project) == {"beal-2": 6, "other-model": 6}


def test_clients_share_one_pool_per_label_studio_and_close_it(label_studio):
    """A round, a rollback and /setup each make a client; each opened an httpx pool that was never closed.
    Now one pool per Label Studio serves the SDK's calls and the plain ones (model versions), with the same auth."""
    ls = LS(*label_studio)
    project, tasks = make_project(ls, rows(2), title="client pool")
    first, second = LabelStudioClient(*label_studio), LabelStudioClient(*label_studio)
    assert first._http is second._http
    first.push_predictions(project, "beal-a", [{"task": t["id"], "score": 0.1, "result": []} for t in tasks])
    assert second.model_versions(project) == {"beal-a": 2}
    with pytest.raises(LabelStudioError, match="HTTP 401"):  # the plain calls carry the key: a wrong one is refused
        LabelStudioClient(label_studio[0], "not-the-token-123", retries=0).model_versions(project)
    pool = first._http
    client_module.close_pools()
    assert pool.is_closed
    third = LabelStudioClient(*label_studio)
    assert third._http is not pool and third.delete_model_version(project, "beal-a", 2) == 2


def test_a_personal_access_token_works_on_the_sdk_calls_and_the_plain_ones(label_studio):
    """LABEL_STUDIO_API_KEY may be a personal access token (a JWT refresh token): the plain calls exchange it
    for an access token through the SDK's public tokens.refresh, as the SDK's own calls do."""
    ls = LS(*label_studio)
    assert ls("GET", "/api/jwt/settings")["api_tokens_enabled"]
    pat = ls("POST", "/api/token/")["token"]
    project, tasks = make_project(ls, rows(2), title="client pat")
    client = LabelStudioClient(label_studio[0], pat, retries=0)
    assert (
        client.push_predictions(project, "beal-p", [{"task": t["id"], "score": 0.2, "result": []} for t in tasks]) == 2
    )
    assert client.model_versions(project) == {"beal-p": 2}
    assert client.delete_model_version(project, "beal-p", 2) == 2 and client.model_versions(project) == {}
