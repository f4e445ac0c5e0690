"""Diagnosis of issue #13: why BEAL's lowest-EC top-k batches can lose to random. One experiment per
explanation, on the batches that ``beal simulate`` runs actually picked (``selections.jsonl``):

(a) redundancy: per batch, the mean pairwise cosine similarity of the batch's frozen sentence features
    and the share of members whose nearest batch neighbour has cosine > 0.9, against the random batch of
    the same repeat and round (all rounds, and rounds 1-5 alone).
(b) rare-label / outlier bias: per batch, the mean pool frequency of the selected texts' gold labels, the
    share of texts with a rare label (bottom quartile of pool frequency), labels per text, and an outlier
    score (mean cosine distance to the 10 nearest pool texts); each against the pool and against random.
    Printed beside the run's paired area differences against random (micro and macro-F1), computed by
    ``simulation.analysis.summarize`` on the current ``results.csv`` (what summary.json holds once a run ends).
(c) informativeness of EC with frozen features (GoEmotions): a frozen head and a fine-tuned MiniLM, each
    trained on the same 500 random pool texts; AUROC of -EC for "the deterministic prediction's label set
    differs from the gold set" and Spearman rho of EC with per-text F1 on test texts.

Reads the runs in ``--results`` (partial runs are fine: every complete line is used), writes
``diagnosis.md`` and ``diagnosis.json`` to ``--out``. Features come from the runs' feature cache, so (a)
and (b) take seconds; (c) fine-tunes MiniLM on the CPU (minutes).

    HF_HUB_OFFLINE=1 nice -n 5 .venv/bin/python experiments/diagnose_acquisition.py \
        --results /work/main/docs/results --out docs/results

Not run by the test suite; its metric functions (``_diagnosis_metrics.py``) are unit-tested.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # their shared helpers (_common)

import _diagnosis_metrics as dm
import _diagnosis_report as report
from _common import ROOT, add_data_arg, machine, set_threads, timed

from beal_backend.engine import evaluation, learners, training
from beal_backend.engine.batching import encode
from beal_backend.engine.features import DEFAULT_CACHE_DIR, HeadConfig
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.engine.training import TrainConfig
from beal_backend.simulation.analysis import summarize
from beal_backend.simulation.config import SimulationConfig
from beal_backend.simulation.datasets import Dataset, load_dataset
from beal_backend.simulation.runner import RunLog

RUNS = ("goemotions-mean", "aapd-mean", "stackoverflow_titles-mean")
STRATEGIES = ("beal", "beal-deterministic", "beal-stochastic", "beal-diverse", "random", "badge", "coreset")
EARLY = range(1, 6)  # rounds 1-5: a few hundred labels, where the model's uncertainty is least reliable
NEAR = 0.9  # cosine above which two texts count as near-identical
NEIGHBOURS = 10
BATCH_METRICS = ("cosine", "near_dup", "label_freq", "rare_share", "labels_per_text", "outlier")


# ---------------------------------------------------------------- loading a run


@dataclass
class Run:
    name: str
    cfg: dict
    data: Dataset
    log: RunLog
    x: np.ndarray  # pool + test features, as the run's frozen learner saw them
    finished: bool  # summary.json exists: the run ended (a rerun may have added repeats since)


def train_config(cfg: dict) -> TrainConfig:
    """The TrainConfig ``simulation/fitting.py`` gives the learner: encoder, truncation and pooling of the run."""
    return TrainConfig(encoder=cfg["encoder"], max_wordpieces=cfg["max_wordpieces"], pooling=cfg.get("pooling", "cls"))


def load_run(folder: Path, data_root: Path, cache_dir: Path) -> Run | None:
    if not (folder / "selections.jsonl").exists():
        return None
    cfg = json.loads((folder / "config.json").read_text())
    data = load_dataset(data_root / Path(cfg["data"]).name, cfg["pool_size"], cfg["test_size"], cfg["seed"])
    learner = learners.build("frozen", train_config(cfg), cache_dir)
    x = learner.features(data.pool_texts + data.test_texts)  # the call fitting.py makes: all cached by the run
    log = RunLog(folder, repair=False)  # read-only: the run may still be appending
    return Run(folder.name, cfg, data, log, x, (folder / "summary.json").exists())


def coverage(run: Run) -> dict:
    """What was read: per strategy the repeats and the batches (rounds) found in selections.jsonl."""
    out = {}
    for name, rep, _rnd in run.log.picks:
        entry = out.setdefault(name, {"repeats": set(), "batches": 0})
        entry["repeats"].add(rep)
        entry["batches"] += 1
    return {k: {"repeats": len(v["repeats"]), "batches": v["batches"]} for k, v in out.items()}


# ---------------------------------------------------------------- (a) + (b): per-batch metrics


def batch_records(run: Run) -> tuple[list[dict], dict]:
    """One record per selected batch (its redundancy, label and density metrics), and the same label and
    density metrics of the whole pool (the reference a batch is divided by)."""
    n = len(run.data.pool_texts)
    pool_x = run.x[:n]
    y = run.data.pool_y.astype(bool)
    freq = y.mean(axis=0)
    rare = freq <= np.quantile(freq, 0.25)
    outlier = dm.knn_cosine_distance(pool_x, NEIGHBOURS)
    records = []
    for (name, rep, rnd), rows in run.log.picks.items():
        if name not in STRATEGIES:
            continue
        rows = np.asarray(rows)
        rec = {"strategy": name, "repeat": rep, "round": rnd}
        rec["cosine"] = dm.mean_pairwise_cosine(pool_x[rows])
        rec["near_dup"] = dm.near_duplicate_share(pool_x[rows], NEAR)
        rec.update(dm.label_profile(y[rows], freq, rare))
        rec["outlier"] = float(outlier[rows].mean())
        records.append(rec)
    pool = {**dm.label_profile(y, freq, rare), "outlier": float(outlier.mean()), "rare_labels": int(rare.sum())}
    return records, pool


def aggregate(records: list[dict]) -> dict:
    """Per strategy, metric and span (all rounds, rounds 1-5): the mean over its batches, the mean paired
    difference to the random batch of the same (repeat, round) and the share of pairs where it is higher."""
    random = {(r["repeat"], r["round"]): r for r in records if r["strategy"] == "random"}
    out: dict[str, dict] = {}
    for name in STRATEGIES:
        mine = [r for r in records if r["strategy"] == name]
        if not mine:
            continue
        out[name] = {"batches": len(mine)}
        for span, rounds in (("all", None), ("early", EARLY)):
            part = [r for r in mine if rounds is None or r["round"] in rounds]
            paired = [(r, random[(r["repeat"], r["round"])]) for r in part if (r["repeat"], r["round"]) in random]
            out[name][span] = {m: _span_stats(part, paired, m) for m in BATCH_METRICS}
    return out


def _span_stats(part: list[dict], paired: list[tuple[dict, dict]], m: str) -> dict:
    diffs = np.array([a[m] - b[m] for a, b in paired])
    return {
        "mean": _mean([r[m] for r in part]),
        "diff_random": _mean(diffs),
        "above_random": _mean(diffs > 0),
    }


def _mean(values) -> float | None:
    v = np.asarray(values, dtype=np.float64)
    return round(float(np.nanmean(v)), 6) if v.size else None  # nan-aware: a 1-text batch has no pair


def vs_random(run: Run) -> dict:
    """Paired area differences against random over the complete repeats, as summary.json reports them."""
    rows = list(run.log.rows.values())
    names = tuple(dict.fromkeys(r["strategy"] for r in rows if r["strategy"] != "all-data"))
    rounds = max(int(r["round"]) for r in rows)
    repeats = max(int(r["repeat"]) for r in rows) + 1
    cfg = SimulationConfig(data=run.cfg["data"], out="", strategies=names, rounds=rounds, repeats=repeats)
    summary = summarize(rows, cfg, run.data)["strategies"]
    return {
        name: {"repeats": s["repeats"], **{m: s["vs_random"][m]["auc_diff"] for m in ("micro_f1", "macro_f1")}}
        for name, s in summary.items()
        if "vs_random" in s
    }


# ---------------------------------------------------------------- (c): is low EC a sign of a wrong prediction?


def ec_quality(trained, inputs: dict, test_y: np.ndarray, scoring: ScoringConfig) -> dict:
    """EC (T passes) and the deterministic prediction on the test texts -> how well -EC flags errors."""
    with timed() as t:
        ec = learners.pool_moments(trained, scoring, **inputs).ec
        probs, _ = learners.pool_deterministic(trained, scoring, **inputs)
    pred = training.predicted(probs, single_label=False)  # the simulation's and the service's decision rule
    wrong = (pred != test_y.astype(bool)).any(axis=1)
    return {
        "texts": len(ec),
        "passes": scoring.passes,
        "wrong_share": float(wrong.mean()),
        "labels_predicted": int(pred.any(axis=0).sum()),  # a model stuck on the majority label predicts 1
        "auroc_neg_ec": dm.auroc(-ec, wrong),
        "auroc_neg_max_prob": dm.auroc(-probs.max(axis=1), wrong),  # the plain confidence baseline
        "spearman_ec_f1": dm.spearman(ec, dm.set_f1(test_y, pred)),
        "micro_f1": evaluation.micro_f1(test_y, pred),
        "macro_f1": evaluation.macro_f1(test_y, pred),
        "score_seconds": round(t["wall"], 1),
        "_ec": ec,
        "_wrong": wrong,
    }


def experiment_c(args, run_cfg: dict) -> dict:
    """Frozen head vs fine-tuned MiniLM on the same labeled texts, scored on the same test texts."""
    data = load_dataset(args.data / "goemotions", run_cfg["pool_size"], run_cfg["test_size"], run_cfg["seed"])
    rows = np.sort(np.random.default_rng(args.seed).choice(len(data.pool_texts), args.labeled, replace=False))
    frozen = learners.FrozenLearner(train_config(run_cfg), args.cache_dir, head=HeadConfig(**run_cfg["hparams"]))
    x = frozen.features(data.pool_texts + data.test_texts)
    pool_x, test_x = x[: len(data.pool_texts)], x[len(data.pool_texts) :]
    with timed() as t:
        fz = frozen.fit(*data.labeled(rows), seed=args.seed, features=pool_x[rows])
    n = min(args.finetune_test, len(test_x))
    scoring = ScoringConfig(passes=args.passes, seed=args.seed)
    out = {
        "labeled": len(rows),
        "frozen_all": {**ec_quality(fz, {"features": test_x}, data.test_y, scoring), "train_seconds": t["wall"]},
        "frozen": {**ec_quality(fz, {"features": test_x[:n]}, data.test_y[:n], scoring), "train_seconds": t["wall"]},
    }
    if n:
        out["finetune"] = finetune_quality(args, run_cfg, data, rows, n)
        a, b = out["frozen"], out["finetune"]
        out["auroc_diff_interval"] = dm.bootstrap_auroc_diff(-a["_ec"], a["_wrong"], -b["_ec"], b["_wrong"])
    return out


def finetune_quality(args, run_cfg: dict, data: Dataset, rows: np.ndarray, n: int) -> dict:
    cfg = replace(train_config(run_cfg), epochs=args.epochs, seed=args.seed, val_fraction=args.val_fraction)
    learner = learners.build("finetune", cfg)
    with timed() as t:
        trained = learner.fit(*data.labeled(rows), seed=args.seed)
    enc = encode(trained.tokenizer, data.test_texts[:n], trained.config.max_wordpieces)
    scoring = ScoringConfig(passes=args.finetune_passes, scope=args.scope, seed=args.seed)
    res = ec_quality(trained, {"encoded": enc}, data.test_y[:n], scoring)
    kept = {k: trained.metrics[k] for k in ("n_train", "n_val", "epochs_run", "best_epoch") if k in trained.metrics}
    return {**res, "train_seconds": t["wall"], "scope": args.scope, "epochs": args.epochs, **kept}


def diagnose_run(run: Run) -> dict:
    records, pool = batch_records(run)
    agg = aggregate(records)
    f1 = vs_random(run)
    out = {"finished": run.finished, "read": coverage(run), "pool": pool, "batches": agg, "vs_random": f1}
    if "beal" in agg and "random" in agg:
        out["verdict_a"], out["verdict_b"] = report.verdict_a(agg), report.verdict_b(agg, pool, f1)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arg(p)
    p.add_argument("--results", type=Path, default=ROOT / "docs" / "results", help="folder holding the runs")
    p.add_argument(
        "--runs", default=",".join(RUNS), help="run folders in --results (those without selections.jsonl are skipped)"
    )
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results", help="where diagnosis.md/.json go")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR.expanduser(), help="the runs' feature cache")
    p.add_argument("--labeled", type=int, default=500, help="(c): random labeled pool texts")
    p.add_argument("--passes", type=int, default=100, help="(c): T for the frozen head")
    p.add_argument(
        "--finetune-test", type=int, default=1000, help="(c): test texts scored by both learners (0: no fine-tuning)"
    )
    p.add_argument("--finetune-passes", type=int, default=20, help="(c): T for the fine-tuned model")
    p.add_argument("--scope", default="last-2", help="(c): MC-dropout scope of the fine-tuned model")
    # 3 epochs on 450 texts (~85 steps) left every sigmoid below 0.5 (no label predicted, AUROC undefined)
    p.add_argument("--epochs", type=int, default=15, help="(c): fine-tuning epochs (upper bound; early stopping)")
    # early stopping on 50 held-out texts kept an epoch that predicted little beyond the majority label
    p.add_argument("--val-fraction", type=float, default=0.0, help="(c): fine-tuning's held-out share (0: all epochs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse-c", action="store_true", help="keep (c) from the diagnosis.json in --out (no fine-tuning)")
    args = p.parse_args()
    previous = args.out / "diagnosis.json"
    kept_c = json.loads(previous.read_text()).get("ec_informativeness") if args.reuse_c and previous.exists() else None
    set_threads(1)  # the machine is shared with running simulations
    result: dict = {"machine": machine()}
    with timed() as t:
        result["runs"], result["skipped"] = diagnose_runs(args)
        if kept_c:
            result["ec_informativeness"] = kept_c
        elif args.labeled:
            result["ec_informativeness"] = run_c(args)
    result["seconds"] = t["wall"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "diagnosis.json").write_text(json.dumps(report.jsonable(result), indent=1) + "\n")
    (args.out / "diagnosis.md").write_text(report.render(result))
    print((args.out / "diagnosis.md").read_text())
    return 0


def diagnose_runs(args) -> tuple[dict, list[str]]:
    runs, skipped = {}, []
    for name in args.runs.split(","):
        run = load_run(args.results / name, args.data, args.cache_dir)
        if run is None:
            skipped.append(name)
            print(f"{name}: no selections.jsonl in {args.results / name}, skipped", flush=True)
            continue
        runs[name] = diagnose_run(run)
        print(f"{name}:", runs[name].get("verdict_a"), runs[name].get("verdict_b"), flush=True)
    return runs, skipped


def run_c(args) -> dict:
    """(c) with the pool of the goemotions-mean run (its config.json when present, else its known settings)."""
    folder = args.results / "goemotions-mean" / "config.json"
    run_cfg = json.loads(folder.read_text()) if folder.exists() else FALLBACK_GOEMOTIONS
    c = {**experiment_c(args, run_cfg), "seed": args.seed}
    c["verdict"] = report.verdict_c(c)
    print("(c):", c["verdict"], flush=True)
    return c


# the goemotions-mean run's settings (beal simulate --pooling auto --pool-size 10000 --test-size 2000)
FALLBACK_GOEMOTIONS = {
    "pool_size": 10000,
    "test_size": 2000,
    "seed": 0,
    "encoder": "minilm",
    "max_wordpieces": 510,
    "pooling": "auto",
    "hparams": {},
}


if __name__ == "__main__":
    raise SystemExit(main())
