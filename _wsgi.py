"""The WSGI entry point of the HTTP service, and (as in every label-studio-ml-backend example) a script:

    gunicorn --bind 0.0.0.0:9090 --workers 1 --threads 8 "_wsgi:make_app()"
    python _wsgi.py --port 9090 [--host 0.0.0.0] [--log-level DEBUG] [--model-dir ./model_store]

The script runs ``beal serve`` (Flask's development server). Embedded mode (no REDIS_URL) trains in a thread
of this process: run ONE gunicorn worker (threads are fine). With REDIS_URL, training runs in ``beal worker``
processes and the API may use several workers.
"""

from beal_backend.service.app import make_app

__all__ = ["make_app"]

if __name__ == "__main__":
    import sys

    from beal_backend.cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
