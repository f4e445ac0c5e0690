"""The settings of a simulation run and the names shared by the run, its analysis and its report.

The dataclass's own defaults are the paper's setting (``protocol="paper"``: [CLS], T = 100, a fixed number of
epochs, no held-out slice), what the published runs used. ``beal simulate`` defaults to ``--protocol service``,
whose learner, training and scoring settings the command line reads from the service's own (``config.Settings``
-> ``wiring.train_config`` / ``scoring_config``): the simulation package may not import them itself."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

from beal_backend import acquisition
from beal_backend.engine import encoders
from beal_backend.engine.batching import MAX_WORDPIECES
from beal_backend.engine.features import DEFAULT_CACHE_DIR, HeadConfig
from beal_backend.engine.training import TrainConfig
from beal_backend.simulation import protocol as protocols

MODES = ("frozen", "finetune")
ALL_DATA = "all-data"  # the strategy name of the rows that train on the whole pool

# tags that keep the seed streams of different purposes apart (fixed: they determine every run's numbers)
SEED_POOL, SEED_TEST, SEED_INITIAL, SEED_TRAIN, SEED_SELECT, SEED_MC = range(1, 7)


class _Resolved:
    """``n_<field>``: the field once the protocol's schedule fills it in (``SimulationConfig.resolve``)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.field = name.removeprefix("n_")

    def __get__(self, cfg: SimulationConfig, owner: type | None = None) -> int:
        value = getattr(cfg, self.field)
        if value is None:
            raise ValueError(f"{self.field} is the protocol's until the pool is known: resolve(pool size) first")
        return value


@dataclass(frozen=True)
class SimulationConfig:
    data: str
    out: str
    strategies: tuple[str, ...] = tuple(acquisition.STRATEGIES)
    protocol: str = "paper"  # service | paper (protocol.py): the schedule below, when left None, and held_out
    initial: int | None = None  # None: the protocol's (``resolve``); the paper: 5 % of the pool, 19 rounds of 5 %
    batch: int | None = None
    rounds: int | None = None
    repeats: int | None = None
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
    held_out: bool = False  # early stopping on the service's stable held-out slice (protocol.early_stopping_rows)
    workers: int = 1  # > 1: curves run in that many processes, one torch thread each
    progress: bool = True

    def __post_init__(self):
        # a strategy named twice would be run twice (two workers writing the same rows) and reported twice
        object.__setattr__(self, "strategies", tuple(dict.fromkeys(self.strategies)))

    def resolve(self, pool_size: int) -> SimulationConfig:
        """The config with the protocol's schedule and repeats filled in for a pool of ``pool_size`` texts."""
        initial, batch, rounds = protocols.schedule(self.protocol, pool_size, self.initial, self.batch, self.rounds)
        repeats = protocols.REPEATS[self.protocol] if self.repeats is None else self.repeats
        return replace(self, initial=initial, batch=batch, rounds=rounds, repeats=repeats)

    # the schedule once resolved (``Simulation`` resolves its config when it has read the pool)
    n_initial = _Resolved()
    n_batch = _Resolved()
    n_rounds = _Resolved()
    n_repeats = _Resolved()

    def identity(self) -> dict:
        """The settings that determine the numbers: a resumed run must match them. Strategies, repeats and
        rounds may grow (each curve has its own seeds); device, cache, workers and progress do not change
        the numbers (beyond float rounding of a different thread count)."""
        trainer = self.head if self.mode == "frozen" else self.train
        hparams = {k: v for k, v in asdict(trainer).items() if k not in ("seed", "device", "encoder", "max_wordpieces")}
        if not trainer.val_fraction:  # nothing held out, nothing to stop on: paper runs made before it resume
            hparams.pop("early_stopping", None)
        if self.mode == "finetune" and not trainer.min_steps:  # the paper's fixed epochs: as runs made before it
            hparams.pop("min_steps", None)
        keys = ("initial", "batch", "mc_passes", "pool_size", "test_size", "mode", "seed", "encoder", "max_wordpieces")
        return {
            "data": str(Path(self.data).resolve()),
            **{k: getattr(self, k) for k in keys},
            **({"scope": self.scope} if self.mode == "finetune" else {}),
            **({"pooling": self.pooling} if self.pooling != "cls" else {}),  # runs made before POOLING stay resumable
            **({"protocol": self.protocol} if self.protocol != "paper" else {}),  # and those made before --protocol
            **({"held_out": protocols.HELD_OUT} if self.held_out else {}),
            "hparams": hparams,
        }

    def validate(self, pool_size: int) -> None:
        if self.protocol not in protocols.PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(protocols.PROTOCOLS)}, got {self.protocol!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in self.strategies:
            acquisition.get_strategy(name)
        initial, batch, rounds = self.n_initial, self.n_batch, self.n_rounds
        if min(initial, batch, self.n_repeats, self.mc_passes, self.workers) < 1 or rounds < 0:
            raise ValueError("initial, batch, repeats, mc-passes and workers must be >= 1 and rounds >= 0")
        needed = initial + rounds * batch
        if needed > pool_size:
            raise ValueError(
                f"initial + rounds x batch = {self.initial} + {self.rounds} x {self.batch} = {needed} "
                f"exceeds the pool ({pool_size} texts)"
            )


def default(config: type, name: str):
    """The default of dataclass field ``name`` (factory defaults called): what an omitted option means."""
    f = next(f for f in fields(config) if f.name == name)
    if f.default is MISSING and f.default_factory is not MISSING:
        return f.default_factory()
    return f.default
