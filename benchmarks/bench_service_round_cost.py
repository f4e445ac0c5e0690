"""CPU cost of one service-regime round per strategy, to plan ``scripts/service_runs.sh``.

The service protocol's settings (``beal simulate --protocol service``: the service's learner and training,
T = MC_PASSES); for each strategy one round early (the initial 5 % labeled) and one late (75 % labeled):
CPU seconds of the selection (scoring the rest of the pool) and of the training, measured with
``time.process_time`` (all threads), so a loaded machine changes the wall time, not these numbers. Features
come from the cache (computed once, first).

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/bench_service_round_cost.py --dataset goemotions
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import add_simulate_args, machine, simulate_argv, simulate_config

from beal_backend import acquisition
from beal_backend.simulation import runner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_simulate_args(ap, pool_size=2000, test_size=200, strategies=",".join(acquisition.STRATEGIES))
    args = ap.parse_args()
    print(f"# bench_service_round_cost  {machine()}")
    sim = runner.Simulation.__new__(runner.Simulation)  # no out folder: nothing is written
    cfg = simulate_config(simulate_argv(args, "/nonexistent"))
    from beal_backend.simulation.datasets import load_dataset

    sim.data = load_dataset(cfg.data, cfg.pool_size, cfg.test_size, cfg.seed)
    sim.n, sim.cfg, sim._learner = len(sim.data.pool_texts), cfg.resolve(len(sim.data.pool_texts)), None
    t = time.process_time()
    _ = sim.learner
    print(f"features: {time.process_time() - t:.1f} CPU-s; schedule {sim.cfg.n_initial} + {sim.cfg.n_rounds} x "
          f"{sim.cfg.n_batch}, T = {sim.cfg.mc_passes}, learner {sim.cfg.mode}")  # fmt: skip
    rng = np.random.default_rng(0)
    sizes = {"early": sim.cfg.n_initial, "late": sim.cfg.n_initial + (sim.cfg.n_rounds - 1) * sim.cfg.n_batch}
    print("| strategy | stage | labeled | train CPU-s | epochs | held out | select CPU-s |")
    print("|---|---|---|---|---|---|---|")
    for stage, n in sizes.items():
        labeled = np.sort(rng.choice(sim.n, size=n, replace=False))
        for name in sim.cfg.strategies:
            t = time.process_time()
            fit = sim.learner.fit(labeled, sim.train_seed(0))
            train = time.process_time() - t
            t = time.process_time()
            sim._select(fit, acquisition.get_strategy(name), 0, 1, labeled)
            select = time.process_time() - t
            m = fit.trained.metrics
            print(f"| {name} | {stage} | {n} | {train:.2f} | {m.get('epochs_run')} | {m.get('n_val')} | {select:.2f} |")


if __name__ == "__main__":
    main()
