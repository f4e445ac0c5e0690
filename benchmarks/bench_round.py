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
from dataclasses import replace
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATASETS, choices_config, loadavg, machine, timed

from beal_backend.labelstudio.client import PAGE_SIZE, LabelStudioClient
from beal_backend.simulation import datasets
from tests.e2e.backend import Backend
from tests.e2e.helpers import LS, wait_until
from tests.e2e.label_studio import LabelStudio

FLAG = "fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short"
RESULT = [{"from_name": "c", "to_name": "text", "type": "choices", "value": {"choices": ["b"]}}]  # --io's one label


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


def finetune_estimate(env: dict, project: int, passes: int, sample: int, seed: int = 0) -> dict:
    """The finetune learner on the project's own annotations and pool, in this process: one epoch and
    ``sample`` pool texts measured, scaled to EPOCHS and to the whole pool."""
    from beal_backend.config import Settings
    from beal_backend.engine import learners
    from beal_backend.engine.holdout import held_out_split
    from beal_backend.labelstudio.client import LabelStudioClient
    from beal_backend.wiring import scoring_config, train_config
    from beal_backend.worker import pool_scores
    from beal_backend.worker.examples import read_project

    s = Settings.from_env({**env, "LEARNER": "finetune", "MC_SCOPE": "last-2", "MC_PASSES": str(passes)})
    client = LabelStudioClient(s.label_studio_url, s.label_studio_api_key)
    schema, ex = read_project(client, str(project), s.max_text_chars)
    cfg = replace(train_config(s), epochs=1, single_label=schema.single_label)
    held = held_out_split(ex.task_ids, cfg.val_fraction, cfg.min_val).stop  # an estimate: the gate half trains
    steps: list[float] = []  # time of each optimiser step: separates model loading from the epoch
    with timed() as t_train:
        trained = learners.build("finetune", cfg).fit(
            ex.texts,
            ex.label_sets,
            list(schema.labels),
            val_rows=held,
            on_progress=lambda p: steps.append(time.perf_counter()),
        )
    t_end = time.perf_counter()
    per_step = (steps[-1] - steps[0]) / max(len(steps) - 1, 1)
    epoch = per_step * len(steps) + (t_end - steps[-1])  # the steps + held-out evaluation after them
    setup = t_train["wall"] - epoch
    rows = np.sort(
        np.random.default_rng(seed).choice(len(ex.pool_ids), size=min(sample, len(ex.pool_ids)), replace=False)
    )
    with timed() as t_score:
        pool_scores.score_pool(
            trained, [ex.pool_ids[i] for i in rows], [ex.pool_texts[i] for i in rows], scoring_config(s)
        )
    return {
        "epochs": train_config(s).epochs,
        "train_1_epoch": t_train,
        "setup": setup,
        "epoch": epoch,
        "sample": len(rows),
        "pool": len(ex.pool_ids),
        "score_sample": t_score,
        "scope": scoring_config(s).scope,
        "passes": scoring_config(s).passes,
    }


class Server(LS):
    """``--io``'s Label Studio: projects of short texts, pushes, reads and deletes, each timed by the caller."""

    def __init__(self, url: str, key: str):
        super().__init__(url, key, timeout=3600)

    def project(self, n: int, annotated: int = 0) -> tuple[int, list[int]]:
        pid = self("POST", "/api/projects", json={"title": "bench push", "label_config": choices_config(["a", "b"])})[
            "id"
        ]
        tasks: list[dict] = [{"text": f"text number {i} " * 5} for i in range(n)]
        tasks = [{"data": t, "annotations": [{"result": RESULT}]} if i < annotated else t for i, t in enumerate(tasks)]
        self("POST", f"/api/projects/{pid}/import", json=tasks)
        ids, page = [], 1
        while True:  # ids only: Label Studio answers 404 past the last page
            r = self.s.get(
                self.url + "/api/tasks/",
                params={"project": pid, "fields": "task_only", "include": "id", "page": page, "page_size": 5000},
            )
            if r.status_code == 404:
                return pid, ids
            ids += [t["id"] for t in r.json()["tasks"]]
            page += 1

    def push(self, pid: int, ids: list[int], version: str, chunk: int) -> float:
        preds = [{"task": t, "model_version": version, "score": 0.5, "result": RESULT} for t in ids]
        t0 = time.perf_counter()
        for s in range(0, len(preds), chunk):
            self("POST", f"/api/projects/{pid}/import/predictions", json=preds[s : s + chunk])
        return time.perf_counter() - t0

    def read_all_in_full(self, pid: int) -> tuple[int, int]:
        """v0.2's read: every task with fields=all, pages of PAGE_SIZE. Returns (tasks, annotations)."""
        tasks, page = [], 1
        while True:
            r = self.s.get(
                self.url + "/api/tasks/", params={"project": pid, "fields": "all", "page": page, "page_size": PAGE_SIZE}
            )
            if r.status_code == 404:
                return len(tasks), sum(len(t["annotations"]) for t in tasks)
            tasks += r.json()["tasks"]
            page += 1

    def delete(self, pid: int, version: str) -> float:
        t0 = time.perf_counter()
        self("DELETE", f"/api/projects/{pid}/model-versions/", json={"model_version": version})
        return time.perf_counter() - t0


def pushes(server: Server, n: int, chunk: int, label: str) -> list[float]:
    pid, ids = server.project(n)
    times = [server.push(pid, ids, v, chunk) for v in ("v1", "v2")]
    for v, t in zip(("v1 (empty table)", "v2 (next to v1)"), times):
        print(f"[measured] {label}: {n} predictions {v}: {t:.1f} s = {n / t:.0f} predictions/s", flush=True)
    if label.startswith("one request"):
        print(f"[measured] delete a version of {n} predictions: {server.delete(pid, 'v1'):.1f} s", flush=True)
    return times


def reads(server: Server, key: str, n: int, annotated: int) -> None:
    """Both reads of one project holding ``annotated`` annotations and two versions of predictions, interleaved
    twice; the minimum of each. Both must see the same tasks and annotations."""
    pid, ids = server.project(n, annotated)
    for v in ("v1", "v2"):
        server.push(pid, ids, v, n)
    client = LabelStudioClient(server.url, key, timeout=3600)
    full, split = [], []
    for _ in range(2):
        t0 = time.perf_counter()
        seen_full = server.read_all_in_full(pid)
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        got = client.tasks(pid)
        split.append(time.perf_counter() - t0)
        assert seen_full == (len(got), sum(len(t.annotations) for t in got)) == (n, annotated), seen_full
    print(
        f"[measured] read {n} tasks ({annotated} annotated, 2 versions of predictions): every task in full "
        f"{min(full):.1f} s (v0.2), annotated in full + id/data of all {min(split):.1f} s (LabelStudioClient.tasks)"
    )
    print(f"[ratio] reading the tasks: {min(full) / min(split):.1f}x faster", flush=True)


def label_studio_io(args) -> int:
    """``--io``: reads, pushes and a delete on Label Studio with its import flag off, then the push with it on."""
    print(f"# bench_round --io  {machine()}")
    results = {}
    for flag in (False, True):
        ls = LabelStudio(instance=args.ls_instance, extra_env={FLAG: "true"} if flag else None)
        url, key = ls.start()
        server = Server(url, key)
        try:
            if not flag:
                reads(server, key, args.tasks, args.annotations)
            tag = f"flag {'on' if flag else 'off'}"
            results[(flag, "chunked")] = pushes(server, args.tasks, args.chunk, f"requests of {args.chunk}, {tag}")
            if not flag:
                results[(flag, "one")] = pushes(server, args.tasks, args.tasks, f"one request, {tag}")
        finally:
            ls.stop()
    for i, v in enumerate(("v1", "v2")):
        chunked, one, flagged = (
            results[(False, "chunked")][i],
            results[(False, "one")][i],
            results[(True, "chunked")][i],
        )
        print(
            f"[ratio] {v}: requests of {args.chunk} take {chunked / one:.1f}x the time of one request "
            f"(flag off); with the flag on they take {flagged / one:.2f}x"
        )
    return 0


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


def finetune_report(env: dict, args, project: int, frozen: dict) -> dict:
    ft = finetune_estimate(env, project, args.passes, args.ft_sample)
    c = frozen["calls"]
    ls_steps = (
        c.get("tasks", 0)
        + c.get("label_config", 0)
        + c.get("push_predictions", 0)
        + c.get("set_model_version", 0)
        + c.get("model_versions", 0)
        + c.get("delete_model_version", 0)
    )
    train = ft["setup"] + ft["epoch"] * ft["epochs"]
    score = ft["score_sample"]["wall"] * ft["pool"] / ft["sample"]
    total = ls_steps + train + score
    print(
        f"[measured] finetune (in-process), 1 epoch on {args.annotations} annotations: "
        f"wall {ft['train_1_epoch']['wall']:.1f} s "
        f"cpu {ft['train_1_epoch']['cpu']:.1f} s = set-up (model load, tokenising) {ft['setup']:.1f} s "
        f"+ one epoch {ft['epoch']:.1f} s"
    )
    print(
        f"[measured] finetune scoring, {ft['scope']}, T={ft['passes']}, {ft['sample']} pool texts: "
        f"wall {ft['score_sample']['wall']:.1f} s "
        f"cpu {ft['score_sample']['cpu']:.1f} s"
    )
    print(
        f"[extrapolated] finetune round: train {ft['epochs']} epochs {train:.0f} s "
        f"(set-up + {ft['epochs']} x epoch; an upper bound: early stopping may stop sooner) "
        f"+ score {ft['pool']} texts {score:.0f} s "
        f"+ Label Studio steps of the frozen round (measured) {ls_steps:.1f} s = {total:.0f} s"
    )
    frozen_total = frozen["latency_job_end"]
    print(
        f"## finetune / frozen round: {total:.0f} s / {frozen_total:.1f} s = {total / frozen_total:.1f}x "
        f"(finetune extrapolated, frozen measured)"
    )
    return {
        **ft,
        "train_extrapolated": train,
        "score_extrapolated": score,
        "ls_steps": ls_steps,
        "total_extrapolated": total,
        "ratio_to_frozen": total / frozen_total,
    }


if __name__ == "__main__":
    raise SystemExit(main())
