"""Load benchmark: /predict under 32 concurrent clients against gunicorn on loopback.

Workloads in the same run, side by side:
- cached:    tasks scored by the last training round (scores.json) -> a dictionary lookup per task; measured
             from a cold start (no warm-up: each worker's first sight of the version is included), then again
             right after a new version is made current (what the first requests after a round meet);
- in-request: tasks the round never saw -> MC dropout in the request (PREDICT_PASSES passes).
Prints p50/p99 latency, throughput and the cached / in-request throughput ratio. Bounded in requests and
time; only 127.0.0.1 is contacted.

``--webhook``: what the idle checks add to a webhook instead, /webhook latency with TRAIN_IDLE_SECONDS=0 and
=300, side by side. Label Studio waits 1 s for a webhook. An annotation event with idle checks on also records
its time and claims the project's idle-check slot in Redis (and the first one of a burst schedules the delayed
rq job). Both apps run in this process (Flask's test client: the cost measured is the app's and Redis's, not
HTTP's) on the real Redis (``--redis``, default 127.0.0.1:6379 database 5, flushed), in alternating blocks so
the machine's noise falls on both alike. TRAIN_EVERY is out of reach, so no round is enqueued.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_load.py [--clients 32] [--requests 1500]
    (BENCH_REDIS_URL: the Redis the served app uses; default redis://127.0.0.1:6379/9)
    PYTHONPATH=. .venv/bin/python benchmarks/bench_load.py --webhook [--events 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATASETS, choices_config, datasets, machine

from beal_backend.config import Settings
from beal_backend.engine import training
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.service.app import create_app
from beal_backend.store.versions import ModelStore
from beal_backend.wiring import build_runtime
from beal_backend.worker import pool_scores
from tests.ports import free_port

DATA = DATASETS / "goemotions"


def load_rows(n):
    return datasets.read_pool(DATA)[:n]


def prepare_store(model_dir: Path, pool: int, train_rows: int = 100) -> tuple[str, list[dict], object]:
    labels = datasets.read_labels(DATA)
    config = choices_config(labels, "emotion")
    rows = load_rows(train_rows + 2 * pool)
    trained = training.train(
        [r["text"] for r in rows[:train_rows]],
        [r["labels"] for r in rows[:train_rows]],
        labels,
        training.TrainConfig(epochs=1, min_steps=0, min_val=1000),
    )
    cached = rows[train_rows : train_rows + pool]
    ids = list(range(1, pool + 1))
    scores = pool_scores.score_pool(trained, ids, [r["text"] for r in cached], ScoringConfig(passes=10, scope="last-2"))
    store = ModelStore(model_dir)
    store.write_project("1", {"label_config": config})

    def new_round():  # what a round leaves: a new version (same scores) made current
        store.set_current("1", store.publish("1", trained, scores, {"n_annotations": train_rows, "n_pool": pool}))

    new_round()
    tasks = [{"id": i, "data": {"text": r["text"]}} for i, r in zip(ids, cached)]
    fresh = [{"id": 100000 + i, "data": {"text": r["text"]}} for i, r in enumerate(rows[train_rows + pool :])]
    return config, tasks + fresh, new_round


def hammer(url, bodies, clients, max_requests, max_seconds):
    """``clients`` threads send the bodies round-robin until max_requests or max_seconds."""
    lat, errors, lock, counter = [], [0], threading.Lock(), [0]
    deadline = time.perf_counter() + max_seconds

    def client(k):
        s = requests.Session()
        while time.perf_counter() < deadline:
            with lock:
                if counter[0] >= max_requests:
                    return
                i = counter[0]
                counter[0] += 1
            t0 = time.perf_counter()
            r = s.post(url, json=bodies[i % len(bodies)], timeout=120)
            dt = time.perf_counter() - t0
            with lock:
                lat.append(dt)
                errors[0] += r.status_code != 200

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array(lat)
    return {
        "requests": len(lat),
        "errors": errors[0],
        "seconds": round(wall, 2),
        "rps": round(len(lat) / wall, 1),
        "p50_ms": round(1000 * np.percentile(lat, 50), 1),
        "p99_ms": round(1000 * np.percentile(lat, 99), 1),
    }


def webhook_client(idle: int, redis_url: str, store: str, project: int):
    rt = build_runtime(Settings(model_dir=store, redis_url=redis_url, train_every=10**9, train_idle_seconds=idle))
    # what /setup stores once Label Studio confirms
    rt.store.write_project(str(project), {"label_config": choices_config(["a", "b"], "label")})
    return create_app(rt).test_client()


def webhook(args) -> None:
    """``--webhook``: /webhook latency without and with idle checks, in alternating blocks."""
    redis_url = args.redis
    with tempfile.TemporaryDirectory() as store:
        build_runtime(Settings(model_dir=store, redis_url=redis_url)).redis.flushdb()
        clients = {idle: webhook_client(idle, redis_url, store, project) for project, idle in ((1, 0), (2, 300))}
        times: dict[int, list[float]] = {0: [], 300: []}
        for _ in range(args.events // args.block):
            for idle, project in ((0, 1), (300, 2)):
                event = {"action": "ANNOTATION_CREATED", "annotation": {"id": 1}, "project": {"id": project}}
                for _ in range(args.block):
                    t = time.perf_counter()
                    r = clients[idle].post("/webhook", json=event)
                    times[idle].append(time.perf_counter() - t)
                    assert r.status_code == 200 and r.get_json()["status"] == "counted", r.get_json()
    print(f"# bench_load --webhook  {machine()}, {args.events} annotation webhooks per setting, Redis {redis_url}")
    print("| TRAIN_IDLE_SECONDS | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    p50 = {}
    for idle, t in times.items():
        ms = np.array(t) * 1000
        p50[idle] = float(np.percentile(ms, 50))
        print(f"| {idle} | {p50[idle]:.2f} | {np.percentile(ms, 99):.2f} | {ms.max():.2f} |")
    print(f"[measured] p50 with idle checks / without: {p50[300] / p50[0]:.2f}x (Label Studio waits 1,000 ms)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--webhook", action="store_true", help="measure /webhook with and without idle checks instead")
    ap.add_argument("--events", type=int, default=2000, help="--webhook: annotation webhooks per setting")
    ap.add_argument("--block", type=int, default=100, help="--webhook: webhooks per setting before switching")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/5", help="--webhook: a Redis database it may flush")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=1500, help="cached workload; in-request gets a tenth")
    ap.add_argument("--pool", type=int, default=300)
    ap.add_argument("--max-seconds", type=float, default=90)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-rows", type=int, default=100, help="texts the served model is trained on")
    args = ap.parse_args()
    if args.webhook:
        webhook(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        config, tasks, new_round = prepare_store(Path(tmp), args.pool, args.train_rows)
        port = free_port()
        env = {
            **os.environ,
            "MODEL_DIR": tmp,
            "HF_HUB_OFFLINE": "1",
            "PREDICT_PASSES": "10",
            "MC_SCOPE": "last-2",
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--threads",
                "16",
                "--timeout",
                "300",
                "_wsgi:make_app()",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    requests.get(url + "/health", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.2)
            body = lambda t: {"tasks": [t], "project": "1.1", "label_config": config}  # noqa: E731
            cached = [body(t) for t in tasks[: args.pool]]
            fresh = [body(t) for t in tasks[args.pool :]]
            # no warm-up: the cached workload's first requests are each worker's first sight of the version,
            # then a round publishes a new version and the same workload meets it
            half = args.requests // 2
            res_cold = hammer(url + "/predict", cached, args.clients, half, args.max_seconds)
            new_round()
            res_round = hammer(url + "/predict", cached, args.clients, half, args.max_seconds)
            res_fresh = hammer(url + "/predict", fresh, args.clients, max(args.requests // 10, 32), args.max_seconds)
        finally:
            server.terminate()
            server.wait(20)

    print(
        f"/predict, {args.clients} concurrent clients, gunicorn {args.workers} workers x 16 threads, "
        f"1 task per request, CPU"
    )
    rows = (("cached, cold", res_cold), ("cached, new version", res_round), ("in-request", res_fresh))
    print(f"{'workload':<22}{'requests':>9}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name, r in rows:
        print(f"{name:<22}{r['requests']:>9}{r['errors']:>8}{r['rps']:>9}{r['p50_ms']:>9}{r['p99_ms']:>9}")
    ratio = res_round["rps"] / res_fresh["rps"]
    print(f"throughput ratio cached / in-request: {ratio:.1f}x")
    print(json.dumps({"cached_cold": res_cold, "cached_new_version": res_round, "in_request": res_fresh}))


if __name__ == "__main__":
    main()
