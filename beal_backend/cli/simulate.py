"""``beal simulate``: the offline active-learning runs (``beal_backend.simulation``) with the options of
``--protocol service`` (the service's own settings, Settings -> wiring) or ``paper``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

# options whose defaults come from the protocol: argparse defaults them to None (omitted). ``--protocol service``
# (the default) takes the learner, training and scoring settings from the service's own (Settings -> wiring);
# ``paper`` from the configuration dataclasses (the paper's setting); the schedule from simulation.protocol.
# run-level: option dest -> SimulationConfig field
_SIM_OPTIONS = {
    "initial": "initial", "batch": "batch", "rounds": "rounds", "repeats": "repeats", "mc_passes": "mc_passes",
    "pool_size": "pool_size", "test_size": "test_size", "learner": "mode", "pooling": "pooling", "seed": "seed",
    "device": "device", "encoder": "encoder", "max_wordpieces": "max_wordpieces", "cache_dir": "cache_dir",
    "scope": "scope", "workers": "workers",
}  # fmt: skip
# training: option dest -> (HeadConfig field for frozen, TrainConfig field for finetune); None = not that learner's
_TRAIN_OPTIONS = {
    "hidden_size": ("hidden_size", "hidden_size"), "dropout": ("dropout", "dropout"), "epochs": ("epochs", "epochs"),
    "min_steps": ("min_steps", "min_steps"), "val_fraction": ("val_fraction", "val_fraction"),
    "patience": ("patience", "patience"), "train_batch_size": ("batch_size", "batch_size"), "lr": ("lr", "lr_head"),
    "lr_encoder": (None, "lr_encoder"),
}  # fmt: skip


def _paper_train():
    """The paper's fine-tuning: a fixed number of epochs (no least step count), no early stopping."""
    from beal_backend.engine.training import TrainConfig

    return TrainConfig(min_steps=0)


# the service's setting behind an option's ``--protocol service`` default (the help names it)
_SERVICE_ENV = {"mc_passes": "MC_PASSES", "learner": "LEARNER", "pooling": "POOLING", "seed": "SEED",
                "device": "DEVICE", "encoder": "ENCODER", "scope": "MC_SCOPE"}  # fmt: skip


class _ConfigDefaultsHelp(argparse.HelpFormatter):
    """Appends each option's default, read from where it comes from (imported only to print help)."""

    def _get_help_string(self, action):
        text = _config_default(action.dest)
        if text is None and action.default not in (None, argparse.SUPPRESS, False):
            text = str(action.default)
        return f"{action.help or ''} (default: {text.replace('%', '%%')})" if text is not None else action.help


def _config_default(dest: str) -> str | None:
    from beal_backend.engine.features import HeadConfig
    from beal_backend.simulation import protocol as p
    from beal_backend.simulation.config import SimulationConfig, default

    share = f"{p.INITIAL_SHARE:.0%} of the pool"
    schedule = {"protocol": p.PROTOCOLS[0], "initial": share, "batch": f"service {p.SERVICE_BATCH}, paper {share}",
                "rounds": f"service: up to {p.SERVICE_REACH:.0%} of the pool, paper {p.PAPER_ROUNDS}",
                "repeats": ", ".join(f"{k} {v}" for k, v in p.REPEATS.items()),
                "strategies": ",".join(default(SimulationConfig, "strategies"))}  # fmt: skip
    if dest in schedule:
        return schedule[dest]
    service = _service_defaults()
    if dest in _SERVICE_ENV:
        text = f"service {_SERVICE_ENV[dest]} = {service[dest if dest == 'learner' else _SIM_OPTIONS[dest]]}"
        paper = dest not in ("learner", "device", "encoder")  # these two protocols share
        return text + (f", paper {default(SimulationConfig, _SIM_OPTIONS[dest])}" if paper else "")
    if dest in _SIM_OPTIONS:
        value = default(SimulationConfig, _SIM_OPTIONS[dest])
        return "all" if value is None else str(value)  # pool_size / test_size: no subsample
    if dest not in _TRAIN_OPTIONS:
        return None
    trainers = {"service": (service["head"], service["train"]), "paper": (HeadConfig(), _paper_train())}
    learners = ("frozen", "finetune")
    return "; ".join(
        f"{name}: " + ", ".join(f"{m} {getattr(c, f)}" for m, c, f in zip(learners, pair, _TRAIN_OPTIONS[dest]) if f)
        for name, pair in trainers.items()
    )


# simulate's plain options (flag, type, help); their defaults come from the config dataclasses
_SIM_FLAGS: list[tuple[str, type, str]] = [
    ("--initial", int, "random texts labeled before the first round"),
    ("--batch", int, "texts acquired per round"),
    ("--rounds", int, "acquisition rounds after the initial labels"),
    ("--repeats", int, "repeats, each with its own initial labels and seeds"),
    ("--mc-passes", int, "T, MC-dropout passes per text"),
    ("--pool-size", int, "random subset of train.jsonl used as the pool"),
    ("--test-size", int, "random subset of test.jsonl"),
    ("--seed", int, "seed of every random choice of the run"),
    ("--device", str, "torch device, e.g. cuda"),
    ("--encoder", str, "Hugging Face BERT-style checkpoint; minilm = the packaged MiniLM"),
    ("--max-wordpieces", int, "texts are truncated to this many word-pieces"),
    ("--cache-dir", str, "frozen mode: feature cache"),
    ("--scope", str, "finetune mode: MC-dropout scope (full, last-<k>, head)"),
    ("--hidden-size", int, "classifier hidden layer"),
    ("--dropout", float, "dropout rate"),
    ("--epochs", int, "epochs per training"),
    ("--min-steps", int, "train at least this many minibatch steps (more epochs when the labeled texts are few)"),
    ("--val-fraction", float, "labeled share held out, as a round holds it out (0 = none)"),
    ("--patience", int, "early-stopping patience in epochs"),
    ("--train-batch-size", int, "training minibatch"),
    ("--lr", float, "head learning rate"),
    ("--lr-encoder", float, "finetune mode: encoder learning rate"),
]


def add_simulate(sub) -> None:
    from beal_backend.acquisition import STRATEGIES

    p = sub.add_parser(
        "simulate",
        help="offline active-learning simulation on a labeled dataset",
        description="Simulate active learning as the service runs it (--protocol service: its settings, a round "
        "every few labels) or as the paper does (--protocol paper): initial random labels, rounds of acquisition, "
        "retraining from scratch, for several strategies; write results.csv, summary.json, summary.md and "
        "curves.png into --out. Rerunning with the same --out resumes where it stopped.",
        formatter_class=_ConfigDefaultsHelp,
    )
    p.add_argument("--data", required=True, help="folder with train.jsonl (the pool), test.jsonl and labels.txt")
    p.add_argument("--out", required=True, help="output folder (resumed when it holds a run with the same settings)")
    p.add_argument("--strategies", help="comma-separated: " + ", ".join(STRATEGIES))
    p.add_argument(
        "--protocol",
        choices=("service", "paper"),
        help="service = the service's regime and settings (a round every 20 labels up to 75 %% of the pool, "
        "the service's learner, training, held-out slice and scoring); paper = Table 2 (5 %% + 19 x 5 %%, "
        "the paper's fixed-epoch training, [CLS], T = 100: the published runs)",
    )
    for flag, kind, text in _SIM_FLAGS[:7]:
        p.add_argument(flag, type=kind, help=text)
    p.add_argument(
        "--learner",
        "--mode",
        dest="learner",
        choices=("auto", "frozen", "finetune"),
        help="the service's learners (LEARNER): frozen = cached encoder features, head-only training (CPU); "
        "finetune = the paper's full fine-tuning; auto = finetune on CUDA, else frozen. --mode is the old name",
    )
    p.add_argument(
        "--pooling",
        choices=("cls", "mean", "auto"),
        help="sentence feature (POOLING): cls = the paper's C, mean, auto (mean for sentence-transformers)",
    )
    for flag, kind, text in _SIM_FLAGS[7:]:
        p.add_argument(flag, type=kind, help=text)
    p.add_argument(
        "--workers",
        type=int,
        help="processes running curves in parallel, one torch thread each (frozen mode on CPU: the core count)",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads of the main process (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: write the summary of the complete repeats --out already holds (a stopped run)",
    )
    p.set_defaults(run=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    import torch

    from beal_backend.simulation import runner

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        summary = runner.simulate(_simulation_config(args), report_only=args.report_only)
    except ValueError as e:  # bad settings or a clash with an earlier run in --out: say so, no traceback
        print(f"beal simulate: {e}", file=sys.stderr)
        return 2
    from beal_backend.simulation.report import summary_markdown

    print(summary_markdown(summary))
    return 0


def _simulation_config(args: argparse.Namespace):
    """The given options over the protocol's defaults: ``service`` = the service's settings (``_service_defaults``),
    ``paper`` = the configuration dataclasses' (the paper's setting)."""
    from beal_backend.engine import learners
    from beal_backend.engine.features import HeadConfig
    from beal_backend.simulation.config import SimulationConfig

    protocol = args.protocol or "service"
    service = _service_defaults()
    if protocol == "service":
        base = dict(service)
    else:  # the paper's training and scoring; which learner and device, and the encoder, as the service
        base = {k: service[k] for k in ("device", "encoder")}
        base.update(head=HeadConfig(), train=_paper_train(), learner=service["learner"])
    given = {f: getattr(args, dest) for dest, f in _SIM_OPTIONS.items() if getattr(args, dest) is not None}
    if args.strategies is not None:
        given["strategies"] = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    head = {h: getattr(args, d) for d, (h, _) in _TRAIN_OPTIONS.items() if h and getattr(args, d) is not None}
    train = {t: getattr(args, d) for d, (_, t) in _TRAIN_OPTIONS.items() if t and getattr(args, d) is not None}
    settings = {**base, **given}
    learner = settings.pop("learner")
    settings["mode"] = learners.resolve(settings.pop("mode", learner), settings["device"])
    return SimulationConfig(
        data=args.data,
        out=args.out,
        protocol=protocol,
        **{**settings, "head": replace(settings["head"], **head), "train": replace(settings["train"], **train)},
        progress=not args.no_progress,
    )


def _service_defaults() -> dict:
    """What a service round trains and scores with, from the one place the service reads it (``Settings`` from
    the environment -> ``wiring.train_config`` / ``scoring_config`` -> the learner's own head settings):
    SimulationConfig fields, with ``learner`` unresolved (``auto``: finetune on CUDA, else frozen)."""
    from beal_backend import wiring
    from beal_backend.config import Settings
    from beal_backend.engine import learners

    s = Settings.from_env()
    train, scoring = wiring.train_config(s), wiring.scoring_config(s)
    return {
        "learner": s.learner,
        "device": train.device,
        "encoder": train.encoder,
        "max_wordpieces": train.max_wordpieces,
        "pooling": train.pooling,
        "seed": train.seed,
        "mc_passes": scoring.passes,
        "scope": scoring.scope,
        "train": train,
        "head": learners.FrozenLearner(train).head_cfg,  # the head a frozen round trains (derived from ``train``)
        "held_out": True,  # train and early-stop as a round does (holdout.held_out_split)
    }
