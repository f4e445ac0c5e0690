"""``bench_scoring.py --kind predict-uncached``: ``POST /predict`` of a task the current version never scored, frozen
vs finetune learner, p50 latency (the Flask app, embedded mode; one new text per request, alternating)."""

from __future__ import annotations

import json

import numpy as np
from _common import choices_config, load_dataset, loadavg, machine


def predict_uncached(args) -> int:
    """p50 latency of ``/predict`` for a never-scored task: the frozen model embeds the text once and samples
    its head ``PREDICT_PASSES`` times; the fine-tuned one runs ``PREDICT_PASSES`` MC passes under ``MC_SCOPE``."""
    import tempfile
    import time
    from dataclasses import replace

    from beal_backend.config import Settings
    from beal_backend.engine import learners
    from beal_backend.service.app import create_app
    from beal_backend.wiring import build_runtime, train_config

    print(f"# bench_scoring --kind predict-uncached  {machine()}")
    texts, label_sets, labels = load_dataset(
        "goemotions", args.labeled + 2 * (args.requests + 1), seed=1, data=args.data
    )
    train, new = texts[: args.labeled], texts[args.labeled :]
    settings = Settings.from_env(
        {"MODEL_DIR": tempfile.mkdtemp(prefix="bench-predict-"), "DEVICE": "cpu", "MC_SCOPE": "last-2"}
    )
    rt = build_runtime(settings)
    for project, name in (("1", "frozen"), ("2", "finetune")):  # its weights do not change the cost: 1 epoch
        cfg = train_config(settings) if name == "frozen" else replace(train_config(settings), epochs=1)
        trained = learners.build(name, cfg).fit(train, label_sets[: args.labeled], labels)
        version = rt.store.publish(project, trained, {"tasks": {}}, {"learner": name})
        rt.store.set_current(project, version)
        rt.store.write_project(project, {"label_config": choices_config(labels)})
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
            assert r.status_code == 200 and r.get_json()["results"][0], (name, r.status_code, r.get_data()[:300])
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
