"""Which MC-dropout scope and T make a fine-tuned simulation fit a CPU, and do they rank texts as T = 100 `full` does?

For each dataset: the finetune learner (the service's, ``beal simulate --learner finetune`` defaults) is trained on
``--labeled`` random pool texts of the issue-#13 protocol's pool (``--pool-size`` 1,000, seed 0), then
``--subsample`` other pool texts are scored with the paper's setting (``full``, T = 100) and with cheaper
candidates. Printed per candidate: CPU seconds per text, Spearman rho of its EC with the reference EC, and the
overlap of the lowest-EC 10 % (what BEAL would acquire); the reference setting with another MC seed shows how
much of the disagreement is MC noise alone. Then, from the measured costs, the extrapolated time of a whole
fine-tuned run on 2 cores (``--rounds`` rounds, ``--repeats`` repeats, ``--strategies`` strategies each
training every round at the cost measured here, three MC strategies scoring the pool), labelled as such.

    python experiments/bench_mc_agreement.py --datasets goemotions aapd
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # their shared helpers (_common)

from _common import load_dataset, protocol_parser, run_per_dataset, timed

from beal_backend.engine import learners
from beal_backend.engine.batching import encode
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.engine.training import TrainConfig

REFERENCE = ("full", 100, 1)
# (scope, T, MC seed); the reference's own setting with another seed is the ceiling: MC noise alone
CANDIDATES = [("full", 100, 2), ("full", 20, 1), ("last-2", 100, 1), ("last-2", 20, 1), ("head", 100, 1)]
MC_STRATEGIES = 3  # beal, bald, beal-stochastic score the pool with T passes each round


def lowest_overlap(a: np.ndarray, b: np.ndarray, share: float = 0.1) -> float:
    k = max(1, int(len(a) * share))
    return len(set(np.argsort(a)[:k]) & set(np.argsort(b)[:k])) / k


def run(name: str, args) -> None:
    texts, label_sets, labels = load_dataset(name, args.pool_size, 0, args.data)
    rows = np.random.default_rng(0).permutation(len(texts))
    fit_rows, score_rows = rows[: args.labeled], rows[args.labeled : args.labeled + args.subsample]
    cfg = TrainConfig(encoder=args.encoder)  # what `beal simulate --learner finetune` trains with by default
    with timed() as t_fit:
        trained = learners.FinetuneLearner(cfg).fit(
            [texts[i] for i in fit_rows], [label_sets[i] for i in fit_rows], labels, seed=0
        )
    encoded = encode(trained.tokenizer, [texts[i] for i in score_rows], cfg.max_wordpieces)
    print(f"[measured] {name}: fit on {args.labeled} texts: cpu {t_fit['cpu']:.0f} s, wall {t_fit['wall']:.0f} s")
    ec, cost = {}, {}
    for scope, passes, seed in [REFERENCE, *CANDIDATES]:
        with timed() as t:
            m = learners.pool_moments(trained, ScoringConfig(scope=scope, passes=passes, seed=seed), encoded=encoded)
        ec[(scope, passes, seed)], cost[(scope, passes, seed)] = m.ec, t["cpu"] / len(score_rows)
    ref = ec[REFERENCE]
    print(f"## {name}: {len(score_rows)} pool texts, model trained on {args.labeled}")
    print(
        "| scope | T | MC seed | CPU s / text | Spearman rho vs full T=100 (seed 1) | lowest-10 % overlap "
        "| whole run, 2 cores [extrapolated] | of which training |"
    )
    print("|---|---|---|---|---|---|---|---|")
    scored = sum(args.pool_size - args.initial - r * args.batch for r in range(args.rounds))  # pool left per round
    training = args.repeats * args.strategies * args.rounds * t_fit["cpu"]
    for key in [REFERENCE, *CANDIDATES]:
        rho = spearmanr(ec[key], ref).statistic if key != REFERENCE else 1.0
        total = args.repeats * MC_STRATEGIES * scored * cost[key] + training
        print(
            f"| {key[0]} | {key[1]} | {key[2]} | {cost[key]:.3f} | {rho:.3f} | {lowest_overlap(ec[key], ref):.2f} | "
            f"{total / 60 / 2:.0f} min | {training / 60 / 2:.0f} min |"
        )


def main() -> None:
    p = protocol_parser(__doc__, ["goemotions", "aapd"])
    p.add_argument("--labeled", type=int, default=300, help="texts the model is trained on (a mid-run round)")
    p.add_argument("--subsample", type=int, default=150, help="pool texts scored by every setting")
    run_per_dataset("bench_mc_agreement", p.parse_args(), run)


if __name__ == "__main__":
    main()
