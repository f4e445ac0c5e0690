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

    python benchmarks/bench_round.py --tasks 5000 --annotations 500
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
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

from _common import DATASETS, loadavg, machine, timed

from beal_backend.simulation import datasets
from tests.e2e.label_studio import LabelStudio
from tests.ports import free_port


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


class LS:
    def __init__(self, url, key):
        self.url, self.s = url, requests.Session()
        self.s.headers["Authorization"] = f"Token {key}"

    def __call__(self, method, path, timeout=600, **kw):
        r = self.s.request(method, self.url + path, timeout=timeout, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None


class Backend:
    """API + one timed RQ worker as subprocesses (as tests/e2e/conftest.py's Backend)."""

    def __init__(self, ls_url, key, workdir: Path, redis_url: str, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir, self.timings = workdir, workdir / "timings.jsonl"
        self.env = {
            **os.environ,
            "LABEL_STUDIO_URL": ls_url,
            "LABEL_STUDIO_API_KEY": key,
            "REDIS_URL": redis_url,
            "MODEL_DIR": str(workdir / "model_store"),
            "PORT": str(self.port),
            "HF_HUB_OFFLINE": "1",
            "DEVICE": "cpu",
            "PYTHONPATH": str(ROOT),
            "BENCH_TIMINGS": str(self.timings),
            **{k: str(v) for k, v in env.items()},
        }
        self.procs = [
            self._spawn(
                [sys.executable, "-m", "beal_backend", "serve", "--host", "127.0.0.1", "--port", str(self.port)], "api"
            )
        ]
        self._wait_health()
        self.worker = self._spawn(
            [sys.executable, "benchmarks/_timed_worker.py", "--name", f"bench-{self.port}"], "worker"
        )
        self.procs.append(self.worker)

    def _spawn(self, cmd, name):
        with open(self.dir / f"{name}.log", "a") as log:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait_health(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"backend did not start; see {self.dir}/api.log")

    def events(self, since: float = 0.0) -> list[dict]:
        if not self.timings.exists():
            return []
        return [e for e in map(json.loads, self.timings.read_text().splitlines()) if e["start"] >= since]

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def wait_for(predicate, timeout, what, poll=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(poll)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def frozen_learner(backend: Backend, project: int):
    from beal_backend.config import Settings
    from beal_backend.engine import learners
    from beal_backend.store.versions import ModelStore
    from beal_backend.wiring import train_config
    from beal_backend.worker import rounds as jobs

    s = Settings.from_env(backend.env)
    return learners.build(
        "frozen", train_config(s), ModelStore(s.model_dir).project_dir(str(project)) / jobs.EMBEDDINGS
    )


def prefill(backend: Backend, project: int, texts: list[str], n: int) -> dict:
    """Embed n texts (measured), then give every task text one of those features (repeated) in the
    project's cache, so the round runs on len(texts) cached rows without embedding them all."""
    learner = frozen_learner(backend, project)
    with timed() as t:
        feats = learner.embed(texts[:n])
    learner.cache.features(texts, lambda missing: np.resize(feats, (len(missing), feats.shape[1])))
    return {"n": n, "wall": t["wall"], "cpu": t["cpu"]}


def run_round(ls: LS, backend: Backend, project: int, ml_id: int, pool: int, previous: str | None) -> dict:
    t0 = time.time()
    ls("POST", f"/api/ml/{ml_id}/train")

    def all_predictions():
        job = requests.get(backend.url + "/jobs", timeout=10).json().get(str(project), {}).get("current_job") or {}
        if job.get("state") == "failed" and job.get("started_at", 0) >= t0 - 1:
            raise RuntimeError(f"the round failed: {job.get('error')}")
        versions = ls("GET", f"/api/projects/{project}/model-versions/")
        new = [v for v, c in versions.items() if v.startswith("beal-") and v != previous and c >= pool]
        return new[0] if new else None

    version = wait_for(all_predictions, 3600, "every prediction of the new version")
    t_last = time.time() - t0
    ev = wait_for(lambda: [e for e in backend.events(t0) if e["event"] == "round_job"], 600, "the round job's end")[0]
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
    from beal_backend.labelstudio.label_config import parse_label_config
    from beal_backend.wiring import scoring_config, train_config
    from beal_backend.worker import rounds as jobs
    from beal_backend.worker.examples import collect_examples

    s = Settings.from_env({**env, "LEARNER": "finetune", "MC_SCOPE": "last-2", "MC_PASSES": str(passes)})
    client = LabelStudioClient(s.label_studio_url, s.label_studio_api_key)
    schema = parse_label_config(client.label_config(project))
    ex = collect_examples(client.tasks(project), schema, s.max_text_chars)
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
        jobs.score_pool(
            trained, [ex.pool_ids[i] for i in rows], [ex.pool_texts[i] for i in rows], schema, scoring_config(s)
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=5000)
    p.add_argument("--annotations", type=int, default=500)
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
        ls = LS(url, key)
        config = (
            '<View><Text name="text" value="$text"/><Choices name="emotion" toName="text" choice="multiple">'
            + "".join(f'<Choice value="{c}"/>' for c in labels)
            + "</Choices></View>"
        )
        project = ls("POST", "/api/projects", json={"title": "bench", "label_config": config})["id"]
        extra = {"BENCH_LS_TIMEOUT": args.ls_timeout} if args.ls_timeout else {}
        if args.ls_timeout:
            print(
                f"!! benchmark override: the worker's Label Studio timeout is {args.ls_timeout:.0f} s (shipped: 30 s)"
            )
        backend = Backend(
            url,
            key,
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
        wait_for(
            lambda: (
                cache.size() >= distinct
                and (args.prefill or any(e["event"] == "embed_job" for e in backend.events(t_import)))
            ),
            7200,
            "the import-time embedding",
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
