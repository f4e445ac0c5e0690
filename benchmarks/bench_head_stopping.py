"""Should the frozen learner's head stop early? Test-set F1 of the head a service round trains, with and without
early stopping, side by side on the same labeled texts, seeds and cached features.

Each repeat draws ``n`` labeled pool texts at random; both sides get what a round gives the learner
(``protocol.service_rows``: the gate half of the held-out slice left out):
- ``early``: the v0.5 head, early stopping on the early-stopping half (best micro-F1, then loss; patience 3);
- ``fixed``: the head now (``HeadConfig()``): the fixed schedule (15 epochs or 1,000 steps, whichever is more)
  on every text it is given, the early-stopping half included.
Printed per dataset and label count: mean test micro- and macro-F1 of each, fixed - early with its range over
repeats, the wins of ``fixed``, and the epochs run. Verdict: PASS when ``fixed`` is ahead on the mean at every
count of every dataset for both metrics.

Run (embeds each dataset once into the feature cache; then about 10 s per count and repeat on 2 shared cores):
  HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_head_stopping.py [--data DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATASETS, machine, stopping_header, stopping_table

from beal_backend.engine import evaluation, learners
from beal_backend.engine.features import DEFAULT_CACHE_DIR, HeadConfig, head_outputs, train_head
from beal_backend.engine.training import TrainConfig, predicted
from beal_backend.simulation import datasets, protocol

VARIANTS = {
    "early": HeadConfig(val_fraction=0.1, early_stopping=True),
    "fixed": HeadConfig(val_fraction=0.1),
}


def head_f1(data: datasets.Dataset, pool_x, test_x, n: int, seed: int, head: HeadConfig) -> tuple[float, float, int]:
    """(test micro-F1, macro-F1, epochs run) of the head trained on ``n`` random pool texts as a round would."""
    labeled = np.sort(np.random.default_rng(seed).choice(len(pool_x), n, replace=False))
    rows, stop = protocol.service_rows(labeled, head.val_fraction, head.min_val)
    given = labeled[rows]
    trained, metrics = train_head(pool_x[given], data.pool_y[given], replace(head, seed=seed), val_rows=stop)
    pred = predicted(head_outputs(trained, test_x)[0], False)
    return evaluation.micro_f1(data.test_y, pred), evaluation.macro_f1(data.test_y, pred), metrics["epochs_run"]


def compare(name: str, root: Path, pool_size: int, counts: list[int], repeats: int, cache: Path) -> bool:
    data = datasets.load_dataset(root / name, pool_size, pool_size)
    frozen = learners.FrozenLearner(TrainConfig(encoder="minilm", pooling="auto"), cache)
    x = frozen.features(data.pool_texts + data.test_texts)
    pool_x, test_x = x[: len(data.pool_texts)], x[len(data.pool_texts) :]
    print(f"\n## {name}: pool {len(pool_x)}, test {len(test_x)}, {len(data.labels)} labels, {repeats} repeats")
    stopping_header("epochs early / fixed")
    ahead = True
    for n in [c for c in counts if c <= len(pool_x)]:
        runs = {
            v: np.array([head_f1(data, pool_x, test_x, n, s, h) for s in range(repeats)]) for v, h in VARIANTS.items()
        }
        epochs = f"{runs['early'][:, 2].mean():.0f} / {runs['fixed'][:, 2].mean():.0f}"
        ahead &= stopping_table(n, runs["early"], runs["fixed"], epochs)
    return ahead


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATASETS)
    ap.add_argument("--datasets", nargs="+", default=["goemotions", "stackoverflow_titles", "aapd"])
    ap.add_argument("--pool-size", type=int, default=2000, help="pool and test size (AAPD has 1,000 of each)")
    ap.add_argument("--counts", type=int, nargs="+", default=[100, 200, 400, 1000, 2000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR.expanduser())
    args = ap.parse_args()
    print(machine())
    ahead = [compare(d, args.data, args.pool_size, args.counts, args.repeats, args.cache_dir) for d in args.datasets]
    print(f"\n{'PASS' if all(ahead) else 'FAIL'}: the fixed schedule is ahead of early stopping on the mean "
          "at every count of every dataset, micro- and macro-F1")  # fmt: skip


if __name__ == "__main__":
    main()
