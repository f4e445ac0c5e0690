"""Offline active-learning simulation of the paper's protocol on a labeled dataset (engine only).

Protocol (Algorithm 1): in every repeat ``initial`` random pool texts are labeled (the same texts for every
strategy, so strategies are compared pairwise); each round a strategy picks ``batch`` texts of the remaining
pool, their gold labels are revealed and the model is retrained from scratch; micro/macro-F1 on the test
set are recorded after every training. An "all data" run trains on the whole pool: its F1 is the target
of the paper's Table 2 metric (% of the pool that must be labeled to reach it).

Learners (``--learner``, the old ``--mode``): the service's own classes from ``learners.py``, so a
simulation result is a statement about the service. ``frozen`` trains only the head on cached sentence
features of a frozen encoder (CPU); ``finetune`` fine-tunes the encoder every round and samples it with
``scoring.mc_moments`` (GPU).

Determinism and resume: every random choice draws from a generator derived from the seed and its place
(repeat, round, strategy); the training seed depends on the repeat only, so a model is a function of its
labeled set (the last round, which labels the whole pool, equals the all-data run). ``results.csv`` gets one
row per finished round and ``selections.jsonl`` the texts each round picked; a rerun skips finished rounds,
retrains the last finished round's model (identical, being seeded) and goes on, so an interrupted run ends
with the results of an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from beal_backend import acquisition
from beal_backend.acquisition import PoolView, Strategy
from beal_backend.engine import encoders, evaluation, learners
from beal_backend.engine.batching import MAX_WORDPIECES, encode
from beal_backend.engine.features import DEFAULT_CACHE_DIR, HeadConfig
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.engine.training import TrainConfig

MODES = ("frozen", "finetune")
ALL_DATA = "all-data"  # the strategy name of the rows that train on the whole pool
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
METRICS = ("micro_f1", "macro_f1")
NOT_REACHED = "not reached"
# the Table 2 metric against the all-data F1 (the paper's), and against 98 % of it: plateaus just below the
# all-data level make the strict one jump to 100 % on small differences
TARGETS = {"pct_to_all_data": 1.0, "pct_to_98pct_of_all_data": 0.98}
THRESHOLD = 0.5  # label j is predicted relevant when its output exceeds 0.5

# tags that keep the seed streams of different purposes apart
_POOL, _TEST, _INITIAL, _TRAIN, _SELECT, _MC = range(1, 7)


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Dataset:
    """A pool (train.jsonl, possibly subsampled) and a test set, with gold label names and multi-hot targets."""

    name: str
    labels: list[str]
    pool_texts: list[str]
    pool_labels: list[list[str]]
    test_texts: list[str]
    test_y: np.ndarray

    @property
    def pool_y(self) -> np.ndarray:
        return evaluation.multi_hot(self.pool_labels, self.labels)


def load_dataset(
    path: str | Path, pool_size: int | None = None, test_size: int | None = None, seed: int = 0
) -> Dataset:
    """``labels.txt`` + ``train.jsonl`` (the pool) + ``test.jsonl``; lines ``{"id", "text", "labels": [names]}``.

    ``pool_size``/``test_size`` draw a seeded random subset (kept in file order). ``val.jsonl`` is not read:
    early stopping uses a slice of the labeled texts, as a real annotation loop would have to.
    """
    root = Path(path)
    labels = [line.strip() for line in (root / "labels.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    pool = _subsample(_read_jsonl(root / "train.jsonl"), pool_size, seed, _POOL)
    test = _subsample(_read_jsonl(root / "test.jsonl"), test_size, seed, _TEST)
    return Dataset(
        name=root.resolve().name,
        labels=labels,
        pool_texts=[r["text"] for r in pool],
        pool_labels=[list(r["labels"]) for r in pool],
        test_texts=[r["text"] for r in test],
        test_y=evaluation.multi_hot([r["labels"] for r in test], labels),
    )


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _subsample(records: list[dict], size: int | None, seed: int, tag: int) -> list[dict]:
    if size is None or size >= len(records):
        return records
    keep = np.sort(np.random.default_rng([seed, tag]).choice(len(records), size=size, replace=False))
    return [records[i] for i in keep]


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SimulationConfig:
    data: str
    out: str
    strategies: tuple[str, ...] = tuple(acquisition.STRATEGIES)
    initial: int = 500  # the paper: 500 random texts, then 19 rounds of 500
    batch: int = 500
    rounds: int = 19
    repeats: int = 5
    mc_passes: int = 100  # T
    pool_size: int | None = None  # subsample train.jsonl to this many texts
    test_size: int | None = None
    mode: str = "frozen"  # the learner: frozen | finetune (learners.py, the service's classes)
    pooling: str = "cls"  # cls (the published runs), mean, or auto (encoders.pooling_for)
    seed: int = 0
    encoder: str = encoders.DEFAULT_ENCODER
    device: str = "cpu"
    max_wordpieces: int = MAX_WORDPIECES
    cache_dir: str = str(DEFAULT_CACHE_DIR)
    scope: str = "full"  # finetune: MC-dropout scope of scoring.mc_moments
    head: HeadConfig = field(default_factory=HeadConfig)  # frozen mode
    train: TrainConfig = field(default_factory=TrainConfig)  # finetune mode
    workers: int = 1  # > 1: curves run in that many processes, one torch thread each
    progress: bool = True

    def identity(self) -> dict:
        """The settings that determine the numbers: a resumed run must match them. Strategies, repeats and
        rounds may grow (each curve has its own seeds); device, cache, workers and progress do not change
        the numbers (beyond float rounding of a different thread count)."""
        trainer = self.head if self.mode == "frozen" else self.train
        hparams = {k: v for k, v in asdict(trainer).items() if k not in ("seed", "device", "encoder", "max_wordpieces")}
        keys = ("initial", "batch", "mc_passes", "pool_size", "test_size", "mode", "seed", "encoder", "max_wordpieces")
        return {
            "data": str(Path(self.data).resolve()),
            **{k: getattr(self, k) for k in keys},
            **({"scope": self.scope} if self.mode == "finetune" else {}),
            **({"pooling": self.pooling} if self.pooling != "cls" else {}),  # runs made before POOLING stay resumable
            "hparams": hparams,
        }

    def validate(self, pool_size: int) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in self.strategies:
            acquisition.get_strategy(name)
        if min(self.initial, self.batch, self.repeats, self.mc_passes, self.workers) < 1 or self.rounds < 0:
            raise ValueError("initial, batch, repeats, mc-passes and workers must be >= 1 and rounds >= 0")
        needed = self.initial + self.rounds * self.batch
        if needed > pool_size:
            raise ValueError(
                f"initial + rounds x batch = {self.initial} + {self.rounds} x {self.batch} = {needed} "
                f"exceeds the pool ({pool_size} texts)"
            )


# ---------------------------------------------------------------- learners: fit a model on a labeled set


class _FrozenLearner:
    """``learners.FrozenLearner``, the service's: features once (cached on disk), a fresh head per fit."""

    def __init__(self, cfg: SimulationConfig, data: Dataset):
        self.impl = learners.FrozenLearner(_train_config(cfg), cfg.cache_dir, head=replace(cfg.head, device=cfg.device))
        x = self.impl.features(data.pool_texts + data.test_texts)  # pool and test: one encoder load, one file
        self.pool_x, self.test_x = x[: len(data.pool_texts)], x[len(data.pool_texts) :]
        self.cfg, self.data = cfg, data

    def fit(self, labeled: np.ndarray, seed: int) -> "_Fit":
        trained = self.impl.fit([self.data.pool_texts[i] for i in labeled], [self.data.pool_labels[i] for i in labeled],
                                self.data.labels, seed=seed, features=self.pool_x[labeled])
        return _Fit(trained, self.cfg, pool=lambda rows: self.pool_x[rows], test=lambda: self.test_x)


class _FinetuneLearner:
    """``learners.FinetuneLearner``, the service's: the encoder is fine-tuned from scratch every round."""

    def __init__(self, cfg: SimulationConfig, data: Dataset):
        self.impl = learners.FinetuneLearner(_train_config(cfg))
        self.cfg, self.data = cfg, data
        self.encoded = None  # (pool, test) token ids, made with the first model's tokenizer

    def fit(self, labeled: np.ndarray, seed: int) -> "_Fit":
        trained = self.impl.fit([self.data.pool_texts[i] for i in labeled], [self.data.pool_labels[i] for i in labeled],
                                self.data.labels, seed=seed)
        if self.encoded is None:
            tok, n = trained.tokenizer, self.cfg.max_wordpieces
            self.encoded = (encode(tok, self.data.pool_texts, n), encode(tok, self.data.test_texts, n))
        return _Fit(trained, self.cfg, pool=lambda rows: self.encoded[0].subset(rows), test=lambda: self.encoded[1])


def _train_config(cfg: SimulationConfig) -> TrainConfig:
    return replace(cfg.train, device=cfg.device, encoder=cfg.encoder, max_wordpieces=cfg.max_wordpieces, pooling=cfg.pooling)


@dataclass
class _Fit:
    """A fitted model scored through ``learners.pool_moments`` / ``pool_deterministic``, as in the service.
    ``pool(rows)`` / ``test()`` give the model's inputs: cached features (frozen) or token ids (finetune)."""

    trained: object
    cfg: SimulationConfig
    pool: Callable
    test: Callable

    def _inputs(self, x) -> dict:
        return {"features": x} if learners.is_frozen(self.trained) else {"encoded": x}

    def _scoring(self, **kw) -> ScoringConfig:
        return ScoringConfig(scope=self.cfg.scope, device=self.cfg.device, **kw)

    def outputs(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return learners.pool_deterministic(self.trained, self._scoring(), **self._inputs(self.pool(rows)))

    def moments(self, rows: np.ndarray, passes: int, seed: int, deterministic: bool):
        cfg = self._scoring(passes=passes, seed=seed)
        return learners.pool_moments(self.trained, cfg, deterministic=deterministic, **self._inputs(self.pool(rows)))

    def test_probs(self) -> np.ndarray:
        return learners.pool_deterministic(self.trained, self._scoring(), **self._inputs(self.test()))[0]


def pool_view(
    fit, strategy: Strategy, pool: np.ndarray, labeled: np.ndarray, num_labels: int, passes: int, seed: int
) -> PoolView:
    """The model outputs ``strategy`` needs, for the unlabeled ``pool`` rows."""
    view = PoolView(size=len(pool), num_labels=num_labels)
    if "mc" in strategy.needs:
        m = fit.moments(pool, passes, seed, strategy.deterministic_passes)
        view.mean_relevance, view.mean_prob, view.mean_entropy = m.mean_relevance, m.mean_prob, m.mean_entropy
    if "deterministic" in strategy.needs:
        view.det_probs, view.hidden = fit.outputs(pool)
        view.labeled_hidden = fit.outputs(labeled)[1]
    return view


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
        rec = {"strategy": strategy, "repeat": repeat, "round": rnd, "rows": [int(r) for r in rows]}
        _append(self.selections_path, json.dumps(rec) + "\n")
        self.picks[(strategy, repeat, rnd)] = rec["rows"]

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
        self.cfg = cfg
        self.data = load_dataset(cfg.data, cfg.pool_size, cfg.test_size, cfg.seed)
        cfg.validate(len(self.data.pool_texts))
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        _check_identity(self.out / "config.json", cfg.identity())
        self.log = RunLog(self.out, repair=not worker)
        self.n = len(self.data.pool_texts)
        self.strategies = [acquisition.get_strategy(s) for s in cfg.strategies]
        self._learner = None

    @property
    def learner(self):
        """Built on first use: a rerun with nothing left to do computes no features and loads no encoder."""
        if self._learner is None:
            cls = _FrozenLearner if self.cfg.mode == "frozen" else _FinetuneLearner
            self._learner = cls(self.cfg, self.data)
        return self._learner

    def run(self) -> dict:
        jobs = self.pending()
        if jobs and self.cfg.workers > 1:
            self._run_parallel(jobs)
        else:
            for repeat, name in tqdm(jobs, desc="curves", unit="curve", disable=not self.cfg.progress):
                self.run_job(repeat, name)
        summary = summarize(self.log.rows.values(), self.cfg, self.data)
        write_report(self.out, summary)
        return summary

    def pending(self) -> list[tuple[int, str]]:
        """Unfinished jobs, repeat by repeat (a run stopped early leaves whole repeats): (repeat, strategy or all-data)."""
        jobs = []
        for repeat in range(self.cfg.repeats):
            if (ALL_DATA, repeat, 0) not in self.log.rows:
                jobs.append((repeat, ALL_DATA))
            jobs += [
                (repeat, s.name) for s in self.strategies if (s.name, repeat, self.cfg.rounds) not in self.log.rows
            ]
        return jobs

    def run_job(self, repeat: int, name: str) -> None:
        if name == ALL_DATA:
            self._train_and_record(ALL_DATA, repeat, 0, np.arange(self.n), 0.0)
        else:
            self._curve(acquisition.get_strategy(name), repeat)

    def _run_parallel(self, jobs: list[tuple[int, str]]) -> None:
        self.learner  # features are computed and cached here once, before the workers read them
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
        return int(_seed_seq(self.cfg.seed, _TRAIN, repeat).generate_state(1)[0])

    def initial_set(self, repeat: int) -> np.ndarray:
        rng = np.random.default_rng(_seed_seq(self.cfg.seed, _INITIAL, repeat))
        return rng.choice(self.n, size=self.cfg.initial, replace=False)

    # -- runs

    def _curve(self, strategy: Strategy, repeat: int) -> None:
        cfg, name = self.cfg, strategy.name
        done = 0
        while done <= cfg.rounds and (name, repeat, done) in self.log.rows:
            done += 1
        if done > cfg.rounds:
            return
        labeled = [self.initial_set(repeat)] + [np.asarray(self.log.picks[(name, repeat, r)]) for r in range(1, done)]
        labeled = np.sort(np.concatenate(labeled))
        fit = self.learner.fit(labeled, self.train_seed(repeat)) if done else None  # resume: same model again
        rounds = tqdm(range(done, cfg.rounds + 1), desc=name, unit="round", leave=False, disable=not cfg.progress)
        for rnd in rounds:
            select_seconds = 0.0
            if rnd > 0:
                t0 = time.perf_counter()
                picks = self._select(fit, strategy, repeat, rnd, labeled)
                select_seconds = time.perf_counter() - t0
                self.log.add_picks(name, repeat, rnd, picks)
                labeled = np.sort(np.concatenate([labeled, picks]))
            fit = self._train_and_record(name, repeat, rnd, labeled, select_seconds)

    def _select(self, fit, strategy: Strategy, repeat: int, rnd: int, labeled: np.ndarray) -> np.ndarray:
        parts = (repeat, rnd, _name_key(strategy.name))
        rng = np.random.default_rng(_seed_seq(self.cfg.seed, _SELECT, *parts))
        mc_seed = int(_seed_seq(self.cfg.seed, _MC, *parts).generate_state(1)[0])
        pool = np.setdiff1d(np.arange(self.n), labeled)
        view = pool_view(fit, strategy, pool, labeled, len(self.data.labels), self.cfg.mc_passes, mc_seed)
        picks = np.asarray(strategy.select(view, min(self.cfg.batch, len(pool)), rng), dtype=np.int64)
        return pool[picks]

    def _train_and_record(self, name: str, repeat: int, rnd: int, labeled: np.ndarray, select_seconds: float):
        t0 = time.perf_counter()
        fit = self.learner.fit(labeled, self.train_seed(repeat))
        train_seconds = time.perf_counter() - t0
        pred = fit.test_probs() > THRESHOLD
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
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _run_in_worker(repeat: int, name: str) -> None:
    _WORKER.run_job(repeat, name)


def _check_identity(path: Path, identity: dict) -> None:
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != identity:
            diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            raise ValueError(f"{path.parent} holds a run with other settings ({', '.join(diff)}): use another --out")
        return
    path.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")


def simulate(cfg: SimulationConfig) -> dict:
    """Run (or resume) the simulation, write results.csv, summary.json, summary.md, curves.png; return the summary."""
    return Simulation(cfg).run()


# ---------------------------------------------------------------- analysis


def reach_fraction(fractions, scores, target: float, tol: float = 1e-9) -> float | None:
    """Table 2 metric: the labeled fraction at which a learning curve first reaches ``target``.

    Linear interpolation between the two rounds that straddle the target; the first point when it is
    already there; ``None`` when the curve never reaches it.
    """
    x, y = np.asarray(fractions, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    hit = np.flatnonzero(y >= target - tol)
    if len(hit) == 0:
        return None
    k = int(hit[0])
    if k == 0:
        return float(x[0])
    x0, y0, x1, y1 = x[k - 1], y[k - 1], x[k], y[k]
    return float(min(x1, x0 + (target - y0) / (y1 - y0) * (x1 - x0)))


def curve_area(fractions, scores) -> float:
    """Area under a learning curve divided by its width: the mean F1 over the labeled range."""
    x, y = np.asarray(fractions, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    return float(np.trapezoid(y, x) / (x[-1] - x[0])) if len(x) > 1 else float(y[0])


def summarize(rows, cfg: SimulationConfig, data: Dataset | None = None) -> dict:
    """Per strategy over its complete repeats: learning curves (mean, std), area under them, the Table 2
    metric against the all-data F1 (on the mean curve and per repeat) and paired wins against random."""
    rounds = range(cfg.rounds + 1)
    table = {(r["strategy"], int(r["repeat"]), int(r["round"])): r for r in rows}
    target = {
        rep: {m: float(table[(ALL_DATA, rep, 0)][m]) for m in METRICS}
        for rep in range(cfg.repeats)
        if (ALL_DATA, rep, 0) in table
    }
    curves, out = {}, {}
    for name in cfg.strategies:
        reps = [rep for rep in target if all((name, rep, r) in table for r in rounds)]
        if not reps:
            continue
        frac = [float(table[(name, reps[0], r)]["fraction_labeled"]) for r in rounds]
        scores = {m: np.array([[float(table[(name, rep, r)][m]) for r in rounds] for rep in reps]) for m in METRICS}
        curves[name] = (reps, frac, scores)
        entry = {"repeats": len(reps), "fraction_labeled": frac, "curve": {}, "auc": {}, **{k: {} for k in TARGETS}}
        for m in METRICS:
            s = scores[m]
            entry["curve"][m] = {"mean": _r(s.mean(0)), "std": _r(s.std(0))}
            auc = [curve_area(frac, row) for row in s]
            entry["auc"][m] = {"mean": _r(np.mean(auc)), "std": _r(np.std(auc)), "per_repeat": _r(auc)}
            for key, ratio in TARGETS.items():
                goal = ratio * np.mean([target[rep][m] for rep in reps])
                per = [reach_fraction(frac, row, ratio * target[rep][m]) for row, rep in zip(s, reps)]
                entry[key][m] = {
                    "mean_curve": _pct(reach_fraction(frac, s.mean(0), goal)),
                    "per_repeat": [_pct(p) for p in per],
                    "reached": f"{sum(p is not None for p in per)}/{len(per)}",
                }
        sel = [float(table[(name, rep, r)]["select_seconds"]) for rep in reps for r in rounds]
        trn = [float(table[(name, rep, r)]["train_seconds"]) for rep in reps for r in rounds]
        entry["seconds"] = {
            "select_mean": _r(np.mean(sel)),
            "train_mean": _r(np.mean(trn)),
            "total": _r(sum(sel) + sum(trn)),
        }
        out[name] = entry
    if "random" in curves:
        for name, (reps, frac, scores) in curves.items():
            base_reps, _, base = curves["random"]
            common = [rep for rep in reps if rep in base_reps]
            out[name]["vs_random"] = {m: _paired(frac, scores[m], reps, base[m], base_reps, common) for m in METRICS}
    all_data = {}
    for m in METRICS:
        values = [target[rep][m] for rep in sorted(target)]
        if values:
            all_data[m] = {"mean": _r(np.mean(values)), "std": _r(np.std(values)), "per_repeat": _r(values)}
    return {
        "dataset": data.name if data else Path(cfg.data).name,
        "settings": {
            **cfg.identity(),
            "strategies": list(cfg.strategies),
            "rounds": cfg.rounds,
            "repeats": cfg.repeats,
            "pool": len(data.pool_texts) if data else None,
            "test": len(data.test_y) if data else None,
            "labels": len(data.labels) if data else None,
        },
        "all_data": all_data,
        "strategies": out,
    }


def _paired(frac, scores, reps, base, base_reps, common) -> dict:
    """Wins/losses/ties of a strategy against random on the area under the curve, repeat by repeat."""
    a = np.array([curve_area(frac, scores[reps.index(rep)]) for rep in common])
    b = np.array([curve_area(frac, base[base_reps.index(rep)]) for rep in common])
    d = a - b
    return {
        "wins": int((d > 0).sum()),
        "losses": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
        "mean_auc_diff": _r(d.mean()) if len(d) else None,
        "std_auc_diff": _r(d.std()) if len(d) else None,
    }


def _r(x, digits: int = 6):
    if isinstance(x, (list, tuple, np.ndarray)):
        return [round(float(v), digits) for v in x]
    return round(float(x), digits)


def _pct(fraction: float | None):
    return NOT_REACHED if fraction is None else round(100.0 * fraction, 1)


# ---------------------------------------------------------------- report


def write_report(out: Path, summary: dict) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    if summary["strategies"]:
        plot_curves(summary, out / "curves.png")


def _fmt_pct(v) -> str:
    return v if isinstance(v, str) else f"{v:.1f}%"


def summary_markdown(summary: dict) -> str:
    s, strat, alld = summary["settings"], summary["strategies"], summary["all_data"]
    names = list(strat)
    repeats = ", ".join(f"{n} {e['repeats']}" for n, e in strat.items())
    lines = [
        f"# Active-learning simulation: {summary['dataset']}",
        "",
        f"Mode `{s['mode']}`, encoder `{s['encoder']}`; pool {s['pool']} texts, test {s['test']}, {s['labels']} labels; "
        f"{s['initial']} initial + {s['rounds']} rounds x {s['batch']}; T = {s['mc_passes']}; seed {s['seed']}; "
        f"repeats per strategy: {repeats}.",
        "",
    ]
    for key, title in (
        ("pct_to_all_data", "% of the pool labeled to reach the all-data F1 (the paper's Table 2; lower is better)"),
        ("pct_to_98pct_of_all_data", "% of the pool labeled to reach 98 % of the all-data F1 (lower is better)"),
    ):
        lines += [
            f"## {title}",
            "",
            "Linear interpolation between rounds on the mean learning curve; in brackets, the repeats whose own "
            "curve reached the target set by their own all-data run.",
            "",
            "| dataset | metric | all-data F1 | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names),
        ]
        for m, label in (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1")):
            target = f"{alld[m]['mean']:.3f} ± {alld[m]['std']:.3f}" if alld else "–"
            cells = [f"{_fmt_pct(strat[n][key][m]['mean_curve'])} ({strat[n][key][m]['reached']})" for n in names]
            lines.append(f"| {summary['dataset']} | {label} | {target} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Area under the learning curve (mean F1 over the labeled range; mean ± std over repeats)",
        "",
        "Paired against random on the same initial labels: wins/losses over repeats, mean difference of the area.",
        "",
        "| strategy | micro-F1 area | macro-F1 area | vs random micro (W/L, Δ) | vs random macro (W/L, Δ) | final micro-F1 | s/round select | s/round train |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        e = strat[n]
        vs = e.get("vs_random", {})
        cell = [f"{e['auc'][m]['mean']:.4f} ± {e['auc'][m]['std']:.4f}" for m in METRICS]
        pair = [
            (
                f"{vs[m]['wins']}/{vs[m]['losses']}, {vs[m]['mean_auc_diff']:+.4f}"
                if vs and vs[m]["mean_auc_diff"] is not None
                else "–"
            )
            for m in METRICS
        ]
        final = f"{e['curve']['micro_f1']['mean'][-1]:.4f}"
        secs = [f"{e['seconds']['select_mean']:.2f}", f"{e['seconds']['train_mean']:.2f}"]
        lines.append(f"| {n} | " + " | ".join(cell + pair + [final] + secs) + " |")
    return "\n".join(lines) + "\n"


# one colour per strategy on every plot; BEAL red and drawn thick, random grey
COLORS = {
    "random": "tab:gray",
    "coreset": "tab:olive",
    "bald": "tab:green",
    "badge": "tab:purple",
    "entropy": "tab:brown",
    "beal-deterministic": "tab:orange",
    "beal-diverse": "tab:pink",
    "beal": "tab:red",
}


def plot_curves(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strat, alld = summary["strategies"], summary["all_data"]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5), constrained_layout=True)
    spare = iter(["tab:blue", "tab:cyan", "black"] * len(strat))
    colors = {name: COLORS.get(name) or next(spare) for name in strat}
    for ax, (m, label) in zip(axes, (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"))):
        for name, e in strat.items():
            x = 100.0 * np.asarray(e["fraction_labeled"])
            mean, std = np.asarray(e["curve"][m]["mean"]), np.asarray(e["curve"][m]["std"])
            bold = name == "beal"
            ax.plot(
                x,
                mean,
                color=colors[name],
                lw=2.6 if bold else 1.4,
                marker="o",
                ms=3,
                label=name,
                zorder=3 if bold else 2,
            )
            ax.fill_between(x, mean - std, mean + std, color=colors[name], alpha=0.12, lw=0)
        if m in alld:
            ax.axhline(alld[m]["mean"], color="black", ls="--", lw=1.2, label="all data")
            ax.annotate(
                f"all data {alld[m]['mean']:.3f}", (2, alld[m]["mean"]), xytext=(0, 4), textcoords="offset points"
            )
        ax.set_xlim(0, 101)
        ax.set_xlabel("% of the pool labeled")
        ax.set_ylabel(f"test {label}")
        ax.set_title(f"{summary['dataset']}: {label}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
    s = summary["settings"]
    fig.suptitle(
        f"{s['mode']} {s['encoder']}: {s['initial']} initial + {s['rounds']} x {s['batch']}, T = {s['mc_passes']}; "
        "mean ± std over repeats",
        fontsize=10,
    )
    fig.savefig(path, dpi=120)
    plt.close(fig)
