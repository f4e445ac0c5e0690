"""``beal`` command line: one subcommand per use; each has an ``_add_<name>`` parser builder and a
``_<name>`` runner returning the exit status. Add a subcommand by writing both and registering the builder."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Sequence

from beal_backend import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="beal", description="Label Studio ML backend with BEAL active learning.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_serve, _add_worker, _add_versions, _add_rollback, _add_simulate):
        add(sub)
    args = parser.parse_args(argv)
    from beal_backend.config import Settings, SettingsError, configure_logging

    try:
        configure_logging(Settings.from_env().log_level)
    except SettingsError as e:  # checked before anything starts: one line naming the variable
        print(f"beal: {e}", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except (ValueError, LookupError, RuntimeError, TimeoutError) as e:  # the package's errors say what to fix
        print(f"beal {args.command}: {e}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------- service


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="run the HTTP service (development server; gunicorn in production, see _wsgi.py)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=None, help="default: PORT or 9090")
    p.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    from beal_backend.config import Settings
    from beal_backend.service.app import create_app
    from beal_backend.wiring import build_runtime

    settings = Settings.from_env()
    create_app(build_runtime(settings)).run(host=args.host, port=args.port or settings.port, threaded=True)
    return 0


def _add_worker(sub) -> None:
    p = sub.add_parser("worker", help="run an RQ training worker (needs REDIS_URL); several, on several hosts, may share one queue")
    p.add_argument("--name", default=None, help="worker name, unique across hosts (default: rq's)")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.set_defaults(run=_worker)


def _worker(args: argparse.Namespace) -> int:
    from redis import Redis
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    from beal_backend.config import Settings

    settings = Settings.from_env()
    if not settings.redis_url:
        print("beal worker needs REDIS_URL (without it the API trains in-process)", file=sys.stderr)
        return 2
    conn = Redis.from_url(settings.redis_url)
    from beal_backend.worker.queues import embedding_queue_name

    queues = [Queue(name, connection=conn, serializer=JSONSerializer)  # listed first = served first
              for name in (settings.queue_name, embedding_queue_name(settings.queue_name))]
    # the default Worker forks a work horse per job: CUDA starts in the child, and a crash kills only the job
    Worker(queues, connection=conn, serializer=JSONSerializer, name=args.name).work(burst=args.burst)
    return 0


def _add_versions(sub) -> None:
    p = sub.add_parser("versions", help="list a project's model versions with their held-out F1 and promotion decision")
    p.add_argument("project")
    p.set_defaults(run=_versions)


def _versions(args: argparse.Namespace) -> int:
    print(json.dumps(_model().versions(args.project), indent=1))
    return 0


def _add_rollback(sub) -> None:
    p = sub.add_parser("rollback", help="make an earlier version current again (re-pushes its scores to Label Studio)")
    p.add_argument("project")
    p.add_argument("version")
    p.set_defaults(run=_rollback)


def _rollback(args: argparse.Namespace) -> int:
    print(json.dumps(_model().rollback(args.project, args.version), indent=1))
    return 0


def _model():
    from beal_backend.config import Settings
    from beal_backend.service.model import BealModel
    from beal_backend.wiring import Runtime

    return BealModel(Runtime.build(Settings.from_env()))


# ---------------------------------------------------------------- simulate


def _add_simulate(sub) -> None:
    from beal_backend.acquisition import STRATEGIES

    p = sub.add_parser(
        "simulate",
        help="offline active-learning simulation on a labeled dataset",
        description="Run the paper's protocol (initial random labels, rounds of acquisition, retraining from scratch) "
        "for several strategies; write results.csv, summary.json, summary.md and curves.png into --out. "
        "Rerunning with the same --out resumes where it stopped.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", required=True, help="folder with train.jsonl (the pool), test.jsonl and labels.txt")
    p.add_argument("--out", required=True, help="output folder (resumed when it holds a run with the same settings)")
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated: " + ", ".join(STRATEGIES))
    p.add_argument("--initial", type=int, default=500, help="random texts labeled before the first round")
    p.add_argument("--batch", type=int, default=500, help="texts acquired per round")
    p.add_argument("--rounds", type=int, default=19)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--mc-passes", type=int, default=100, help="T, MC-dropout passes per text")
    p.add_argument("--pool-size", type=int, help="random subset of train.jsonl used as the pool")
    p.add_argument("--test-size", type=int, help="random subset of test.jsonl")
    p.add_argument("--learner", "--mode", dest="learner", choices=("frozen", "finetune"), default="frozen",
                   help="the service's learners (LEARNER): frozen = cached encoder features, head-only training (CPU); "
                        "finetune = the paper's full fine-tuning. --mode is the old name")
    p.add_argument("--pooling", choices=("cls", "mean", "auto"), default="cls",
                   help="sentence feature (POOLING): cls = the paper's C (the published runs), mean, auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    p.add_argument("--encoder", default="minilm", help="Hugging Face BERT-style checkpoint; minilm = the packaged MiniLM")
    p.add_argument("--max-wordpieces", type=int, default=510)
    p.add_argument("--cache-dir", default="~/.cache/beal-backend/features", help="frozen mode: feature cache")
    p.add_argument("--scope", default="full", help="finetune mode: MC-dropout scope (full, last-<k>, head)")
    p.add_argument("--hidden-size", type=int, help="classifier hidden layer (default 256)")
    p.add_argument("--dropout", type=float, help="dropout rate (default 0.1)")
    p.add_argument("--epochs", type=int, help="epochs per training (default: frozen 15, finetune at most 8)")
    p.add_argument("--min-steps", type=int, help="frozen mode: train at least this many minibatch steps (default 1000)")
    p.add_argument("--val-fraction", type=float,
                   help="labeled share held out for early stopping (default: frozen 0 = off, finetune 0.1)")
    p.add_argument("--patience", type=int, help="early-stopping patience in epochs (default: frozen 3, finetune 2)")
    p.add_argument("--train-batch-size", type=int, help="training minibatch (default: frozen 64, finetune 16)")
    p.add_argument("--lr", type=float, help="head learning rate (default: frozen 2e-3, finetune 1e-3)")
    p.add_argument("--lr-encoder", type=float, help="finetune mode: encoder learning rate (default 5e-5)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes running curves in parallel, one torch thread each (frozen mode on CPU: the core count)")
    p.add_argument("--threads", type=int, help="torch CPU threads of the main process (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    import torch

    from beal_backend.engine.features import HeadConfig
    from beal_backend.engine.training import TrainConfig
    from beal_backend.simulation.config import SimulationConfig
    from beal_backend.simulation.report import summary_markdown
    from beal_backend.simulation.runner import simulate

    if args.threads:
        torch.set_num_threads(args.threads)
    shared = {
        "hidden_size": args.hidden_size,
        "dropout": args.dropout,
        "epochs": args.epochs,
        "val_fraction": args.val_fraction,
        "patience": args.patience,
        "batch_size": args.train_batch_size,
    }
    head = {**shared, "lr": args.lr, "min_steps": args.min_steps}
    train = {**shared, "lr_head": args.lr, "lr_encoder": args.lr_encoder}
    cfg = SimulationConfig(
        data=args.data,
        out=args.out,
        strategies=tuple(s.strip() for s in args.strategies.split(",") if s.strip()),
        initial=args.initial,
        batch=args.batch,
        rounds=args.rounds,
        repeats=args.repeats,
        mc_passes=args.mc_passes,
        pool_size=args.pool_size,
        test_size=args.test_size,
        mode=args.learner,
        pooling=args.pooling,
        seed=args.seed,
        encoder=args.encoder,
        device=args.device,
        max_wordpieces=args.max_wordpieces,
        cache_dir=args.cache_dir,
        scope=args.scope,
        head=replace(HeadConfig(), **{k: v for k, v in head.items() if v is not None}),
        train=replace(TrainConfig(), **{k: v for k, v in train.items() if v is not None}),
        workers=args.workers,
        progress=not args.no_progress,
    )
    try:
        summary = simulate(cfg)
    except ValueError as e:  # bad settings or a clash with an earlier run in --out: say so, no traceback
        print(f"beal simulate: {e}", file=sys.stderr)
        return 2
    print(summary_markdown(summary))
    return 0
