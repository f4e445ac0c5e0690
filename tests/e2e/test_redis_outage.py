"""Redis goes away and comes back (a private redis-server, so the shared one is never touched):
/health reports it, /predict keeps serving the current model, webhooks get a fast 503, and training
resumes once Redis is back."""

from __future__ import annotations

import time

import pytest
import requests

from beal_backend.store.versions import ModelStore

from .. import redis_server
from .helpers import LS, job_status, make_project, rows, wait_for_version, wait_until

pytestmark = pytest.mark.e2e


def test_redis_outage_and_recovery(label_studio, backend_factory):
    r = redis_server.PrivateRedis()
    r.start()
    try:
        b = backend_factory(REDIS_URL=f"redis://127.0.0.1:{r.port}/0", TRAIN_EVERY=1000, EPOCHS=1, MC_PASSES=4)
        b.worker("w1")
        ls = LS(*label_studio)
        data = rows(16)
        project, tasks = make_project(ls, data, title="redis outage")
        for task, row in zip(tasks[:6], data[:6]):
            ls.annotate(task["id"], row["labels"])
        ml = ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal"})
        ls("POST", f"/api/ml/{ml['id']}/train")
        v1 = wait_for_version(b, project)
        config = ls("GET", f"/api/projects/{project}")["label_config"]

        r.stop()  # Redis is gone
        assert requests.get(b.url + "/health", timeout=5).json()["redis"] is False
        pred = requests.post(
            b.url + "/predict",
            timeout=30,
            json={
                "tasks": [{"id": tasks[-1]["id"], "data": tasks[-1]["data"]}],
                "project": str(project),
                "label_config": config,
            },
        )
        assert pred.status_code == 200 and pred.json()["results"][0]["model_version"] == v1
        t0 = time.time()
        hook = requests.post(
            b.url + "/webhook", timeout=10, json={"action": "START_TRAINING", "project": {"id": project}}
        )
        assert hook.status_code == 503 and "Redis" in hook.json()["error"]
        assert time.time() - t0 < 1.0  # inside Label Studio's 1-s webhook timeout

        r.start()  # Redis is back (empty: it keeps nothing on disk); a worker restarts as its supervisor would
        wait_until(lambda: requests.get(b.url + "/health", timeout=5).json()["redis"], 10, "health to see Redis again")
        b.worker("w2")
        ls.annotate(tasks[6]["id"], data[6]["labels"])
        ls("POST", f"/api/ml/{ml['id']}/train")
        v2 = wait_for_version(b, project, not_version=v1)
        assert ModelStore(b.env["MODEL_DIR"]).metadata(str(project), v2)["n_annotations"] == 7
        assert job_status(b.url, project)["model_version"] == v2
    finally:
        r.stop()
