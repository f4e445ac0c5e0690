"""``bench_round.py``'s measured backend and rounds: the API and one timed RQ worker as subprocesses
(``TimedBackend``), the frozen learner's embedding cache (``frozen_learner``, ``prefill``), and one round from
Label Studio's *Start Training* timed end to end and split by step (``run_round``, ``print_round``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import requests
from _common import timed

from tests.e2e.backend import Backend
from tests.e2e.helpers import LS, wait_until


class TimedBackend(Backend):
    """The API and one RQ worker as subprocesses (tests/e2e's Backend); the worker is ``_timed_worker.py``, whose
    timings ``events()`` reads."""

    WORKER = (sys.executable, "benchmarks/_timed_worker.py")

    def __init__(self, label_studio: tuple[str, str], workdir: Path, redis_url: str, **settings):
        self.timings = workdir / "timings.jsonl"
        super().__init__(label_studio, workdir, redis_url, health_timeout=120, BENCH_TIMINGS=self.timings, **settings)
        self.worker("bench")

    def events(self, since: float = 0.0) -> list[dict]:
        if not self.timings.exists():
            return []
        return [e for e in map(json.loads, self.timings.read_text().splitlines()) if e["start"] >= since]


def frozen_learner(backend: TimedBackend, project: int):
    from beal_backend.config import Settings
    from beal_backend.engine import learners
    from beal_backend.store.versions import ModelStore
    from beal_backend.wiring import train_config
    from beal_backend.worker import rounds as jobs

    s = Settings.from_env(backend.env)
    return learners.build(
        "frozen", train_config(s), ModelStore(s.model_dir).project_dir(str(project)) / jobs.EMBEDDINGS
    )


def prefill(backend: TimedBackend, project: int, texts: list[str], n: int) -> dict:
    """Embed n texts (measured), then give every task text one of those features (repeated) in the
    project's cache, so the round runs on len(texts) cached rows without embedding them all."""
    learner = frozen_learner(backend, project)
    with timed() as t:
        feats = learner.embed(texts[:n])
    learner.cache.features(texts, lambda missing: np.resize(feats, (len(missing), feats.shape[1])))
    return {"n": n, "wall": t["wall"], "cpu": t["cpu"]}


def run_round(ls: LS, backend: TimedBackend, project: int, ml_id: int, pool: int, previous: str | None) -> dict:
    t0 = time.time()
    ls("POST", f"/api/ml/{ml_id}/train")

    def all_predictions():
        job = requests.get(backend.url + "/jobs", timeout=10).json().get(str(project), {}).get("current_job") or {}
        if job.get("state") == "failed" and job.get("started_at", 0) >= t0 - 1:
            raise RuntimeError(f"the round failed: {job.get('error')}")
        versions = ls("GET", f"/api/projects/{project}/model-versions/")
        new = [v for v, c in versions.items() if v.startswith("beal-") and v != previous and c >= pool]
        return new[0] if new else None

    version = wait_until(all_predictions, 3600, "every prediction of the new version", backend.logs, poll=0.25)
    t_last = time.time() - t0
    ev = wait_until(
        lambda: [e for e in backend.events(t0) if e["event"] == "round_job"], 600, "the round job's end", poll=0.25
    )[0]
    t_done = ev["start"] + ev["seconds"] - t0
    job = requests.get(backend.url + "/jobs", timeout=10).json()[str(project)]["current_job"]
    calls: dict[str, float] = {}
    for e in backend.events(t0):
        if e["event"] not in ("round_job", "embed_job"):
            calls[e["event"]] = calls.get(e["event"], 0.0) + e["seconds"]
    return {
        "version": version,
        "latency_last_prediction": t_last,
        "latency_job_end": t_done,
        "queue_wait": ev["start"] - t0,
        "job_seconds": ev["seconds"],
        "maxrss_mb": ev["maxrss_mb"],
        "train_seconds": job["train_seconds"],
        "score_seconds": job["score_seconds"],
        "calls": calls,
        "pushed": job.get("pushed"),
        "removed": job.get("removed_versions"),
        "outcome": job.get("outcome"),
    }


def print_round(name: str, r: dict) -> None:
    c = r["calls"]
    fetch = c.get("tasks", 0) + c.get("label_config", 0)
    push = c.get("push_predictions", 0) + c.get("set_model_version", 0)
    delete = c.get("model_versions", 0) + c.get("delete_model_version", 0)
    other = r["job_seconds"] - fetch - r["train_seconds"] - r["score_seconds"] - push - delete
    print(f"[measured] {name}: {r['outcome']}, {r['pushed']} predictions pushed, stale versions removed {r['removed']}")
    print(
        f"  webhook -> last prediction in Label Studio {r['latency_last_prediction']:.1f} s; "
        f"-> job end (stale deleted) {r['latency_job_end']:.1f} s"
    )
    print(
        f"  split: queue wait {r['queue_wait']:.1f} | fetch {fetch:.1f} (tasks {c.get('tasks', 0):.1f}) "
        f"| train {r['train_seconds']:.1f} "
        f"(of which cache read {c.get('cache_features', 0):.1f}) | score {r['score_seconds']:.1f} | push {push:.1f} "
        f"({r['pushed'] / max(c.get('push_predictions', 1e-9), 1e-9):.0f} predictions/s) | delete stale {delete:.1f} "
        f"| other (gate, store publish, prune) {other:.1f} s"
    )
    print(f"  worker (work horse) peak RSS {r['maxrss_mb']:.0f} MB")
