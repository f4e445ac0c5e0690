"""Issue 21 item 12 against a real Label Studio 1.23.2: a changed label set (the project's label_config
PATCHed mid-project) stops the old version's predictions from ordering the queue, starts a round that trains
on the new set once enough tasks are labeled under it, and the status page says why."""

from __future__ import annotations

import pytest
import requests

from beal_backend.store.versions import ModelStore

from .helpers import LABELS, LS, connect_and_annotate, job_status, make_project, rows, wait_for_version, wait_until

pytestmark = pytest.mark.e2e


def config(labels, choice="multiple"):
    return (
        f'<View><Text name="text" value="$text"/><Choices name="emotion" toName="text" choice="{choice}">'
        + "".join(f'<Choice value="{c}"/>' for c in labels)
        + "</Choices></View>"
    )


def beal_versions(ls, project):
    return {v: n for v, n in ls("GET", f"/api/projects/{project}/model-versions/").items() if v.startswith("beal-")}


def test_a_changed_label_set_withdraws_the_old_order_and_retrains(label_studio, backend_factory):
    ls = LS(*label_studio)
    data = rows(20, offset=40)  # rows 0 and 3 carry two labels: not usable in a single-choice project
    single = sum(len(r["labels"]) == 1 for r in data[:8])
    assert single < 8
    n_min = single + 1  # MIN_ANNOTATIONS: 8 labeled tasks train; the 'single' ones under single-choice do not
    # TRAIN_EVERY is never reached: only Start Training and the label-set changes start rounds here
    b = backend_factory(REDIS_URL="", LEARNER="frozen", TRAIN_EVERY=100, MIN_ANNOTATIONS=n_min)
    project, tasks = make_project(ls, data, title="label change")
    connect_and_annotate(ls, b.url, project, tasks, data, 8, train=True)
    v1 = wait_for_version(b, project)
    assert beal_versions(ls, project) == {v1: 12}
    store = ModelStore(b.env["MODEL_DIR"])

    # 1. a choice added: the PATCH's PROJECT_UPDATED webhook starts a round, which deletes v1's predictions
    # and trains on the new set (the 8 annotations are labeled under it too)
    added = [*LABELS, "fear"]
    ls("PATCH", f"/api/projects/{project}", json={"label_config": config(added)})
    v2 = wait_for_version(b, project, not_version=v1, timeout=120)
    assert sorted(store.metadata(str(project), v2)["labels"]) == sorted(added)
    assert beal_versions(ls, project) == {v2: 12}
    job = job_status(b.url, project)["current_job"]
    assert job["outcome"] == "trained" and f"since {v1} was trained (added fear)" in job["labels_changed"]
    page = requests.get(b.url + "/status", timeout=10).text
    assert f"since {v1} was trained (added fear): its predictions were deleted from Label Studio" in page

    # 2. single-choice now: fewer than MIN_ANNOTATIONS tasks are labeled under it, so the round is skipped;
    # v2's predictions are deleted all the same (nothing orders the queue) and the project card says why
    ls("PATCH", f"/api/projects/{project}", json={"label_config": config(added, "single")})

    def skipped():
        cur = job_status(b.url, project).get("current_job") or {}
        return cur if cur.get("state") == "finished" and cur.get("outcome") == "skipped" else None

    job = wait_until(skipped, 120, "the round after the switch to single-choice", b.logs)
    assert job["reason"].startswith(f"{single} labeled tasks; need {n_min}")
    assert beal_versions(ls, project) == {}
    listing = ls("GET", "/api/tasks", params={"project": project, "fields": "all", "page_size": 1000})["tasks"]
    assert all(t["predictions"] == [] and t["predictions_score"] is None for t in listing)
    page = requests.get(b.url + "/status", timeout=10).text
    assert f"since {v2} was trained (now single-choice): its predictions were deleted from Label Studio" in page
    assert f"a round trains on the new set once {n_min} tasks are labeled under it" in page

    # 3. the annotation that makes MIN_ANNOTATIONS labeled tasks under the new set starts the round that
    # trains (TRAIN_EVERY=100 is far away)
    ls.annotate(tasks[8]["id"], [LABELS[0]])
    v3 = wait_for_version(b, project, not_version=v2, timeout=120)
    meta = store.metadata(str(project), v3)
    assert meta["hparams"]["single_label"] is True and meta["n_annotations"] == n_min
    assert beal_versions(ls, project) == {v3: 11}
    assert "a round trains on the new set once" not in requests.get(b.url + "/status", timeout=10).text
