"""``bench_scoring.py --kind frozen``: the frozen learner's whole scoring step (``score_pool`` on cached features,
T passes of the head) vs ONE deterministic encoder pass over the same pool."""

from __future__ import annotations

import json

from _common import load_dataset, loadavg, machine, seconds, timed, verdict

from beal_backend.engine.scoring import ScoringConfig


def frozen_vs_encoder(args) -> int:
    """The frozen learner's scoring step on cached features (T passes of the head) vs one encoder pass.
    Encoder and scoring are measured ``--repeats`` times, interleaved; the minimum of each is compared."""
    from beal_backend.config import Settings
    from beal_backend.engine import learners
    from beal_backend.wiring import train_config
    from beal_backend.worker import pool_scores

    n = args.n or 2000
    print(f"# bench_scoring --kind frozen  {machine()}")
    texts, label_sets, labels = load_dataset(args.dataset, n + args.labeled, seed=0, data=args.data)
    train_texts, pool = texts[: args.labeled], texts[args.labeled :]
    learner = learners.FrozenLearner(train_config(Settings.from_env({"DEVICE": "cpu"})))  # service defaults, no cache
    trained = learner.fit(train_texts, label_sets[: args.labeled], labels)
    encoder, tokenizer = learner.pretrained
    cfg, ids = ScoringConfig(args.passes), list(range(len(pool)))
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
            pool_scores.score_pool(trained, ids, pool, cfg, features=feats)
        score.append(t)
    print(f"[measured] one deterministic encoder pass over the pool: {seconds(enc)}")
    print(f"[measured] frozen scoring, T={args.passes}, cached features (pool_scores.score_pool): {seconds(score)}")
    e_cpu, s_cpu = min(t["cpu"] for t in enc), min(t["cpu"] for t in score)
    e_wall, s_wall = min(t["wall"] for t in enc), min(t["wall"] for t in score)
    ratio = s_cpu / e_cpu
    print(f"## {args.dataset}, N={len(pool)}, T={args.passes} (load average now {loadavg():.1f})")
    print("| measure | frozen scoring T=100 | one encoder pass | ratio | target | result |")
    print("|---|---|---|---|---|---|")
    print(f"| CPU s (decides) | {s_cpu:.2f} | {e_cpu:.2f} | {ratio:.3f} | <= 0.1 | {verdict(ratio <= 0.1)} |")
    wall = s_wall / e_wall
    print(f"| wall s | {s_wall:.2f} | {e_wall:.2f} | {wall:.3f} | <= 0.1 | {verdict(wall <= 0.1)} |")
    summary = {"dataset": args.dataset, "n": len(pool), "passes": args.passes, "score_cpu": s_cpu}
    print(json.dumps({**summary, "encoder_cpu": e_cpu, "ratio_cpu": ratio, "ratio_wall": wall}))
    return 0
