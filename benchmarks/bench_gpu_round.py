"""GPU timings of one round at the paper's scale (issue #13, point 2): fine-tune the finetune learner from
scratch on ``--labeled`` random pool texts, then score the rest of the pool with T MC-dropout passes under
each scope (the paper's: ``full``, T = 100). Prints seconds per phase (CUDA-synchronised wall time), texts
per second, the Spearman rho of each scope's EC with ``full``'s, and the peak GPU memory. Absolute times are
only meaningful on a GPU; on a CPU use ``--pool`` small.

    python benchmarks/bench_gpu_round.py --datasets stackoverflow_titles:10000 aapd:1000 --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_data_arg, load_dataset, machine

from beal_backend.engine.batching import encode
from beal_backend.engine.scoring import ScoringConfig, mc_moments
from beal_backend.engine.training import TrainConfig, train


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(device: str, fn):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def one_round(name: str, pool: int, args) -> None:
    texts, label_sets, labels = load_dataset(name, pool, args.seed, args.data)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(texts))
    lab, rest = order[: args.labeled], order[args.labeled :]
    cfg = TrainConfig(encoder=args.encoder, epochs=args.epochs, val_fraction=0.0, device=args.device, seed=args.seed)
    trained, fit_s = _timed(
        args.device, lambda: train([texts[i] for i in lab], [label_sets[i] for i in lab], labels, cfg)
    )
    pool_texts = [texts[i] for i in rest]
    enc, enc_s = _timed(args.device, lambda: encode(trained.tokenizer, pool_texts, trained.config.max_wordpieces))
    tokens = int(enc.lengths.sum())
    print(f"## {name}: {len(texts)} texts in the pool, {len(labels)} labels, {tokens / len(rest):.0f} word-pieces/text")
    print(
        f"fit on {len(lab)} texts, {args.epochs} epochs: {fit_s:.1f} s ({len(lab) * args.epochs / fit_s:.0f} texts/s)"
    )
    print(f"tokenise {len(rest)} pool texts: {enc_s:.1f} s")
    print("| scope | T | seconds | text-passes/s | Spearman rho vs full |")
    print("|---|---|---|---|---|")
    reference = None
    for scope in args.scopes.split(","):
        sc = ScoringConfig(passes=args.passes, scope=scope, seed=1, device=args.device)
        moments, s = _timed(args.device, lambda sc=sc: mc_moments(trained.model, enc, sc))
        reference = moments.ec if reference is None else reference
        rho = spearmanr(reference, moments.ec).statistic
        print(f"| {scope} | {args.passes} | {s:.1f} | {len(rest) * args.passes / s:,.0f} | {rho:.3f} |")
    if args.device.startswith("cuda"):
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arg(ap)
    ap.add_argument("--datasets", nargs="+", default=["stackoverflow_titles:10000", "aapd:1000"], help="name:pool")
    ap.add_argument("--labeled", type=int, default=500, help="the paper's initial set and batch")
    ap.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    ap.add_argument("--passes", type=int, default=100)
    ap.add_argument("--scopes", default="full,last-2,head", help="the first is the reference")
    ap.add_argument("--encoder", default=TrainConfig.encoder)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else "no GPU"
    print(f"# bench_gpu_round  {machine()}, {gpu}")
    for spec in args.datasets:
        name, _, pool = spec.partition(":")
        one_round(name, int(pool) if pool else None, args)


if __name__ == "__main__":
    main()
