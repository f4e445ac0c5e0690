"""Round latency against a real Label Studio: frozen learner measured, finetune learner extrapolated.

A real Label Studio 1.23.2 (``tests/e2e/label_studio.py``), a private Redis, the API (``beal serve``) and one
RQ worker as subprocesses (the worker is ``_timed_worker.py``: ``beal worker`` with timers around its Label
Studio calls). Steps, each printed with its time:

1. a project with GoEmotions' 28 choices; the backend connected (``/api/ml``);
2. ``--tasks`` GoEmotions texts imported in one call, the first ``--annotations`` with their annotation
   inline (bulk import); the import's ``TASKS_CREATED`` webhook makes the worker embed them (tasks/s);
   with ``--prefill N`` the cache is filled before the import from N measured embeddings, repeated;
3. two rounds from Label Studio's *Start Training* (``/api/ml/<id>/train``): latency from that call to the
   moment Label Studio holds the new version's prediction for every unlabeled task, and to the job's end
   (stale predictions deleted), split into fetch, train, score, push, delete stale;
4. the finetune learner (``MC_SCOPE=last-2``, T = ``--passes``) on the same annotations and pool,
   in-process: one epoch and ``--ft-sample`` pool texts measured, scaled to ``EPOCHS`` and the pool
   (labelled extrapolated), plus the frozen round's measured Label Studio steps.

``--io`` measures instead the Label Studio traffic of a round in detail. Label Studio 1.23 recounts the counters
of every task of the project after each prediction import request (unless its feature flag
``fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short`` is on), so the cost of a push depends
on how many requests it takes. For a project of ``--tasks`` short texts this prints, side by side in one run:
reading every task with its annotations the v0.2 way (every task in full, with its predictions) vs
``LabelStudioClient.tasks`` (annotated tasks in full, then id + data of all), on a project with
``--annotations`` annotated tasks and two versions of predictions; the push of a prediction for every task in
requests of ``--chunk`` vs in one request (each twice: into an empty prediction table, then next to the previous
version's), the ratio, the same chunked push with the flag on (a second server), and the time to delete a
version (``DELETE model-versions``).

    python benchmarks/bench_round.py --tasks 5000 --annotations 500
    python benchmarks/bench_round.py --io --tasks 10000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATASETS, choices_config, loadavg, machine, timed
from _finetune_estimate import finetune_report
from _label_studio_io import label_studio_io
from _timed_round import TimedBackend, frozen_learner, prefill, print_round, run_round

from beal_backend.simulation import datasets
from tests.e2e.helpers import LS, wait_until
from tests.e2e.label_studio import LabelStudio


def goemotions(n: int, data: Path) -> tuple[list[str], list[list[str]], list[str]]:
    """The first n GoEmotions train texts; past the file's end the texts repeat with a suffix " (k)",
    so every task text is distinct (a distinct cache key)."""
    rows = datasets.read_pool(data / "goemotions")
    labels = datasets.read_labels(data / "goemotions")
    texts, label_sets = [], []
    for i in range(n):
        r = rows[i % len(rows)]
        texts.append(r["text"] if i < len(rows) else f"{r['text']} ({i // len(rows)})")
        label_sets.append(list(r["labels"]))
    return texts, label_sets, labels


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--io", action="store_true", help="measure the Label Studio traffic of a round instead (see above)")
    p.add_argument("--tasks", type=int, default=5000)
    p.add_argument("--annotations", type=int, default=500)
    p.add_argument("--chunk", type=int, default=1000, help="--io: predictions per request of the chunked push")
    p.add_argument("--passes", type=int, default=100, help="T (MC_PASSES) of both learners")
    p.add_argument(
        "--prefill",
        type=int,
        default=0,
        help="embed only this many texts and repeat them in the cache (0: embed all at import)",
    )
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument(
        "--ls-timeout",
        type=float,
        default=0,
        help="override the worker's Label Studio read timeout (the shipped client uses 30 s); 0: keep it",
    )
    p.add_argument(
        "--ft-sample", type=int, default=100, help="pool texts the finetune scoring is measured on (0: skip finetune)"
    )
    p.add_argument("--redis", default="redis://127.0.0.1:6379/14", help="a Redis database the run may flush")
    p.add_argument("--ls-instance", default="bench")
    p.add_argument("--data", type=Path, default=DATASETS)
    args = p.parse_args()
    if args.io:
        return label_studio_io(args)
    print(f"# bench_round  {machine()}")
    texts, label_sets, labels = goemotions(args.tasks, args.data)
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    work = Path(tempfile.mkdtemp(prefix="bench-round-"))
    server = LabelStudio(instance=args.ls_instance)
    backend = None
    try:
        with timed() as t:
            url, key = server.start()
        print(f"[measured] Label Studio 1.23.2 started in {t['wall']:.1f} s at {url}")
        ls = LS(url, key, timeout=600)
        config = choices_config(labels, "emotion")
        project = ls("POST", "/api/projects", json={"title": "bench", "label_config": config})["id"]
        extra = {"BENCH_LS_TIMEOUT": args.ls_timeout} if args.ls_timeout else {}
        if args.ls_timeout:
            print(
                f"!! benchmark override: the worker's Label Studio timeout is {args.ls_timeout:.0f} s (shipped: 30 s)"
            )
        backend = TimedBackend(
            (url, key),
            work,
            args.redis,
            LEARNER="frozen",
            MC_PASSES=args.passes,
            TRAIN_EVERY=10**6,
            TRAIN_IDLE_SECONDS=0,
            **extra,
        )
        if args.prefill:
            pf = prefill(backend, project, texts, args.prefill)
            print(
                f"[measured] embedding {pf['n']} texts in the benchmark process: wall {pf['wall']:.1f} s, "
                f"cpu {pf['cpu']:.1f} s "
                f"= {pf['n'] / pf['wall']:.1f} tasks/s (wall)"
            )
            print(
                f"[extrapolated] import-time embedding of all {args.tasks} texts at that rate: "
                f"{args.tasks / pf['n'] * pf['wall']:.0f} s wall"
            )
            print(
                f"  the cache was pre-filled with those {pf['n']} features repeated over all {args.tasks} task texts "
                f"(distinct keys)"
            )
        # pre-filled: connect after the import, so no TASKS_CREATED job re-reads every task for nothing
        ml_id = (
            None
            if args.prefill
            else ls("POST", "/api/ml", json={"project": project, "url": backend.url, "title": "beal"})["id"]
        )
        tasks = [{"data": {"text": x}} for x in texts]
        for task, names in zip(tasks[: args.annotations], label_sets):
            task["annotations"] = [
                {
                    "result": [
                        {"from_name": "emotion", "to_name": "text", "type": "choices", "value": {"choices": names}}
                    ]
                }
            ]
        t_import = time.time()
        with timed() as t:
            ls("POST", f"/api/projects/{project}/import", json=tasks)
        print(
            f"[measured] bulk import of {args.tasks} tasks ({args.annotations} with an annotation): {t['wall']:.1f} s"
        )
        if ml_id is None:
            ml_id = ls("POST", "/api/ml", json={"project": project, "url": backend.url, "title": "beal"})["id"]
        cache = frozen_learner(backend, project).cache
        # the job's own line is written when it returns, just after the cache is complete
        distinct = len(set(texts))  # a few GoEmotions texts repeat: one cache row each
        wait_until(
            lambda: (
                cache.size() >= distinct
                and (args.prefill or any(e["event"] == "embed_job" for e in backend.events(t_import)))
            ),
            7200,
            "the import-time embedding",
            backend.logs,
            poll=2,
        )
        emb = [e for e in backend.events(t_import) if e["event"] == "embed_job"]
        feat = [e for e in backend.events(t_import) if e["event"] == "cache_features"]
        if emb:
            done = max(e["start"] + e["seconds"] for e in emb) - t_import
            enc = sum(e["seconds"] for e in feat)
            rate = (
                "cache pre-filled: nothing to embed"
                if args.prefill
                else f"{distinct / enc:.1f} texts/s (wall; {distinct} distinct texts)"
            )
            print(
                f"[measured] import-time embedding job(s): {len(emb)}, encoder+cache {enc:.1f} s, "
                f"job total {sum(e['seconds'] for e in emb):.1f} s, all cached {done:.1f} s after the import call; "
                f"{rate}; peak RSS {max(e['maxrss_mb'] for e in emb):.0f} MB"
            )
        cache_mb = sum(f.stat().st_size for f in cache.folder.glob("*.features")) / 2**20
        print(f"[measured] embedding cache: {cache.size()} rows, {cache_mb:.1f} MB on disk")
        pool = args.tasks - args.annotations
        previous, results = None, []
        for i in range(args.rounds):
            r = run_round(ls, backend, project, ml_id, pool, previous)
            print_round(f"frozen round {i + 1} (T={args.passes}, {args.annotations} annotations, pool {pool})", r)
            previous = r["version"]
            results.append(r)
        backend.stop()
        backend = None
        summary = {"tasks": args.tasks, "annotations": args.annotations, "frozen": results, "cache_mb": cache_mb}
        if args.ft_sample:
            env = {
                "LABEL_STUDIO_URL": url,
                "LABEL_STUDIO_API_KEY": key,
                "MODEL_DIR": str(work / "model_store"),
                "DEVICE": "cpu",
            }
            ft = finetune_report(env, args, project, results[-1])
            summary["finetune"] = ft
        print(f"## load average now {loadavg():.1f}")
        print(json.dumps(summary, default=str))
    finally:
        if backend is not None:
            backend.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
