"""``beal`` command line: one subcommand per use; each has an ``_add_<name>`` parser builder and a ``_<name>``
runner returning the exit status. Add a subcommand by writing both and registering the builder (``simulate``
lives in ``simulate.py``)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence

from beal_backend import __version__
from beal_backend.cli.simulate import add_simulate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="beal", description="Label Studio ML backend with BEAL active learning.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_serve, _add_worker, _add_versions, _add_rollback, _add_relink, add_simulate):
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
    p = sub.add_parser(
        "serve", help='run the HTTP service on Flask\'s development server (production: gunicorn "_wsgi:make_app()")'
    )
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=None, help="default: PORT or 9090")
    p.add_argument("--log-level", default=None, help="default: LOG_LEVEL or INFO")
    p.add_argument("--model-dir", default=None, help="default: MODEL_DIR or ./model_store")
    p.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    import logging

    from beal_backend.config import Settings, SettingsError
    from beal_backend.service.app import make_app

    options = {"LOG_LEVEL": args.log_level, "MODEL_DIR": args.model_dir}  # checked as the variables are
    try:
        settings = Settings.from_env(overrides={k: v for k, v in options.items() if v})
    except SettingsError as e:
        print(f"beal: {e}", file=sys.stderr)
        return 2
    logging.getLogger().setLevel(settings.log_level)
    make_app(settings).run(host=args.host, port=args.port or settings.port, threaded=True)
    return 0


def _add_worker(sub) -> None:
    p = sub.add_parser(
        "worker", help="run an RQ training worker (needs REDIS_URL); several, on several hosts, may share one queue"
    )
    p.add_argument("--name", default=None, help="worker name, unique across hosts (default: rq's)")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.add_argument(
        "--health", action="store_true", help="exit 0 if a worker of this host is registered in Redis, else 1"
    )
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
    from beal_backend.service import startup
    from beal_backend.wiring import Runtime
    from beal_backend.worker.queues import embedding_queue_name, worker_alive

    if args.health:  # the worker container's health check: this host's worker, not only Redis, is alive
        import socket

        host = socket.gethostname()
        if worker_alive(conn, host):
            return 0
        print(f"beal worker: no worker of host {host} is registered in Redis", file=sys.stderr)
        return 1

    startup.log_summary(Runtime.build(settings), risks=False)  # this process's learner and device; the API warns
    queues = [
        Queue(name, connection=conn, serializer=JSONSerializer)  # listed first = served first
        for name in (settings.queue_name, embedding_queue_name(settings.queue_name))
    ]
    # the default Worker forks a work horse per job: CUDA starts in the child, and a crash kills only the job;
    # with_scheduler: rq's scheduler (one per Redis, whichever worker holds its lock) enqueues the idle checks
    worker = Worker(queues, connection=conn, serializer=JSONSerializer, name=args.name)
    worker.work(burst=args.burst, with_scheduler=True)
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
    result = _model().rollback(args.project, args.version)
    print(json.dumps(result, indent=1))
    if result.get("warning"):  # stdout stays one JSON document; the operator still sees it
        print(f"beal rollback: warning: {result['warning']}", file=sys.stderr)
    return 0


def _add_relink(sub) -> None:
    p = sub.add_parser(
        "relink",
        help="forget the Label Studio a project was set up from (its hostname and token), so that the next /setup "
        "may name another one: for a Label Studio that really moved",
    )
    p.add_argument("project")
    p.add_argument("url", nargs="?", help="trust only this Label Studio URL for the next /setup (default: any)")
    p.set_defaults(run=_relink)


def _relink(args: argparse.Namespace) -> int:
    from beal_backend.config import URL, Settings, host_key
    from beal_backend.service.host_trust import LINK
    from beal_backend.service.model import project_id
    from beal_backend.store.versions import ModelStore

    if args.url is not None and not re.fullmatch(URL, args.url):
        raise ValueError(f"{args.url!r} is not an http:// or https:// URL")
    store, pid = ModelStore(Settings.from_env().model_dir), project_id(args.project)
    info = store.read_project(pid)
    if info is None:
        raise LookupError(f"project {pid} was never set up here; nothing to relink")
    info = {k: v for k, v in info.items() if k not in LINK} | ({"hostname": host_key(args.url)} if args.url else {})
    store.write_project(pid, info)
    print(f"project {pid}: the next /setup from {host_key(args.url) if args.url else 'any host'} sets its Label Studio")
    return 0


def _model():
    from beal_backend.config import Settings
    from beal_backend.service.model import BealModel
    from beal_backend.wiring import Runtime

    return BealModel(Runtime.build(Settings.from_env()))
