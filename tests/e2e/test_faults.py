"""Injected faults against the real Label Studio, Redis and rq workers: each must leave the previous
model serving, lose no annotation and publish nothing half-done."""

from __future__ import annotations

import itertools
import os
import signal
import time
from dataclasses import replace

import pytest
import redis
import requests
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.serializers import JSONSerializer

from beal_backend.config import Settings
from beal_backend.labelstudio.client import LabelStudioError
from beal_backend.store.versions import ModelStore
from beal_backend.wiring import Runtime
from beal_backend.worker import rounds as jobs
from beal_backend.worker.redis_coordination import RedisCoordinator

from .backend import children
from .faults import FaultProxy
from .helpers import (
    LS,
    connect_and_annotate,
    job_status,
    make_project,
    rows,
    wait_for_job,
    wait_for_version,
    wait_until,
)

pytestmark = pytest.mark.e2e


def _runtime(url, key, tmp_path):
    s = Settings(label_studio_url=url, label_studio_api_key=key, model_dir=str(tmp_path / "store"), ls_retries=3)
    s = replace(s, epochs=1, min_steps=0, mc_passes=4, mc_scope="full", seed=1)
    return Runtime.build(s)


def _annotated_project(ls, n_tasks, n_labeled):
    data = rows(n_tasks)
    project, tasks = make_project(ls, data, title="faults")
    for task, row in zip(tasks[:n_labeled], data[:n_labeled]):
        ls.annotate(task["id"], row["labels"])
    return project, tasks


def _predictions_by_task(ls, project):
    listing = ls("GET", "/api/tasks", params={"project": project, "fields": "all", "page_size": 1000})["tasks"]
    return {t["id"]: [p["model_version"] for p in t["predictions"]] for t in listing if not t["annotations"]}


def test_push_retries_after_lost_replies_without_duplicates(label_studio, tmp_path):
    ls = LS(*label_studio)
    project, tasks = _annotated_project(ls, 20, 8)
    with FaultProxy(label_studio[0]) as proxy:
        proxy.fail("import/predictions", "drop_reply", 1)  # stored by Label Studio, reply lost
        proxy.fail("import/predictions", "refuse", 1)  # never reached Label Studio
        rt = _runtime(proxy.url, label_studio[1], tmp_path)
        result = jobs.run_round(str(project), rt)
    version = result["version"]
    assert result["outcome"] == "trained" and result["pushed"] == 12
    imports = [status for method, path, status in proxy.seen if "import/predictions" in path]
    assert imports == [502, 502, 201]
    # exactly one prediction per unlabeled task, of the new version, although the first push was stored
    assert _predictions_by_task(ls, project) == {t["id"]: [version] for t in tasks[8:]}
    # the project switched only after the successful push
    order = [(m, p) for m, p, _ in proxy.seen]
    last_import = max(i for i, (m, p) in enumerate(order) if "import/predictions" in p)
    patch = next(i for i, (m, p) in enumerate(order) if m == "PATCH" and p.startswith(f"/api/projects/{project}"))
    assert patch > last_import
    assert ls("GET", f"/api/projects/{project}")["model_version"] == version


def test_label_studio_down_while_pushing_keeps_the_previous_state(label_studio, tmp_path):
    ls = LS(*label_studio)
    project, _tasks = _annotated_project(ls, 14, 6)
    before = ls("GET", f"/api/projects/{project}")["model_version"]
    with FaultProxy(label_studio[0]) as proxy:
        proxy.fail("import/predictions", "refuse", 100)
        rt = _runtime(proxy.url, label_studio[1], tmp_path)
        with pytest.raises(LabelStudioError, match="pushing predictions"):
            jobs.run_round(str(project), rt)
    assert sum(1 for _, p, _ in proxy.seen if "import/predictions" in p) == 4  # 1 try + 3 bounded retries
    assert rt.store.current(str(project)) is None  # stored as a candidate, never made current
    assert ls("GET", f"/api/projects/{project}")["model_version"] == before
    assert all(v == [] for v in _predictions_by_task(ls, project).values())
    st = rt.coordinator.statuses()[str(project)]["current"]
    assert st["state"] == "failed" and "pushing predictions" in st["error"]


def test_worker_killed_mid_training(label_studio, backend_factory):
    """SIGKILL during training: v1 keeps serving, no partial version, job marked failed, next trigger retrains."""
    ls = LS(*label_studio)
    b = backend_factory(LOCK_TTL=2, TRAIN_EVERY=1000)
    project, tasks = _annotated_project(ls, 24, 12)
    ml = ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal"})
    quick = b.worker("quick", EPOCHS=1)
    ls("POST", f"/api/ml/{ml['id']}/train")
    v1 = wait_for_version(b, project)
    os.killpg(quick.pid, signal.SIGTERM)
    quick.wait(30)

    slow = b.worker("slow", EPOCHS=400)
    ls("POST", f"/api/ml/{ml['id']}/train")
    wait_for_job(b, project, lambda job: job.get("stage") == "training", 120, "the slow job to start training")
    time.sleep(1.0)
    horses = children(slow.pid)  # rq forks a work horse per job, in a session of its own
    assert horses, "the worker should be running its job in a forked work horse"
    for pid in [*horses, slow.pid]:
        os.kill(pid, signal.SIGKILL)
    slow.wait(10)

    cur = wait_for_job(b, project, lambda job: job.get("state") == "failed", 30, "the killed job to be reported failed")
    assert "worker stopped during the job" in cur["error"]
    store = ModelStore(b.env["MODEL_DIR"])
    assert store.versions(str(project)) == [v1] and store.current(str(project)) == v1
    assert ls("GET", f"/api/projects/{project}")["model_version"] == v1
    pred = requests.post(
        b.url + "/predict",
        json={
            "tasks": [{"id": tasks[-1]["id"], "data": {"text": "thanks!"}}],
            "project": str(project),
            "label_config": ls("GET", f"/api/projects/{project}")["label_config"],
        },
        timeout=30,
    )
    assert pred.status_code == 200 and pred.json()["results"][0]["model_version"] == v1

    b.worker("again", EPOCHS=1)
    ls("POST", f"/api/ml/{ml['id']}/train")
    wait_for_job(b, project, lambda job: job.get("id") != cur["id"], 120, "the retraining job to start")
    v2 = wait_for_version(b, project, not_version=v1)
    assert v2 > v1


def test_burst_of_200_annotations_trains_on_all_of_them(label_studio, backend_factory):
    ls = LS(*label_studio)
    # every candidate is promoted: this test is about losing no annotation, not about the quality gate
    # the idle check (5 s) trains the burst's tail: no Start Training, no user action after the burst
    b = backend_factory(TRAIN_EVERY=10, TRAIN_IDLE_SECONDS=5, EPOCHS=1, MC_PASSES=4, PROMOTION_MARGIN=1)
    b.worker()
    data = rows(210)
    project, tasks = make_project(ls, data, title="burst")
    ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal"})
    t0 = time.time()
    for task, row in zip(tasks[:200], data[:200]):
        ls.annotate(task["id"], row["labels"])
    burst_seconds = time.time() - t0
    rq_queue = Queue("beal-training", connection=redis.Redis.from_url(b.env["REDIS_URL"]), serializer=JSONSerializer)
    store = ModelStore(b.env["MODEL_DIR"])

    coord = RedisCoordinator(redis.Redis.from_url(b.env["REDIS_URL"]), lock_ttl=60)

    def settled():
        st = job_status(b.url, project)
        cur = st.get("current_job") or {}
        v = st.get("model_version")
        return not st.get("pending") and cur.get("state") == "finished" and v != "beal-untrained" and v

    # Every annotation is in the newest model once the rounds settle: the last count-triggered round may have read
    # its tasks before the burst's last annotations were saved; those are trained by the idle round.
    def all_in():
        v = settled()
        return v if v and store.metadata(str(project), v)["n_annotations"] == 200 else None

    version = wait_until(all_in, 600, "a model trained on all 200 annotations", b.logs)
    assert coord.add_annotations(str(project), 0) == 0
    assert ls("GET", f"/api/projects/{project}")["model_version"] == version
    finished = FinishedJobRegistry(queue=rq_queue)
    failed = FailedJobRegistry(queue=rq_queue)
    n_jobs = len(finished.get_job_ids())
    # 20 triggers in the burst coalesced: never more than one running + one pending, so far fewer jobs
    assert 1 <= n_jobs < 20 and len(failed.get_job_ids()) == 0, (n_jobs, burst_seconds)
    assert _predictions_by_task(ls, project) == {
        t["id"]: [job_status(b.url, project)["model_version"]] for t in tasks[200:]
    }


def test_two_workers_drain_several_projects_without_double_work(label_studio, backend_factory):
    ls = LS(*label_studio)
    b = backend_factory(TRAIN_EVERY=4, EPOCHS=1, MC_PASSES=4)
    b.worker("w1")
    b.worker("w2")
    projects = []
    for k in range(3):
        data = rows(12, offset=20 * k)
        project, tasks = make_project(ls, data, title=f"scale {k}")
        ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal"})
        projects.append((project, tasks, data))
    store = ModelStore(b.env["MODEL_DIR"])

    def all_settled(n):
        for project, _, _ in projects:
            st = job_status(b.url, project)
            v = st.get("model_version")
            if st.get("pending") or (st.get("current_job") or {}).get("state") != "finished" or v == "beal-untrained":
                return False
            if store.metadata(str(project), v)["n_annotations"] != n:
                return False
        return True

    # Two waves, interleaved across projects: each project's 4th annotation of a wave triggers its round. A
    # wave waits for the previous one's rounds: an annotation saved after a round has read its tasks counts
    # towards the next trigger (TRAIN_EVERY), so one sent mid-round would wait for 4 more and never come.
    for wave in (range(4), range(4, 8)):
        for i in wave:
            for _project, tasks, data in projects:
                ls.annotate(tasks[i]["id"], data[i]["labels"])
        n = wave[-1] + 1
        wait_until(lambda n=n: all_settled(n), 600, f"all projects trained on their {n} annotations", b.logs)
    conn = redis.Redis.from_url(b.env["REDIS_URL"])
    q = Queue("beal-training", connection=conn, serializer=JSONSerializer)
    finished = [q.fetch_job(j) for j in FinishedJobRegistry(queue=q).get_job_ids()]
    assert len(FailedJobRegistry(queue=q).get_job_ids()) == 0
    assert len({j.id for j in finished}) == len(finished)  # no job ran twice
    assert {j.worker_name.split("-")[0] for j in finished} == {"w1", "w2"}  # both workers took work
    coord = RedisCoordinator(conn, lock_ttl=60)
    for project, _, _ in projects:  # per project, runs never overlapped (the project lock)
        log = coord.job_log(str(project))
        starts = {e["id"]: e["time"] for e in log if e["state"] == "started"}
        ends = {e["id"]: e["time"] for e in log if e["state"] == "finished"}
        spans = sorted((starts[i], ends[i]) for i in starts)
        assert len(spans) == 2 and set(starts) == set(ends)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


def test_two_projects_training_do_not_block_predict(label_studio, backend_factory):
    ls = LS(*label_studio)
    b = backend_factory(TRAIN_EVERY=1000, MC_PASSES=4)
    quick = b.worker("quick", EPOCHS=1)
    projects = []
    for k in range(2):
        data = rows(14, offset=30 * k)
        project, tasks = make_project(ls, data, title=f"parallel {k}")
        for task, row in zip(tasks[:6], data[:6]):
            ls.annotate(task["id"], row["labels"])
        ml = ls("POST", "/api/ml", json={"project": project, "url": b.url, "title": "beal"})
        ls("POST", f"/api/ml/{ml['id']}/train")
        projects.append((project, tasks, ml, wait_for_version(b, project)))
    os.killpg(quick.pid, signal.SIGTERM)
    quick.wait(30)
    config = ls("GET", f"/api/projects/{projects[0][0]}")["label_config"]

    def predict(project, tasks):
        body = {"tasks": [{"id": t["id"], "data": t["data"]} for t in tasks[6:]], "project": str(project)}
        return requests.post(b.url + "/predict", timeout=30, json={**body, "label_config": config})

    for project, tasks, _, _ in projects:  # a serving API has its models loaded: load them before timing
        assert predict(project, tasks).status_code == 200

    b.worker("s1", EPOCHS=300)
    b.worker("s2", EPOCHS=300)
    for _project, _, ml, _ in projects:
        ls("POST", f"/api/ml/{ml['id']}/train")
    wait_until(
        lambda: all((job_status(b.url, p).get("current_job") or {}).get("stage") == "training" for p, *_ in projects),
        120,
        "both projects to be training at once",
        b.logs,
    )
    latencies = []
    for _ in range(10):
        for project, tasks, _, v1 in projects:
            t0 = time.time()
            r = predict(project, tasks)
            latencies.append(time.time() - t0)
            assert r.status_code == 200 and {x["model_version"] for x in r.json()["results"]} == {v1}
    assert all((job_status(b.url, p).get("current_job") or {}).get("stage") == "training" for p, *_ in projects)
    assert max(latencies) < 2.0, latencies


def test_too_few_annotations_then_a_changed_label_set(label_studio, backend_factory):
    """1 annotation: the round is skipped with its reason. Then the labeling config gains a label: the next
    round trains on the new label set and /predict never mixes the old model with the new config."""
    ls = LS(*label_studio)
    b = backend_factory(TRAIN_EVERY=1000, EPOCHS=1, MC_PASSES=4)
    b.worker()
    data = rows(12, offset=200)
    project, tasks = make_project(ls, data, title="label change")
    ml = connect_and_annotate(ls, b.url, project, tasks, data, 1, train=True)
    cur = wait_for_job(b, project, lambda job: job.get("outcome") == "skipped", 120, "the skipped round")
    assert (
        cur["reason"] == "1 labeled tasks; need 2" and job_status(b.url, project)["model_version"] == "beal-untrained"
    )

    for task, row in zip(tasks[1:6], data[1:6]):
        ls.annotate(task["id"], row["labels"])
    ls("POST", f"/api/ml/{ml['id']}/train")
    v1 = wait_for_version(b, project)
    old_config = ls("GET", f"/api/projects/{project}")["label_config"]
    new_config = old_config.replace('<Choice value="neutral"/>', '<Choice value="neutral"/><Choice value="curiosity"/>')
    ls("PATCH", f"/api/projects/{project}", json={"label_config": new_config})
    task = {"id": tasks[-1]["id"], "data": tasks[-1]["data"]}
    mixed = requests.post(
        b.url + "/predict", timeout=30, json={"tasks": [task], "project": str(project), "label_config": new_config}
    )
    assert mixed.status_code == 200 and mixed.json()["results"] == [[]]  # v1 knows 5 labels, the config has 6

    ls("POST", f"/api/ml/{ml['id']}/train")
    v2 = wait_for_version(b, project, not_version=v1)
    meta = ModelStore(b.env["MODEL_DIR"]).metadata(str(project), v2)
    assert meta["labels"][-1] == "curiosity" and len(meta["labels"]) == 6
    fresh = requests.post(
        b.url + "/predict", timeout=30, json={"tasks": [task], "project": str(project), "label_config": new_config}
    )
    assert fresh.json()["results"][0]["model_version"] == v2
