"""What the idle checks add to a webhook: /webhook latency with TRAIN_IDLE_SECONDS=0 and =300, side by side.

Label Studio waits 1 s for a webhook. An annotation event with idle checks on also records its time and
claims the project's idle-check slot in Redis (and the first one of a burst schedules the delayed rq job).
Both apps run in this process (Flask's test client: the cost measured is the app's and Redis's, not HTTP's)
on the real Redis (``--redis``, default 127.0.0.1:6379 database 5, flushed), in alternating blocks so the machine's
noise falls on both alike. TRAIN_EVERY is out of reach, so no round is enqueued.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_webhook.py [--events 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine

from beal_backend.config import Settings
from beal_backend.service.app import create_app
from beal_backend.wiring import build_runtime

CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="label" toName="text" choice="multiple">'
    '<Choice value="a"/><Choice value="b"/></Choices></View>'
)


def client(idle: int, redis_url: str, store: str, project: int):
    rt = build_runtime(Settings(model_dir=store, redis_url=redis_url, train_every=10**9, train_idle_seconds=idle))
    rt.store.write_project(str(project), {"label_config": CONFIG})  # what /setup stores once Label Studio confirms
    return create_app(rt).test_client()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=2000, help="annotation webhooks per setting")
    p.add_argument("--block", type=int, default=100, help="webhooks per setting before switching")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/5", help="a Redis database this run may flush")
    args = p.parse_args()
    redis_url = args.redis
    with tempfile.TemporaryDirectory() as store:
        build_runtime(Settings(model_dir=store, redis_url=redis_url)).redis.flushdb()
        clients = {idle: client(idle, redis_url, store, project) for project, idle in ((1, 0), (2, 300))}
        times: dict[int, list[float]] = {0: [], 300: []}
        for _ in range(args.events // args.block):
            for idle, project in ((0, 1), (300, 2)):
                event = {"action": "ANNOTATION_CREATED", "annotation": {"id": 1}, "project": {"id": project}}
                for _ in range(args.block):
                    t = time.perf_counter()
                    r = clients[idle].post("/webhook", json=event)
                    times[idle].append(time.perf_counter() - t)
                    assert r.status_code == 200 and r.get_json()["status"] == "counted", r.get_json()
    print(f"# bench_webhook  {machine()}, {args.events} annotation webhooks per setting, Redis {redis_url}")
    print("| TRAIN_IDLE_SECONDS | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    p50 = {}
    for idle, t in times.items():
        ms = np.array(t) * 1000
        p50[idle] = float(np.percentile(ms, 50))
        print(f"| {idle} | {p50[idle]:.2f} | {np.percentile(ms, 99):.2f} | {ms.max():.2f} |")
    print(f"[measured] p50 with idle checks / without: {p50[300] / p50[0]:.2f}x (Label Studio waits 1,000 ms)")


if __name__ == "__main__":
    main()
