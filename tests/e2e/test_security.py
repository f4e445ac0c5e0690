"""Against the real Label Studio 1.23.2 (issue #23 items 1, 5, 6): Label Studio's own /setup sets a project up and
keeps working, another host can neither repoint it nor receive a request, a project Label Studio does not know
leaves nothing, and under basic auth the webhook holds a webhook token, never the operator's password."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from pathlib import Path

import pytest
import requests

from beal_backend.config import host_key
from beal_backend.store.secrets import TOKEN_FILE
from beal_backend.store.versions import ModelStore

from ..ls_stub import LabelStudioStub
from .helpers import CONFIG, LS, make_project, rows, wait_until

pytestmark = pytest.mark.e2e
AUTH = ("operator", "pa55word")


def test_label_studio_sets_a_project_up_and_no_other_host_can(label_studio, backend_factory):
    url, key = label_studio
    ls = LS(url, key)
    b = backend_factory(LABEL_STUDIO_URL="", LABEL_STUDIO_API_KEY="")  # the embedded default: /setup's pair
    project, _ = make_project(ls, rows(3), title="trust")
    assert ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal"})["state"] == "CO"
    store = ModelStore(b.env["MODEL_DIR"])
    record = store.read_project(str(project))
    assert record["hostname"] == host_key(url) and record["access_token"] == key

    stub = LabelStudioStub()
    try:
        body = {"project": f"{project}.1", "schema": CONFIG, **stub.link, "extra_params": {"train_every": 1}}
        r = requests.post(b.url + "/setup", json=body, timeout=10)
        assert r.status_code == 403 and "set up from another Label Studio" in r.json()["error"]
        assert stub.requests == [] and store.read_project(str(project)) == record
    finally:
        stub.close()
    unknown = {"project": "99999.1", "schema": CONFIG, "hostname": url, "access_token": key}
    r = requests.post(b.url + "/setup", json=unknown, timeout=10)
    assert r.status_code == 404 and not (Path(b.env["MODEL_DIR"]) / "99999").exists()

    # Label Studio's own /setup still works: a prediction run calls /setup, then /predict
    ls(
        "POST",
        f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
        json={"selectedItems": {"all": True, "excluded": []}},
    )
    log = (b.logs / "api.log").read_text()
    assert len(re.findall(r'"POST /setup HTTP/1.1" 200', log)) >= 3  # 2 at connect, 1 before /predict
    assert re.search(r'"POST /predict HTTP/1.1" 200', log)
    refused = re.findall(r"POST /setup answered (\d+): project (\d+)", log)  # only the two calls above
    assert refused == [("403", str(project)), ("404", "99999")]


def test_webhooks_carry_the_webhook_token_not_the_operator_password(label_studio, backend_factory):
    ls = LS(*label_studio)
    b = backend_factory(BASIC_AUTH_USER=AUTH[0], BASIC_AUTH_PASS=AUTH[1], TRAIN_EVERY=1000)
    data = rows(3)
    project, tasks = make_project(ls, data, title="webhook token")
    connect = {"auth_method": "BASIC_AUTH", "basic_auth_user": AUTH[0], "basic_auth_pass": AUTH[1]}
    ml = ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal", **connect})
    assert ml["state"] == "CO"
    hooks = lambda: ls("GET", "/api/webhooks", params={"project": project})  # noqa: E731
    wait_until(
        lambda: any(h["url"] == b.url + "/webhook" and "Authorization" in h["headers"] for h in hooks()),
        30,
        "the webhook to carry a credential",
        b.logs,
    )
    token_file = Path(b.env["MODEL_DIR"]) / TOKEN_FILE
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    (hook,) = [h for h in hooks() if h["url"] == b.url + "/webhook"]
    assert hook["headers"]["Authorization"] == f"Bearer {token_file.read_text().strip()}"
    everything = json.dumps(ls("GET", "/api/webhooks"))  # what anyone with access to Label Studio's API reads
    assert AUTH[1] not in everything and base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode() not in everything

    ls.annotate(tasks[0]["id"], data[0]["labels"])  # Label Studio delivers the webhook before it answers
    jobs = requests.get(b.url + "/jobs", auth=AUTH, timeout=5).json()
    assert jobs[str(project)]["annotations_since_training"] == 1
    assert not re.search(r'POST /webhook[^\n]*" 401', (b.logs / "api.log").read_text())
    bearer = {"Authorization": hook["headers"]["Authorization"]}
    assert requests.get(b.url + "/jobs", headers=bearer, timeout=5).status_code == 401  # it opens /webhook only
