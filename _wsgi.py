"""Entry points of the HTTP service.

    gunicorn --bind 0.0.0.0:9090 --workers 1 --threads 8 "_wsgi:make_app()"   # production API
    python _wsgi.py --port 9090                                              # development server

Embedded mode (no REDIS_URL) trains in a thread of this process: run ONE gunicorn worker (threads are
fine). With REDIS_URL, training runs in ``rq worker`` processes and the API may use several workers.
"""

import argparse
import logging
import os

from beal_backend.api import create_app
from beal_backend.config import Settings
from beal_backend.runtime import Runtime


def make_app():
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return create_app(Runtime.build(Settings.from_env(), start_queue=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="beal-backend development server")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9090)))
    args = parser.parse_args()
    make_app().run(host=args.host, port=args.port, threaded=True)
