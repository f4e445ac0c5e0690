"""Entry points of the HTTP service.

    gunicorn --bind 0.0.0.0:9090 --workers 1 --threads 8 "_wsgi:make_app()"   # production API
    python _wsgi.py --port 9090                                              # development server

Embedded mode (no REDIS_URL) trains in a thread of this process: run ONE gunicorn worker (threads are
fine). With REDIS_URL, training runs in ``rq worker`` processes and the API may use several workers.
"""

import argparse
import sys

from beal_backend.config import Settings, SettingsError, configure_logging
from beal_backend.service.app import create_app
from beal_backend.wiring import build_runtime


def make_app(settings: Settings | None = None):
    settings = settings or _settings()
    configure_logging(settings.log_level)
    return create_app(build_runtime(settings))


def _settings() -> Settings:
    """The environment's settings; a bad one stops the server with one line naming it. Under gunicorn an
    AppImportError prints just its message and halts the master instead of re-spawning workers."""
    try:
        return Settings.from_env()
    except SettingsError as e:
        if "gunicorn" in sys.modules:
            from gunicorn.errors import AppImportError

            raise AppImportError(f"beal-backend: {e}") from None
        sys.exit(f"beal-backend: {e}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="beal-backend development server")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=None, help="default: PORT or 9090")
    args = parser.parse_args()
    settings = _settings()
    make_app(settings).run(host=args.host, port=args.port or settings.port, threaded=True)
