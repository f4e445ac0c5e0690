"""The version registry against the real Label Studio: a worse candidate is kept but never served, and an
operator rolls back over authenticated HTTP and the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import requests

from .backend import ROOT
from .helpers import CONFIG, LABELS, LS, make_project, rows, wait_until

pytestmark = pytest.mark.e2e
AUTH = ("operator", "pa55word")


def _beal(backend, *args: str) -> subprocess.CompletedProcess:
    """``beal <args>`` (the CLI) against the backend's store and settings; it must succeed."""
    cli = subprocess.run(
        [sys.executable, "-m", "beal_backend", *args],
        cwd=ROOT,
        env=backend.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    return cli


def _unlabeled_versions(ls, project):
    listing = ls("GET", "/api/tasks", params={"project": project, "fields": "all", "page_size": 1000})["tasks"]
    return {t["id"]: [p["model_version"] for p in t["predictions"]] for t in listing if not t["annotations"]}


def test_gate_rejects_then_rollback(label_studio, backend_factory):
    ls = LS(*label_studio)
    # a held-out slice from the start (half of the tasks, at least 2), and every other version kept
    b = backend_factory(
        VAL_FRACTION=0.5,
        MIN_VAL=2,
        TRAIN_EVERY=1000,
        EPOCHS=1,
        MC_PASSES=4,
        KEEP_VERSIONS=5,
        BASIC_AUTH_USER=AUTH[0],
        BASIC_AUTH_PASS=AUTH[1],
    )
    data = rows(24)
    project, tasks = make_project(ls, data, title="registry")
    for task, row in zip(tasks[:10], data[:10]):
        ls.annotate(task["id"], row["labels"])
    # Label Studio sends the credentials when the model is connected with basic auth
    ml = ls(
        "POST",
        "/api/ml",
        json={
            "project": project,
            "url": b.url,
            "title": "beal",
            "auth_method": "BASIC_AUTH",
            "basic_auth_user": AUTH[0],
            "basic_auth_pass": AUTH[1],
        },
    )
    assert ml["state"] == "CO"
    # Label Studio's webhooks carry no credentials: the backend adds its webhook token to the project's webhook
    hooks = lambda: ls("GET", "/api/webhooks", params={"project": project})  # noqa: E731
    wait_until(
        lambda: any(
            h["url"] == b.url + "/webhook" and h["headers"].get("Authorization", "").startswith("Bearer ")
            for h in hooks()
        ),
        30,
        "the webhook to carry the webhook token",
        b.logs,
    )
    job = lambda: requests.get(b.url + "/jobs", auth=AUTH, timeout=5).json().get(str(project)) or {}  # noqa: E731
    versions = lambda: requests.get(f"{b.url}/projects/{project}/versions", auth=AUTH, timeout=10).json()["versions"]  # noqa: E731

    w = b.worker("first")
    ls("POST", f"/api/ml/{ml['id']}/train")
    v1 = wait_until(
        lambda: job().get("model_version") if (job().get("current_job") or {}).get("state") == "finished" else None,
        240,
        "v1",
        b.logs,
    )
    w.terminate()
    w.wait(30)

    # a gate no candidate can pass (margin -1): v2 is stored as rejected, v1 keeps serving
    strict = b.worker("strict", PROMOTION_MARGIN=-1)
    for task, row in zip(tasks[10:12], data[10:12]):
        ls.annotate(task["id"], row["labels"])
    assert not re.search(r'POST /webhook[^\n]*" 401', (b.logs / "api.log").read_text())  # annotation webhooks accepted
    assert job()["pending"] is False
    ls("POST", f"/api/ml/{ml['id']}/train")
    wait_until(
        lambda: (job().get("current_job") or {}).get("outcome") == "rejected", 240, "the rejected candidate", b.logs
    )
    listed = versions()
    assert [v["status"] for v in listed] == ["current", "rejected"]
    assert listed[0]["version"] == v1 and "worse than" in listed[1]["reason"]
    v2 = listed[1]["version"]
    assert ls("GET", f"/api/projects/{project}")["model_version"] == v1
    assert set(map(tuple, _unlabeled_versions(ls, project).values())) == {(v1,)}
    strict.terminate()
    strict.wait(30)

    # a lenient gate promotes v3; then the operator rolls back to v1
    b.worker("lenient", PROMOTION_MARGIN=1)
    ls("POST", f"/api/ml/{ml['id']}/train")
    wait_until(
        lambda: (job().get("current_job") or {}).get("outcome") == "trained" and job()["model_version"] != v1,
        240,
        "v3",
        b.logs,
    )
    v3 = job()["model_version"]
    assert [v["status"] for v in versions()] == ["promoted", "rejected", "current"]
    assert set(map(tuple, _unlabeled_versions(ls, project).values())) == {(v3,)}

    assert requests.post(f"{b.url}/projects/{project}/rollback", json={"version": v1}, timeout=30).status_code == 401
    bad = requests.post(f"{b.url}/projects/{project}/rollback", json={"version": "beal-nope"}, auth=AUTH, timeout=30)
    assert bad.status_code == 404 and "no version" in bad.json()["error"]
    r = requests.post(f"{b.url}/projects/{project}/rollback", json={"version": v1}, auth=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == v1 and r.json()["removed_versions"] == [v3]
    assert ls("GET", f"/api/projects/{project}")["model_version"] == v1
    assert set(map(tuple, _unlabeled_versions(ls, project).values())) == {(v1,)}
    assert [v["status"] for v in versions()] == ["current", "rejected", "promoted"]

    # the CLI sees the same registry and rolls forward again
    cli = _beal(b, "versions", str(project))
    assert [v["version"] for v in json.loads(cli.stdout)] == [v["version"] for v in versions()]
    cli = _beal(b, "rollback", str(project), v3)
    assert ls("GET", f"/api/projects/{project}")["model_version"] == v3

    # labels are matched by value: reordering the <Choice> elements must not block a rollback (issue #15.3)
    reordered = CONFIG.replace(
        "".join(f'<Choice value="{c}"/>' for c in LABELS), "".join(f'<Choice value="{c}"/>' for c in reversed(LABELS))
    )
    assert reordered != CONFIG
    ls("PATCH", f"/api/projects/{project}", json={"label_config": reordered})
    r = requests.post(f"{b.url}/projects/{project}/rollback", json={"version": v1}, auth=AUTH, timeout=120)
    assert r.status_code == 200, r.text
    assert ls("GET", f"/api/projects/{project}")["model_version"] == v1
    listing = ls("GET", "/api/tasks", params={"project": project, "fields": "all", "page_size": 1000})["tasks"]
    pushed = [p for t in listing if not t["annotations"] for p in t["predictions"]]
    assert pushed and {p["model_version"] for p in pushed} == {v1}
    assert {c for p in pushed for item in p["result"] for c in item["value"]["choices"]} <= set(LABELS)

    # a rejected candidate serves when the operator insists, and the answer says what it is (issue #23.6)
    cli = _beal(b, "rollback", str(project), v2)
    assert json.loads(cli.stdout)["warning"].startswith(f"{v2} was rejected by the quality gate (worse than")
    assert f"beal rollback: warning: {v2} was rejected" in cli.stderr
    assert ls("GET", f"/api/projects/{project}")["model_version"] == v2
