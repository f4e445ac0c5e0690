"""Frozen-learner all-data F1 with [CLS] vs mean pooling (``POOLING``), per dataset.

For each dataset and pooling: the service's ``learners.FrozenLearner`` (the same head training as a
round) is fitted on the whole pool, seeded, and micro/macro-F1 on the test set are printed, mean ± std
over ``--seeds``. Features are computed once per (encoder, pooling) and kept in ``--cache-dir``.

    python experiments/bench_pooling.py --datasets aapd,goemotions,stackoverflow_titles \
        --pool-size 2000 --test-size 1000 --seeds 3

Full datasets take hours of encoder time on a CPU (one forward per text and pooling); the defaults are a
subsample. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # their shared helpers (_common)

from _common import DATASETS, machine

from beal_backend.engine import evaluation, learners, training
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.engine.training import TrainConfig
from beal_backend.simulation.datasets import load_dataset


def run(name: str, pooling: str, args) -> dict:
    data = load_dataset(DATASETS / name, args.pool_size, args.test_size, seed=0)
    cfg = TrainConfig(encoder=args.encoder, pooling=pooling, device=args.device)
    learner = learners.FrozenLearner(cfg, Path(args.cache_dir).expanduser() / name)
    t0 = time.perf_counter()
    x = learner.features(data.pool_texts + data.test_texts)
    embed_s = time.perf_counter() - t0
    pool_x, test_x = x[: len(data.pool_texts)], x[len(data.pool_texts) :]
    micro, macro, fit_s = [], [], []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        trained = learner.fit(data.pool_texts, data.pool_labels, data.labels, seed=seed, features=pool_x)
        fit_s.append(time.perf_counter() - t0)
        probs, _ = learners.pool_deterministic(trained, ScoringConfig(device=args.device), features=test_x)
        pred = training.predicted(probs, single_label=False)  # the service's decision rule
        micro.append(evaluation.micro_f1(data.test_y, pred))
        macro.append(evaluation.macro_f1(data.test_y, pred))
    return {
        "dataset": name,
        "pooling": learner.cfg.pooling,
        "pool": len(data.pool_texts),
        "test": len(data.test_texts),
        "micro": (np.mean(micro), np.std(micro)),
        "macro": (np.mean(macro), np.std(macro)),
        "embed_s": embed_s,
        "encoder_texts": learner.encoder_calls,
        "fit_s": float(np.mean(fit_s)),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="aapd,goemotions,stackoverflow_titles")
    p.add_argument("--poolings", default="cls,mean")
    p.add_argument("--pool-size", type=int, default=2000, help="subsample of train.jsonl (omit: 0 = all)")
    p.add_argument("--test-size", type=int, default=1000, help="subsample of test.jsonl (0 = all)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--encoder", default="minilm")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cache-dir", default="~/.cache/beal-backend/bench-pooling")
    args = p.parse_args()
    args.pool_size, args.test_size = args.pool_size or None, args.test_size or None
    print(machine())
    print("| dataset | pooling | pool | test | micro-F1 | macro-F1 | encoder s (texts embedded) | head fit s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.datasets.split(","):
        for pooling in args.poolings.split(","):
            r = run(name.strip(), pooling.strip(), args)
            print(
                f"| {r['dataset']} | {r['pooling']} | {r['pool']} | {r['test']} "
                f"| {r['micro'][0]:.4f} ± {r['micro'][1]:.4f} "
                f"| {r['macro'][0]:.4f} ± {r['macro'][1]:.4f} | {r['embed_s']:.1f} ({r['encoder_texts']}) "
                f"| {r['fit_s']:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
