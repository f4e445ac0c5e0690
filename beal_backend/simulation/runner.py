"""Offline active-learning simulation on a labeled dataset (engine only): the service's regime, or the paper's.

Protocol (Algorithm 1; the schedule and held-out rule by ``--protocol``, ``protocol.py``): in every repeat
``initial`` random pool texts are labeled (the same texts for every strategy, so strategies are compared
pairwise); each round a strategy picks ``batch`` texts of the remaining pool, their gold labels are revealed
and the model is retrained from scratch; micro/macro-F1 on the test set are recorded after every training,
labels decided by the engine's own rule (``training.predicted``). An "all data" run trains on the whole pool:
its F1 is the target of the paper's Table 2 metric (% of the pool that must be labeled to reach it).

Learners (``--learner``, the old ``--mode``): the service's own classes from ``engine.learners`` (through
``fitting.py``), so a simulation result is a statement about the service. ``frozen`` trains only the head on cached
sentence features of a frozen encoder (CPU); ``finetune`` fine-tunes the encoder every round and samples it with
``scoring.mc_moments`` (GPU).

Where it differs from the service (on purpose): its seeds. A service round trains and samples with ``SEED``;
here every random choice draws from a generator derived from the run's seed and its place (repeat, round,
strategy), so that repeats are independent; the training seed depends on the repeat only, so a model is a
function of its labeled set. There is no promotion gate (no model serves to compare with: each round's model
orders the next batch). ``results.csv`` gets one row per finished round and ``selections.jsonl`` the texts each
round picked; a rerun skips finished rounds, retrains the last finished round's model (identical, being seeded)
and goes on, so an interrupted run ends with the results of an uninterrupted one.

This module runs the jobs (serially or in a process pool) and keeps the run log; ``datasets``, ``config``,
``protocol``, ``fitting``, ``analysis`` and ``report`` hold the rest.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from beal_backend import acquisition
from beal_backend.acquisition import Strategy
from beal_backend.engine import evaluation, training
from beal_backend.simulation.analysis import summarize
from beal_backend.simulation.config import (
    ALL_DATA,
    SEED_INITIAL,
    SEED_MC,
    SEED_SELECT,
    SEED_TRAIN,
    SimulationConfig,
)
from beal_backend.simulation.datasets import load_dataset
from beal_backend.simulation.fitting import Learner
from beal_backend.simulation.report import write_report

RESULT_FIELDS = (
    "strategy",
    "repeat",
    "round",
    "n_labeled",
    "fraction_labeled",
    "micro_f1",
    "macro_f1",
    "select_seconds",
    "train_seconds",
)


# ---------------------------------------------------------------- the run log (results.csv + selections.jsonl)


class RunLog:
    """Append-only record of finished rounds in ``out``; read back on resume.

    A torn last line (killed mid-write) is ignored, and cut off the file when ``repair``: only the one
    process that owns the run repairs, never a worker reading while others append. Each record is one
    ``O_APPEND`` write, so parallel workers never interleave their lines.
    """

    def __init__(self, out: Path, repair: bool = True):
        self.results_path = out / "results.csv"
        self.selections_path = out / "selections.jsonl"
        self.rows: dict[tuple[str, int, int], dict] = {}
        self.picks: dict[tuple[str, int, int], list[int]] = {}
        lines = _complete_lines(self.results_path, repair)
        if lines:
            for row in csv.DictReader(lines):
                if None in row or any(v is None for v in row.values()):
                    continue  # a row cut short
                self.rows[(row["strategy"], int(row["repeat"]), int(row["round"]))] = row
        elif repair:
            self.results_path.write_text(",".join(RESULT_FIELDS) + "\n", encoding="utf-8")
        for line in _complete_lines(self.selections_path, repair):
            rec = json.loads(line)
            self.picks[(rec["strategy"], rec["repeat"], rec["round"])] = rec["rows"]

    def add_picks(self, strategy: str, repeat: int, rnd: int, rows: np.ndarray) -> None:
        """``rows``: positions in the pool (train.jsonl order, after subsampling)."""
        picked = [int(r) for r in rows]
        rec = {"strategy": strategy, "repeat": repeat, "round": rnd, "rows": picked}
        _append(self.selections_path, json.dumps(rec) + "\n")
        self.picks[(strategy, repeat, rnd)] = picked

    def add_row(self, row: dict) -> None:
        text = ",".join(str(row[k]) for k in RESULT_FIELDS) + "\n"
        _append(self.results_path, text)
        self.rows[(row["strategy"], int(row["repeat"]), int(row["round"]))] = {k: str(row[k]) for k in RESULT_FIELDS}


def _complete_lines(path: Path, repair: bool) -> list[str]:
    """The file's complete lines; with ``repair`` a partial last line (a crash mid-write) is cut off the file."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    keep = text[: text.rfind("\n") + 1]
    if repair and keep != text:
        path.write_text(keep, encoding="utf-8")
    return keep.splitlines()


def _append(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while data:  # one write() for a record in practice; the loop only guards against a short write
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


# ---------------------------------------------------------------- the simulation


def _seed_seq(seed: int, *parts: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, *parts])


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


class Simulation:
    """One run in ``cfg.out``: jobs are the all-data fit and the (repeat, strategy) curves, each resumable."""

    def __init__(self, cfg: SimulationConfig, worker: bool = False):
        self.data = load_dataset(cfg.data, cfg.pool_size, cfg.test_size, cfg.seed)
        cfg = cfg.resolve(len(self.data.pool_texts))
        cfg.validate(len(self.data.pool_texts))
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        _check_identity(self.out / "config.json", cfg.identity())
        self.log = RunLog(self.out, repair=not worker)
        self.n = len(self.data.pool_texts)
        self.strategies = [acquisition.get_strategy(s) for s in cfg.strategies]
        self._learner: Learner | None = None

    @property
    def learner(self):
        """Built on first use: a rerun with nothing left to do computes no features and loads no encoder."""
        if self._learner is None:
            self._learner = Learner(self.cfg, self.data)
        return self._learner

    def run(self, report_only: bool = False) -> dict:
        jobs = [] if report_only else self.pending()
        if jobs and self.cfg.workers > 1:
            self._run_parallel(jobs)
        else:
            for repeat, name in tqdm(jobs, desc="curves", unit="curve", disable=not self.cfg.progress):
                self.run_job(repeat, name)
        summary = summarize(self.log.rows.values(), self.cfg, self.data)
        write_report(self.out, summary)
        return summary

    def pending(self) -> list[tuple[int, str]]:
        """Unfinished jobs, repeat by repeat (a run stopped early leaves whole repeats): (repeat, strategy or
        all-data)."""
        jobs = []
        for repeat in range(self.cfg.n_repeats):
            if (ALL_DATA, repeat, 0) not in self.log.rows:
                jobs.append((repeat, ALL_DATA))
            jobs += [
                (repeat, s.name) for s in self.strategies if (s.name, repeat, self.cfg.n_rounds) not in self.log.rows
            ]
        return jobs

    def run_job(self, repeat: int, name: str) -> None:
        if name == ALL_DATA:
            self._train_and_record(ALL_DATA, repeat, 0, np.arange(self.n), 0.0)
        else:
            self._curve(acquisition.get_strategy(name), repeat)

    def _run_parallel(self, jobs: list[tuple[int, str]]) -> None:
        _ = self.learner  # features are computed and cached here once, before the workers read them
        ctx = multiprocessing.get_context("spawn")  # no fork: the parent's OpenMP/torch state stays out
        worker_cfg = replace(self.cfg, progress=False)
        with ProcessPoolExecutor(
            self.cfg.workers, mp_context=ctx, initializer=_init_worker, initargs=(worker_cfg,)
        ) as pool:
            futures = [pool.submit(_run_in_worker, repeat, name) for repeat, name in jobs]
            try:
                for f in tqdm(
                    as_completed(futures),
                    total=len(futures),
                    desc="curves",
                    unit="curve",
                    disable=not self.cfg.progress,
                ):
                    f.result()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        self.log = RunLog(self.out)  # the workers' rows

    # -- seeds

    def train_seed(self, repeat: int) -> int:
        return int(_seed_seq(self.cfg.seed, SEED_TRAIN, repeat).generate_state(1)[0])

    def mc_seed(self, repeat: int, rnd: int, name: str) -> int:
        return int(_seed_seq(self.cfg.seed, SEED_MC, repeat, rnd, _name_key(name)).generate_state(1)[0])

    def initial_set(self, repeat: int) -> np.ndarray:
        rng = np.random.default_rng(_seed_seq(self.cfg.seed, SEED_INITIAL, repeat))
        return rng.choice(self.n, size=self.cfg.n_initial, replace=False)

    # -- runs

    def _curve(self, strategy: Strategy, repeat: int) -> None:
        cfg, name = self.cfg, strategy.name
        done = 0
        while done <= cfg.n_rounds and (name, repeat, done) in self.log.rows:
            done += 1
        if done > cfg.n_rounds:
            return
        parts = [self.initial_set(repeat)] + [np.asarray(self.log.picks[(name, repeat, r)]) for r in range(1, done)]
        labeled = np.sort(np.concatenate(parts))
        fit = self.learner.fit(labeled, self.train_seed(repeat)) if done else None  # resume: same model again
        rounds = tqdm(range(done, cfg.n_rounds + 1), desc=name, unit="round", leave=False, disable=not cfg.progress)
        for rnd in rounds:
            select_seconds = 0.0
            if rnd > 0:
                t0 = time.perf_counter()
                picks = self._select(fit, strategy, repeat, rnd, labeled)
                select_seconds = time.perf_counter() - t0
                recorded = self.log.picks.get((name, repeat, rnd))
                if recorded is None:
                    self.log.add_picks(name, repeat, rnd, picks)
                else:  # a killed run logged this round's picks but not its result: one record per round
                    picks = np.asarray(recorded)
                labeled = np.sort(np.concatenate([labeled, picks]))
            fit = self._train_and_record(name, repeat, rnd, labeled, select_seconds)

    def _select(self, fit, strategy: Strategy, repeat: int, rnd: int, labeled: np.ndarray) -> np.ndarray:
        parts = (repeat, rnd, _name_key(strategy.name))
        rng = np.random.default_rng(_seed_seq(self.cfg.seed, SEED_SELECT, *parts))
        pool = np.setdiff1d(np.arange(self.n), labeled)
        mc_seed = self.mc_seed(repeat, rnd, strategy.name)
        view = fit.view(strategy, pool, labeled, len(self.data.labels), self.cfg.mc_passes, mc_seed)
        picks = np.asarray(strategy.select(view, min(self.cfg.n_batch, len(pool)), rng), dtype=np.int64)
        return pool[picks]

    def _train_and_record(self, name: str, repeat: int, rnd: int, labeled: np.ndarray, select_seconds: float):
        t0 = time.perf_counter()
        fit = self.learner.fit(labeled, self.train_seed(repeat))
        train_seconds = time.perf_counter() - t0
        pred = training.predicted(fit.test_probs(), single_label=False)  # the service's decision rule
        y = self.data.test_y
        self.log.add_row(
            {
                "strategy": name,
                "repeat": repeat,
                "round": rnd,
                "n_labeled": len(labeled),
                "fraction_labeled": f"{len(labeled) / self.n:.6f}",
                "micro_f1": f"{evaluation.micro_f1(y, pred):.6f}",
                "macro_f1": f"{evaluation.macro_f1(y, pred):.6f}",
                "select_seconds": f"{select_seconds:.3f}",
                "train_seconds": f"{train_seconds:.3f}",
            }
        )
        return fit


_WORKER: Simulation | None = None  # the worker process's own view of the run


def _init_worker(cfg: SimulationConfig) -> None:
    global _WORKER
    import torch

    _die_with_parent()
    torch.set_num_threads(1)  # the workers share out the cores
    _WORKER = Simulation(cfg, worker=True)


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the main process dies (killed, timed out), instead of finishing its
    curve as an orphan. Elsewhere a no-op: workers then stop after their current job."""
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG


def _run_in_worker(repeat: int, name: str) -> None:
    assert _WORKER is not None, "_init_worker runs first in every worker process"
    _WORKER.run_job(repeat, name)


def _check_identity(path: Path, identity: dict) -> None:
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != identity:
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            raise ValueError(f"{path.parent} holds a run with other settings ({', '.join(diff)}): use another --out")
        return
    path.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")


def simulate(cfg: SimulationConfig, report_only: bool = False) -> dict:
    """Run (or resume) the simulation, write results.csv, summary.json, summary.md, curves.png; return the summary.
    ``report_only``: run nothing, report the complete repeats results.csv holds (a stopped background run)."""
    return Simulation(cfg).run(report_only)
