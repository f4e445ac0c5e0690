"""Command line: ``beal <command>`` (also ``python -m beal_backend <command>``)."""

from __future__ import annotations

import argparse
import logging
import os


def cmd_serve(args) -> None:
    from .api import create_app
    from .config import Settings
    from .runtime import Runtime

    create_app(Runtime.build(Settings.from_env(), start_queue=True)).run(host=args.host, port=args.port, threaded=True)


def cmd_worker(args) -> None:
    """An RQ worker for training jobs (needs REDIS_URL). Several, on several hosts, may share one queue."""
    from redis import Redis
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    from .config import Settings

    settings = Settings.from_env()
    if not settings.redis_url:
        raise SystemExit("beal worker needs REDIS_URL (without it the API trains in-process)")
    conn = Redis.from_url(settings.redis_url)
    queue = Queue(settings.queue_name, connection=conn, serializer=JSONSerializer)
    Worker([queue], connection=conn, serializer=JSONSerializer, name=args.name).work(with_scheduler=False, burst=args.burst)


def main(argv=None) -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="beal", description="BEAL active-learning backend for Label Studio")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the HTTP service (development server; use gunicorn in production)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9090)))
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run an RQ training worker (REDIS_URL)")
    p.add_argument("--name", default=None, help="worker name (unique per host)")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.set_defaults(func=cmd_worker)

    args = parser.parse_args(argv)
    args.func(args)
