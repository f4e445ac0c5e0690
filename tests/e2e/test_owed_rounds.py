"""Work owed to a project is never forgotten, with a real Label Studio and the service as a subprocess: a round
that loses Label Studio is retried once it is back (issue 21.1), and a killed embedded service trains what it
owed when it starts again (issue 23.3). Nobody acts after the fault."""

from __future__ import annotations

import os
import signal

import pytest
import requests

from beal_backend.store.versions import ModelStore

from .faults import FaultProxy
from .helpers import LS, connect_and_annotate, job_status, make_project, rows, wait_for_job, wait_for_version

pytestmark = pytest.mark.e2e


def test_a_round_that_loses_label_studio_is_retried_once_it_is_back(label_studio, backend_factory):
    """Label Studio answers 502 to everything from the middle of a round on (its push fails after the client's
    own retries): the job is shown failed with its next try, the 6 annotations stay owed, and once Label Studio
    is back rq's retry trains them."""
    ls = LS(*label_studio)
    with FaultProxy(label_studio[0]) as proxy:
        b = backend_factory(LABEL_STUDIO_URL=proxy.url, TRAIN_EVERY=1000, ROUND_RETRY_SECONDS="5,5,5", EPOCHS=30)
        b.worker()
        data = rows(14, offset=140)
        project, tasks = make_project(ls, data, title="outage mid-round")
        connect_and_annotate(ls, b.url, project, tasks, data, 6, train=True)
        wait_for_job(b, project, lambda job: job.get("stage") == "training", 180, "the round to train")
        proxy.fail("/api/", "refuse", 10**6)  # Label Studio goes away
        failed = wait_for_job(b, project, lambda job: job.get("state") == "failed", 300, "the failure")
        assert "502" in failed["error"] and failed["retry_at"]
        assert job_status(b.url, project)["annotations_since_training"] == 6  # owed, not forgotten
        assert "next try" in requests.get(b.url + "/status", timeout=10).text
        proxy.rules.clear()  # Label Studio is back; nobody presses anything
        retried = wait_for_job(b, project, lambda job: job.get("state") == "finished", 400, "the retry")
    version = retried["version"]
    assert retried["id"] == failed["id"] and job_status(b.url, project)["model_version"] == version  # rq's retry
    assert ModelStore(b.env["MODEL_DIR"]).metadata(str(project), version)["n_annotations"] == 6
    assert ls("GET", f"/api/projects/{project}")["model_version"] == version
    assert job_status(b.url, project)["annotations_since_training"] == 0


def test_a_killed_embedded_service_trains_what_it_owed_when_it_starts_again(label_studio, backend_factory):
    """Embedded mode (no Redis): 3 annotations after v1, then kill -9 before their idle round (an hour away).
    The service started again finds them in Label Studio and trains them without anyone acting."""
    ls = LS(*label_studio)
    settings = {"REDIS_URL": "", "TRAIN_EVERY": 1000, "TRAIN_IDLE_SECONDS": 3600, "EPOCHS": 1, "MC_PASSES": 4}
    b = backend_factory(**settings, PROMOTION_MARGIN=1)  # every candidate serves: this is about losing nothing
    data = rows(14, offset=160)
    project, tasks = make_project(ls, data, title="restart")
    connect_and_annotate(ls, b.url, project, tasks, data, 6, train=True)
    v1 = wait_for_version(b, project)
    for task, row in zip(tasks[6:9], data[6:9]):
        ls.annotate(task["id"], row["labels"])
    assert job_status(b.url, project)["annotations_since_training"] == 3

    os.killpg(b.api.pid, signal.SIGKILL)
    b.api.wait(10)
    again = backend_factory(**settings, PROMOTION_MARGIN=1)  # the same model store
    v2 = wait_for_version(again, project, not_version=v1, timeout=300)
    assert ModelStore(again.env["MODEL_DIR"]).metadata(str(project), v2)["n_annotations"] == 9
    assert ls("GET", f"/api/projects/{project}")["model_version"] == v2
