"""Should the fine-tuned learner stop early? Test-set F1 of the model a service round fine-tunes
(``LEARNER=finetune``, the GPU default), with and without early stopping, side by side on the same labeled texts
and seeds: the frozen head's flaw (``docs/results/head-stopping.md``: a chance micro-F1 after epoch 1 on a
handful of early-stopping texts beats the later epochs' 0 and the epoch-1 model is kept) hit it too
(``docs/results/finetune-stopping.md``).

Each repeat draws ``n`` labeled pool texts at random; both sides get what a round gives the learner
(``protocol.service_rows``: the gate half of the held-out slice left out):
- ``early``: the fine-tuning before ``MIN_STEPS`` (the settings' ``TrainConfig``, early stopping on, no floor):
  at most ``epochs`` epochs, early stopping on the early-stopping half (best micro-F1, then loss; ``patience``),
  the best epoch restored;
- ``fixed``: the fine-tuning now: no early stopping, the schedule run to its end on every text given (the
  early-stopping half included), with at least ``--min-steps`` optimizer steps (default: ``MIN_STEPS``).
Printed per dataset and label count: mean test micro- and macro-F1, fixed - early with its range over repeats,
the wins of ``fixed``, and the epochs run and kept.

Run (CPU: about a minute a fit of 300 short texts on 2 cores; AAPD's long abstracts take several):
  HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python benchmarks/bench_finetune_stopping.py [--data DIR]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATASETS, machine, stopping_header, stopping_table

from beal_backend.config import Settings
from beal_backend.engine import evaluation, training
from beal_backend.engine.training import TrainConfig
from beal_backend.simulation import datasets, protocol
from beal_backend.wiring import train_config


def finetune_f1(data: datasets.Dataset, n: int, seed: int, cfg: TrainConfig) -> tuple[float, float, int, int]:
    """(test micro-F1, macro-F1, epochs run, epoch kept) of the model fine-tuned on ``n`` random pool texts."""
    cfg = replace(cfg, seed=seed)
    labeled = np.sort(np.random.default_rng(seed).choice(len(data.pool_texts), n, replace=False))
    rows, stop = protocol.service_rows(labeled, cfg.val_fraction, cfg.min_val)
    texts, label_sets, labels = data.labeled(labeled[rows])
    trained = training.train(texts, label_sets, labels, cfg, val_rows=stop)
    pred, m = training.predictions(trained, data.test_texts), trained.metrics  # columns: data.labels, as test_y
    micro, macro = evaluation.micro_f1(data.test_y, pred), evaluation.macro_f1(data.test_y, pred)
    return micro, macro, m["epochs_run"], m.get("best_epoch", m["epochs_run"])


def compare(name: str, root: Path, sizes: tuple[int, int], counts: list[int], repeats: int, min_steps: int) -> bool:
    service = replace(train_config(Settings()), learner="finetune")
    variants = {
        "early": replace(service, early_stopping=True, min_steps=0),
        "fixed": replace(service, early_stopping=False, min_steps=min_steps),
    }
    data = datasets.load_dataset(root / name, *sizes)
    print(f"\n## {name}: pool {len(data.pool_texts)}, test {len(data.test_texts)}, {len(data.labels)} labels, "
          f"{repeats} repeats")  # fmt: skip
    stopping_header("early: epochs run / kept")
    ahead = True
    for n in [c for c in counts if c <= len(data.pool_texts)]:
        runs = {v: np.array([finetune_f1(data, n, s, c) for s in range(repeats)]) for v, c in variants.items()}
        epochs = f"{runs['early'][:, 2].mean():.1f} / {runs['early'][:, 3].mean():.1f}"
        ahead &= stopping_table(n, runs["early"], runs["fixed"], epochs)
    return ahead


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATASETS)
    ap.add_argument("--datasets", nargs="+", default=["goemotions", "stackoverflow_titles"])
    ap.add_argument("--pool-size", type=int, default=2000)
    ap.add_argument("--test-size", type=int, default=1000)
    ap.add_argument("--counts", type=int, nargs="+", default=[100, 300])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--min-steps", type=int, default=TrainConfig().min_steps, help="the fixed side's least steps")
    args = ap.parse_args()
    print(machine())
    ahead = [
        compare(d, args.data, (args.pool_size, args.test_size), args.counts, args.repeats, args.min_steps)
        for d in args.datasets
    ]
    print(f"\n{'PASS' if all(ahead) else 'FAIL'}: running the schedule to its end is ahead of early stopping on the "
          "mean at every count of every dataset, micro- and macro-F1")  # fmt: skip


if __name__ == "__main__":
    main()
