"""What issue #13's fine-tuned simulation costs on this machine: the training of every round, measured.

A fine-tuned run retrains the encoder from scratch on 50, 100, ..., 1,000 labeled texts (``--initial`` +
``--batch`` per round), for every strategy and repeat. This fits the finetune learner with the run's settings
(``--epochs`` 15, no early stopping: ``--val-fraction 0``, as ``finetune-cpu.md``'s commands) on random pool
texts of a few sizes, prints CPU seconds per fit, fits CPU-s = a + b * texts through them (training is linear
in texts x epochs), and sums that line over the rounds of a whole run, labelled as extrapolated.

    python experiments/bench_finetune_cost.py --datasets goemotions --sizes 100 400 1000
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # their shared helpers (_common)

from _common import load_dataset, protocol_parser, run_per_dataset, timed

from beal_backend.engine import learners
from beal_backend.engine.training import TrainConfig


def run(name: str, args) -> None:
    texts, label_sets, labels = load_dataset(name, args.pool_size, 0, args.data)
    rows = np.random.default_rng(0).permutation(len(texts))
    cfg = TrainConfig(encoder=args.encoder, epochs=args.epochs, val_fraction=args.val_fraction)
    print(f"## {name}: fits with {args.epochs} epochs, val fraction {args.val_fraction}")
    print("| labeled texts | CPU s [measured] | wall s [measured] |")
    print("|---|---|---|")
    cpu = []
    for n in args.sizes:
        with timed() as t:
            learners.FinetuneLearner(cfg).fit(
                [texts[i] for i in rows[:n]], [label_sets[i] for i in rows[:n]], labels, seed=0
            )
        cpu.append(t["cpu"])
        print(f"| {n} | {t['cpu']:.0f} | {t['wall']:.0f} |")
    b, a = np.polyfit(args.sizes, cpu, 1)
    sizes = [args.initial + r * args.batch for r in range(args.rounds + 1)]  # round 0 trains too
    per_curve = sum(a + b * n for n in sizes)
    total = per_curve * args.strategies * args.repeats
    print(
        f"[extrapolated] CPU-s per fit = {a:.1f} + {b:.3f} x texts; one curve ({len(sizes)} fits, "
        f"{sizes[0]}..{sizes[-1]} texts): {per_curve / 3600:.2f} CPU-h; {args.strategies} strategies x "
        f"{args.repeats} repeats: {total / 3600:.1f} CPU-h = {total / 3600 / args.cores:.1f} h on {args.cores} cores "
        f"(training only; 1 repeat of 3 strategies: {per_curve * 3 / 3600 / args.cores:.1f} h)"
    )


def main() -> None:
    p = protocol_parser(__doc__, ["goemotions"])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 400, 1000], help="labeled-set sizes to fit on")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--val-fraction", type=float, default=0.0)
    p.add_argument("--cores", type=int, default=2, help="CPU cores the run would share (CPU-s / cores = wall)")
    run_per_dataset("bench_finetune_cost", p.parse_args(), run)


if __name__ == "__main__":
    main()
