"""``/predict`` for a task the current version never scored: frozen vs finetune learner, p50 latency.

Two projects in one model store, each with a current version: a frozen model (head trained on cached
features) and a fine-tuned one (1 epoch; its weights do not change the cost). The service's Flask app
(``api.create_app``, embedded mode) answers ``POST /predict`` with one new GoEmotions text per request,
so every request scores in the request: the frozen model embeds the text (one encoder pass) and samples
its head ``PREDICT_PASSES`` times; the fine-tuned one runs ``PREDICT_PASSES`` MC passes under ``MC_SCOPE``
(``last-2``: the first layers once). Requests alternate between the two projects; one warm-up each.

    python benchmarks/bench_predict_uncached.py --requests 40
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see docs/benchmarks.md: spin-waiting on shared cores
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from _common import add_data_arg, load_dataset, loadavg, machine, set_threads

from beal_backend.config import Settings
from beal_backend.engine import learners
from beal_backend.service.app import create_app
from beal_backend.wiring import build_runtime, train_config


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=40, help="timed requests per learner")
    p.add_argument("--labeled", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    add_data_arg(p)
    args = p.parse_args()
    set_threads(args.threads)
    print(f"# bench_predict_uncached  {machine()}")
    texts, label_sets, labels = load_dataset(
        "goemotions", args.labeled + 2 * (args.requests + 1), seed=1, data=args.data
    )
    train, new = texts[: args.labeled], texts[args.labeled :]
    config = (
        '<View><Text name="text" value="$text"/><Choices name="c" toName="text" choice="multiple">'
        + "".join(f'<Choice value="{c}"/>' for c in labels)
        + "</Choices></View>"
    )
    settings = Settings.from_env(
        {"MODEL_DIR": tempfile.mkdtemp(prefix="bench-predict-"), "DEVICE": "cpu", "MC_SCOPE": "last-2"}
    )
    rt = build_runtime(settings)
    for project, name in (("1", "frozen"), ("2", "finetune")):
        cfg = train_config(settings) if name == "frozen" else replace(train_config(settings), epochs=1)
        trained = learners.build(name, cfg).fit(train, label_sets[: args.labeled], labels)
        version = rt.store.publish(project, trained, {"tasks": {}}, {"learner": name})
        rt.store.set_current(project, version)
        rt.store.write_project(project, {"label_config": config})
    client = create_app(rt).test_client()
    print(
        f"PREDICT_PASSES={settings.predict_passes} MC_SCOPE={settings.mc_scope} "
        f"pooling (frozen)={learners.build('frozen', train_config(settings)).cfg.pooling}; "
        f"{args.requests} timed requests per learner, one uncached task each, alternating; one warm-up each"
    )
    lat: dict[str, list[float]] = {"frozen": [], "finetune": []}
    for i in range(args.requests + 1):
        for project, name in (("1", "frozen"), ("2", "finetune")):
            text = new[2 * i + (project == "2")]
            body = {"project": project, "tasks": [{"id": 10**6 + 2 * i + int(project), "data": {"text": text}}]}
            t0 = time.perf_counter()
            r = client.post("/predict", json=body)
            dt = time.perf_counter() - t0
            assert r.status_code == 200 and r.get_json()["results"][0], (
                name,
                r.status_code,
                r.get_data(as_text=True)[:300],
            )
            if i:  # the first request of each loads the version from the store
                lat[name].append(dt * 1000)
    q = {n: np.percentile(v, [50, 90]) for n, v in lat.items()}
    ratio = q["finetune"][0] / q["frozen"][0]
    print(f"## /predict, 1 uncached task per request, CPU (load average now {loadavg():.1f})")
    print("| learner | requests | p50 ms | p90 ms | mean ms |")
    print("|---|---|---|---|---|")
    for n in ("frozen", "finetune"):
        print(f"| {n} | {len(lat[n])} | {q[n][0]:.0f} | {q[n][1]:.0f} | {np.mean(lat[n]):.0f} |")
    print(f"[measured] p50 finetune / frozen = {ratio:.1f}x")
    print(json.dumps({"p50_ms": {n: q[n][0] for n in q}, "ratio_p50": ratio}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
