"""The simulation's one necessary difference from the service, its seeds, against the noise.

A service round trains and samples MC dropout with ``SEED`` (0) in every round of every project; ``beal
simulate`` derives its training seed from the repeat and its MC seed from (repeat, round, strategy), so that
repeats are independent. This runs the service protocol's curves twice on the same initial labels, once seeded
as the simulation is and once as the service is, and prints per strategy the paired difference of the area
under the curve (service seeds - derived seeds) with its 95 % t-interval, next to the spread of the area over
repeats (the noise a strategy comparison already lives with).

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/bench_simulation_seeds.py --dataset goemotions

Small by default (pool 200, 5 rounds, 3 repeats, BEAL): about two minutes on two shared cores, features cached.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import add_simulate_args, machine, simulate_argv, simulate_config

from beal_backend.simulation import runner
from beal_backend.simulation.analysis import METRICS, curve_area, paired_interval
from beal_backend.simulation.config import ALL_DATA


class Curves(runner.Simulation):
    """The strategies' curves only: the all-data fit is the same for both seedings' comparison (not needed)."""

    def pending(self) -> list[tuple[int, str]]:
        return [job for job in super().pending() if job[1] != ALL_DATA]


class ServiceSeeds(Curves):
    """Seeded as a service round is: ``SEED`` for training and for MC dropout, whatever the repeat and round."""

    def train_seed(self, repeat: int) -> int:
        return self.cfg.train.seed

    def mc_seed(self, repeat: int, rnd: int, name: str) -> int:
        return self.cfg.train.seed


def areas(sim: runner.Simulation, name: str, metric: str) -> list[float]:
    rows, cfg = sim.log.rows, sim.cfg
    curves = [[rows[(name, rep, r)] for r in range(cfg.n_rounds + 1)] for rep in range(cfg.n_repeats)]
    return [curve_area([float(r["fraction_labeled"]) for r in c], [float(r[metric]) for r in c]) for c in curves]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_simulate_args(ap, pool_size=200, test_size=500, strategies="beal", rounds=5, repeats=3)
    args = ap.parse_args()
    print(f"# bench_simulation_seeds  {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for label, cls in (("derived", Curves), ("service", ServiceSeeds)):
            sim = cls(simulate_config(simulate_argv(args, Path(tmp) / label)))
            for repeat, name in sim.pending():
                sim.run_job(repeat, name)
            runs[label] = sim
        cfg = runs["derived"].cfg
        print(f"{args.dataset}: pool {args.pool_size}, {cfg.n_initial} + {cfg.n_rounds} x {cfg.n_batch}, "
              f"{cfg.n_repeats} repeats, learner {cfg.mode}, T = {cfg.mc_passes}")  # fmt: skip
        print("| strategy | metric | area, derived seeds | area, service seeds | service - derived [95 % CI] |")
        print("|---|---|---|---|---|")
        for name in cfg.strategies:
            for m in METRICS:
                a, b = areas(runs["derived"], name, m), areas(runs["service"], name, m)
                ci = paired_interval(np.subtract(b, a))
                spread = f"{np.mean(a):.4f} ± {np.std(a, ddof=1):.4f} | {np.mean(b):.4f} ± {np.std(b, ddof=1):.4f}"
                print(f"| {name} | {m} | {spread} | {ci['mean']:+.4f} [{ci['low']:+.4f}, {ci['high']:+.4f}] |")


if __name__ == "__main__":
    main()
