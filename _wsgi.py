"""The WSGI entry point of the HTTP service (``beal serve`` runs the same app on Flask's development server).

    gunicorn --bind 0.0.0.0:9090 --workers 1 --threads 8 "_wsgi:make_app()"

Embedded mode (no REDIS_URL) trains in a thread of this process: run ONE gunicorn worker (threads are
fine). With REDIS_URL, training runs in ``beal worker`` processes and the API may use several workers.
"""

from beal_backend.service.app import make_app

__all__ = ["make_app"]
