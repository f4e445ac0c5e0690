"""Entry points of the HTTP service.

    gunicorn --bind 0.0.0.0:9090 --workers 1 --threads 8 "_wsgi:make_app()"   # production API
    python _wsgi.py --port 9090                                              # development server

Embedded mode (no REDIS_URL) trains in a thread of this process: run ONE gunicorn worker (threads are
fine). With REDIS_URL, training runs in ``rq worker`` processes and the API may use several workers.
"""

import argparse

from beal_backend.api import create_app
from beal_backend.config import Settings, configure_logging
from beal_backend.queues import build_runtime


def make_app(settings: Settings | None = None):
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(build_runtime(settings))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="beal-backend development server")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=None, help="default: PORT or 9090")
    args = parser.parse_args()
    settings = Settings.from_env()
    make_app(settings).run(host=args.host, port=args.port or settings.port, threaded=True)
