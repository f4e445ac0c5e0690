"""End to end against a real Label Studio 1.23.2, real Redis and a real `rq worker`:
connect the backend, annotate, train from webhooks and from "Start Training", and check what Label
Studio stores and how it orders its task list."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from beal_backend import jobs
from beal_backend.config import Settings
from beal_backend.labelconfig import parse_label_config
from beal_backend.labelstudio import LabelStudioClient
from beal_backend.store import ModelStore

pytestmark = pytest.mark.e2e
DATA = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "goemotions"
LABELS = ["admiration", "amusement", "anger", "gratitude", "neutral"]
CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="emotion" toName="text" choice="multiple">'
    + "".join(f'<Choice value="{c}"/>' for c in LABELS)
    + "</Choices></View>"
)


class LS:
    def __init__(self, url, key):
        self.url, self.s = url, requests.Session()
        self.s.headers["Authorization"] = f"Token {key}"

    def __call__(self, method, path, **kw):
        r = self.s.request(method, self.url + path, timeout=60, **kw)
        assert r.status_code < 400, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json() if r.content else None


def _texts(n):
    rows = []
    with open(DATA / "train.jsonl") as f:
        for line in f:
            row = json.loads(line)
            labels = [x for x in row["labels"] if x in LABELS]
            if labels:
                rows.append({"text": row["text"], "labels": labels})
            if len(rows) == n:
                break
    return rows


def _wait_for_version(backend, project, not_version=None, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = requests.get(backend["url"] + "/jobs", timeout=5).json().get(str(project), {})
        cur = st.get("current_job") or {}
        if cur.get("state") == "failed":
            raise AssertionError(f"training failed: {cur.get('error')}")
        if cur.get("state") == "finished" and st["model_version"] not in ("beal-untrained", not_version) and not st["pending"]:
            return st["model_version"]
        time.sleep(0.5)
    logs = "\n".join(p.read_text()[-3000:] for p in backend["logs"].glob("*.log"))
    raise AssertionError(f"no new model version within {timeout} s; logs:\n{logs}")


def _check_round(ls, backend, project, version, annotated_ids):
    """Every unlabeled task: one prediction of `version` whose score is the engine's EC / H_J; LS orders
    its list by that score ascending (lowest EC first)."""
    assert ls("GET", f"/api/projects/{project}")["model_version"] == version
    settings = Settings.from_env(backend["env"])
    client = LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key)
    schema = parse_label_config(CONFIG)
    ex = jobs.collect_examples(client.tasks(project), schema, settings.max_text_chars)
    assert set(ex.pool_ids).isdisjoint(annotated_ids) and len(ex.pool_ids) > 0
    trained = ModelStore(settings.model_dir).load(str(project), version)
    expected = jobs.score_pool(trained, ex.pool_ids, ex.pool_texts, schema, settings.scoring)["tasks"]

    listing = ls("GET", "/api/tasks", params={
        "project": project, "fields": "all", "page_size": 1000,
        "query": json.dumps({"ordering": ["tasks:predictions_score"]}),
    })["tasks"]
    pool = [t for t in listing if t["id"] in set(ex.pool_ids)]
    assert len(pool) == len(ex.pool_ids)
    for t in pool:
        preds = t["predictions"]
        assert [p["model_version"] for p in preds] == [version], f"task {t['id']}: {[p['model_version'] for p in preds]}"
        assert preds[0]["score"] == pytest.approx(expected[str(t["id"])]["score"], abs=1e-6)
        assert 0.0 <= preds[0]["score"] <= 1.0
    listed = [t["predictions_score"] for t in pool]
    assert listed == sorted(listed)  # Label Studio's own ascending order = lowest EC first
    assert pool[0]["predictions_score"] == pytest.approx(min(v["score"] for v in expected.values()), abs=1e-6)
    versions = ls("GET", f"/api/projects/{project}/model-versions/")
    assert [v for v in versions if v.startswith("beal-")] == [version]


def test_full_active_learning_loop(label_studio, backend):
    ls = LS(*label_studio)
    project = ls("POST", "/api/projects", json={"title": "beal e2e", "label_config": CONFIG})["id"]
    rows = _texts(40)
    ls("POST", f"/api/projects/{project}/import", json=[{"text": r["text"]} for r in rows])
    tasks = sorted(ls("GET", "/api/tasks", params={"project": project, "page_size": 1000})["tasks"], key=lambda t: t["id"])
    assert len(tasks) == 40

    ml = ls("POST", "/api/ml", json={"project": project, "url": backend["url"], "title": "beal"})
    assert ml["state"] == "CO"

    # 10 annotations (TRAIN_EVERY=10): the 10th webhook enqueues round 1
    annotated = []
    for task, row in zip(tasks[:10], rows[:10]):
        result = [{"from_name": "emotion", "to_name": "text", "type": "choices", "value": {"choices": row["labels"]}}]
        ls("POST", f"/api/tasks/{task['id']}/annotations", json={"result": result})
        annotated.append(task["id"])
    v1 = _wait_for_version(backend, project)
    _check_round(ls, backend, project, v1, annotated)

    # two more annotations, then the "Start Training" button: round 2 replaces round 1's predictions
    for task, row in zip(tasks[10:12], rows[10:12]):
        result = [{"from_name": "emotion", "to_name": "text", "type": "choices", "value": {"choices": row["labels"]}}]
        ls("POST", f"/api/tasks/{task['id']}/annotations", json={"result": result})
        annotated.append(task["id"])
    ls("POST", f"/api/ml/{ml['id']}/train")
    v2 = _wait_for_version(backend, project, not_version=v1)
    assert v2 > v1  # versions sort by creation time
    _check_round(ls, backend, project, v2, annotated)
    meta = ModelStore(backend["env"]["MODEL_DIR"]).metadata(str(project), v2)
    assert meta["n_annotations"] == 12

    status = requests.get(backend["url"] + "/jobs", timeout=5).json()[str(project)]
    assert status["last_job"]["version"] == v1 and status["current_job"]["pushed"] == 28

    # a task imported after the round: Label Studio's own prediction call reaches /predict, which scores
    # it in the request and answers with the current version
    ls("POST", f"/api/projects/{project}/import", json=[{"text": "thank you so much, this made my day"}])
    new = max(t["id"] for t in ls("GET", "/api/tasks", params={"project": project, "page_size": 1000})["tasks"])
    ls("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
       json={"selectedItems": {"all": False, "included": [new]}})
    preds = ls("GET", f"/api/tasks/{new}")["predictions"]
    assert [p["model_version"] for p in preds] == [v2]
    assert 0.0 <= preds[0]["score"] <= 1.0
