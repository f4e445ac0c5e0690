"""Load benchmark: /predict under 32 concurrent clients against gunicorn on loopback.

Workloads in the same run, side by side:
- cached:    tasks scored by the last training round (scores.json) -> a dictionary lookup per task; measured
             from a cold start (no warm-up: each worker's first sight of the version is included), then again
             right after a new version is made current (what the first requests after a round meet);
- in-request: tasks the round never saw -> MC dropout in the request (PREDICT_PASSES passes).
Prints p50/p99 latency, throughput and the cached / in-request throughput ratio. Bounded in requests and
time; only 127.0.0.1 is contacted.

    HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_load.py [--clients 32] [--requests 1500]
    (BENCH_REDIS_URL: the Redis the served app uses; default redis://127.0.0.1:6379/9)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
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

from _common import DATASETS, datasets

from beal_backend.engine import training
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.labelstudio.label_config import parse_label_config
from beal_backend.store.versions import ModelStore
from beal_backend.worker import rounds as jobs

DATA = DATASETS / "goemotions"


def load_rows(n):
    return datasets.read_pool(DATA)[:n]


def prepare_store(model_dir: Path, pool: int, train_rows: int = 100) -> tuple[str, list[dict], object]:
    labels = datasets.read_labels(DATA)
    config = (
        '<View><Text name="text" value="$text"/><Choices name="emotion" toName="text" choice="multiple">'
        + "".join(f'<Choice value="{c}"/>' for c in labels)
        + "</Choices></View>"
    )
    rows = load_rows(train_rows + 2 * pool)
    trained = training.train(
        [r["text"] for r in rows[:train_rows]],
        [r["labels"] for r in rows[:train_rows]],
        labels,
        training.TrainConfig(epochs=1, min_val=1000),
    )
    schema = parse_label_config(config)
    cached = rows[train_rows : train_rows + pool]
    ids = list(range(1, pool + 1))
    scores = jobs.score_pool(
        trained, ids, [r["text"] for r in cached], schema, ScoringConfig(passes=10, scope="last-2")
    )
    store = ModelStore(model_dir)
    store.write_project("1", {"label_config": config})

    def new_round():  # what a round leaves: a new version (same scores) made current
        store.set_current("1", store.publish("1", trained, scores, {"n_annotations": train_rows, "n_pool": pool}))

    new_round()
    tasks = [{"id": i, "data": {"text": r["text"]}} for i, r in zip(ids, cached)]
    fresh = [{"id": 100000 + i, "data": {"text": r["text"]}} for i, r in enumerate(rows[train_rows + pool :])]
    return config, tasks + fresh, new_round


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=1500, help="cached workload; in-request gets a tenth")
    ap.add_argument("--pool", type=int, default=300)
    ap.add_argument("--max-seconds", type=float, default=90)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-rows", type=int, default=100, help="texts the served model is trained on")
    args = ap.parse_args()

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
