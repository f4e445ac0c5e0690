"""``beal`` command line: ``main`` (the service's commands) and ``simulate`` (``beal simulate``)."""

from beal_backend.cli.main import main

__all__ = ["main"]
