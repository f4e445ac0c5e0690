"""Label Studio API helpers for the end-to-end tests (plain HTTP against the real server)."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from beal_backend.simulation import datasets

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "goemotions"  # a sample kept in the repository
LABELS = ["admiration", "amusement", "anger", "gratitude", "neutral"]
CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="emotion" toName="text" choice="multiple">'
    + "".join(f'<Choice value="{c}"/>' for c in LABELS)
    + "</Choices></View>"
)


class LS:
    """Label Studio's API as ``ls(method, path, **requests_kwargs)`` -> the JSON answer; an error status fails.
    ``timeout``: seconds per request (the benchmarks' bulk imports take minutes)."""

    def __init__(self, url, key, timeout: float = 60):
        self.url, self.s, self.timeout = url, requests.Session(), timeout
        self.s.headers["Authorization"] = f"Token {key}"

    def __call__(self, method, path, **kw):
        r = self.s.request(method, self.url + path, timeout=self.timeout, **kw)
        assert r.status_code < 400, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json() if r.content else None

    def tasks(self, project):
        return sorted(
            self("GET", "/api/tasks", params={"project": project, "page_size": 1000})["tasks"], key=lambda t: t["id"]
        )

    def annotate(self, task_id, labels):
        result = [{"from_name": "emotion", "to_name": "text", "type": "choices", "value": {"choices": labels}}]
        return self("POST", f"/api/tasks/{task_id}/annotations", json={"result": result})


def listed_predictions(ls, project, task_id):
    """A task's predictions as the task list shows them (reading the task itself, GET /api/tasks/<id>, makes
    Label Studio ask /predict for a task without predictions)."""
    listing = ls("GET", "/api/tasks", params={"project": project, "fields": "all", "page_size": 1000})["tasks"]
    return next(t["predictions"] for t in listing if t["id"] == task_id)


def rows(n, offset=0):
    """n goemotions texts that carry at least one of LABELS, with those labels."""
    out = []
    for row in datasets.read_pool(DATA):
        labels = [x for x in row["labels"] if x in LABELS]
        if labels:
            out.append({"text": row["text"], "labels": labels})
        if len(out) == n + offset:
            break
    assert len(out) == n + offset, (
        f"{DATA / 'train.jsonl'} has only {len(out)} usable rows; asked for {n} after {offset}"
    )
    return out[offset:]


def make_project(ls, data, title="beal e2e"):
    """A project with CONFIG and one task per row; returns (project id, tasks sorted by id)."""
    project = ls("POST", "/api/projects", json={"title": title, "label_config": CONFIG})["id"]
    ls("POST", f"/api/projects/{project}/import", json=[{"text": r["text"]} for r in data])
    tasks = ls.tasks(project)
    assert len(tasks) == len(data)
    return project, tasks


def connect_and_annotate(ls, backend_url, project, tasks, data, n, train=False, **ml) -> dict:
    """Connect the backend to ``project`` (``ml``: more fields of the ML backend record), annotate its first ``n``
    tasks with their rows' labels, and press Start Training if ``train``; returns Label Studio's ML backend record."""
    record = ls("POST", "/api/ml", json={"project": project, "url": backend_url, "title": "beal", **ml})
    for task, row in zip(tasks[:n], data[:n]):
        ls.annotate(task["id"], row["labels"])
    if train:
        ls("POST", f"/api/ml/{record['id']}/train")
    return record


def job_status(backend_url, project):
    return requests.get(backend_url + "/jobs", timeout=5).json().get(str(project), {})


def current_job(backend, project) -> dict:
    return job_status(backend.url, project).get("current_job") or {}


def wait_for_job(backend, project, check, timeout, what) -> dict:
    """The project's current job record once ``check(record)`` holds (see ``wait_until``)."""

    def ready():
        job = current_job(backend, project)
        return job if check(job) else None

    return wait_until(ready, timeout, what, backend.logs)


def wait_until(predicate, timeout, what, logs_dir=None, poll: float = 0.5):
    """``predicate()``'s first truthy value, asked every ``poll`` s; fails after ``timeout`` s with the logs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    logs = "\n".join(p.read_text()[-3000:] for p in Path(logs_dir).glob("*.log")) if logs_dir else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")


def wait_for_version(backend, project, not_version=None, timeout=240):
    def ready():
        st = job_status(backend["url"], project)
        cur = st.get("current_job") or {}
        if cur.get("state") == "failed":
            raise AssertionError(f"training failed: {cur.get('error')}")
        done = cur.get("state") == "finished" and not st["pending"]
        return st["model_version"] if done and st["model_version"] not in ("beal-untrained", not_version) else None

    return wait_until(ready, timeout, f"a new model version of project {project}", backend["logs"])
