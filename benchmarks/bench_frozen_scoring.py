"""Frozen learner: MC scoring at T = 100 on cached features vs ONE deterministic encoder pass over the pool.

A frozen round scores the pool from the embedding cache: T weight samples of the head, one matrix
product each. This compares the whole scoring step of a round (``jobs.score_pool`` with the cached
features: moments, deterministic outputs, EC, choices) with what it replaces, one deterministic encoder
pass over the same texts (``learners.embed``, the import-time embedding). Target: <= 0.1x.

The head is trained on ``--labeled`` texts of the same dataset (its weights do not change the cost).
Encoder and scoring are measured ``--repeats`` times, interleaved; the minimum of each is compared.

    python benchmarks/bench_frozen_scoring.py --dataset goemotions --n 2000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see docs/benchmarks.md: spin-waiting on shared cores
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (
    add_data_arg,
    load_dataset,
    loadavg,
    machine,
    set_threads,
    timed,
    verdict,
)

from beal_backend.config import Settings
from beal_backend.engine import learners
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.labelstudio.label_config import parse_label_config
from beal_backend.wiring import train_config
from beal_backend.worker import rounds as jobs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="goemotions")
    p.add_argument("--n", type=int, default=2000, help="pool texts")
    p.add_argument("--labeled", type=int, default=200, help="texts the head is trained on")
    p.add_argument("--passes", type=int, default=100)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    add_data_arg(p)
    args = p.parse_args()
    set_threads(args.threads)
    print(f"# bench_frozen_scoring  {machine()}")
    texts, label_sets, labels = load_dataset(args.dataset, args.n + args.labeled, seed=0, data=args.data)
    train_texts, pool = texts[: args.labeled], texts[args.labeled :]
    learner = learners.FrozenLearner(
        train_config(Settings.from_env({"DEVICE": "cpu"}))
    )  # the service defaults; no cache
    trained = learner.fit(train_texts, label_sets[: args.labeled], labels)
    encoder, tokenizer = learner.pretrained
    config = (
        '<View><Text name="text" value="$text"/><Choices name="c" toName="text" choice="multiple">'
        + "".join(f'<Choice value="{c}"/>' for c in labels)
        + "</Choices></View>"
    )
    schema, cfg, ids = (
        parse_label_config(config),
        ScoringConfig(passes=args.passes, device="cpu"),
        list(range(len(pool))),
    )
    print(
        f"dataset={args.dataset} pool N={len(pool)} J={len(labels)} pooling={learner.cfg.pooling} T={args.passes} "
        f"head trained on {args.labeled} texts"
    )
    enc, score = [], []
    for _ in range(args.repeats):
        with timed() as t:
            feats = learners.embed(encoder, tokenizer, pool, learner.cfg.pooling, learner.cfg.max_wordpieces, "cpu")
        enc.append(t)
        with timed() as t:
            jobs.score_pool(trained, ids, pool, schema, cfg, features=feats)
        score.append(t)
    print(
        "[measured] one deterministic encoder pass over the pool: cpu "
        + ", ".join(f"{t['cpu']:.2f}" for t in enc)
        + " s; wall "
        + ", ".join(f"{t['wall']:.2f}" for t in enc)
        + " s"
    )
    print(
        f"[measured] frozen scoring, T={args.passes}, cached features (jobs.score_pool): cpu "
        + ", ".join(f"{t['cpu']:.2f}" for t in score)
        + " s; wall "
        + ", ".join(f"{t['wall']:.2f}" for t in score)
        + " s"
    )
    e_cpu, s_cpu = min(t["cpu"] for t in enc), min(t["cpu"] for t in score)
    e_wall, s_wall = min(t["wall"] for t in enc), min(t["wall"] for t in score)
    ratio = s_cpu / e_cpu
    print(f"## {args.dataset}, N={len(pool)}, T={args.passes} (load average now {loadavg():.1f})")
    print("| measure | frozen scoring T=100 | one encoder pass | ratio | target | result |")
    print("|---|---|---|---|---|---|")
    print(f"| CPU s (decides) | {s_cpu:.2f} | {e_cpu:.2f} | {ratio:.3f} | <= 0.1 | {verdict(ratio <= 0.1)} |")
    print(
        f"| wall s | {s_wall:.2f} | {e_wall:.2f} | {s_wall / e_wall:.3f} | <= 0.1 | {verdict(s_wall / e_wall <= 0.1)} |"
    )
    print(
        json.dumps(
            {
                "dataset": args.dataset,
                "n": len(pool),
                "passes": args.passes,
                "score_cpu": s_cpu,
                "encoder_cpu": e_cpu,
                "ratio_cpu": ratio,
                "ratio_wall": s_wall / e_wall,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
