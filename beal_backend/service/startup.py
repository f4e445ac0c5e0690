"""What the service logs when it starts: one line saying what is on, and a WARNING for each risk its settings
leave open (the defaults are what a team starts with, so they must say what they do not protect)."""

from __future__ import annotations

import logging

from beal_backend import __version__
from beal_backend.wiring import Runtime

log = logging.getLogger("beal_backend")


def summary(rt: Runtime) -> tuple[str, list[str]]:
    """(the line, the warnings) for the runtime ``rt``."""
    s = rt.settings
    if s.label_studio_url:
        where = f"Label Studio {s.label_studio_url} (LABEL_STUDIO_URL)"
    elif s.label_studio_hosts:
        where = "Label Studio per project from /setup, only " + ", ".join(s.label_studio_hosts)
    else:
        where = "Label Studio per project from /setup (any host, trusted on first use)"
    line = (
        f"beal-backend {__version__}: basic auth {'on' if s.basic_auth_user else 'off'}; {where}; "
        f"jobs {'on Redis (beal worker)' if s.redis_url else 'embedded'}; "
        f"learner {rt.learner} on {rt.train.device}; strategy {s.strategy}"
    )
    warnings = []
    if not s.basic_auth_user:
        warnings.append(
            "basic auth is off: anyone who reaches this port can read /jobs and /status, trigger training and roll "
            "back versions; set BASIC_AUTH_USER and BASIC_AUTH_PASS"
        )
    if not s.label_studio_url and not s.label_studio_hosts:
        warnings.append(
            "LABEL_STUDIO_HOSTS is unset: the first /setup of a project may name any host, which the service then "
            "calls; set LABEL_STUDIO_HOSTS (or LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY)"
        )
    return line, warnings


def log_summary(rt: Runtime, risks: bool = True) -> None:
    """``risks``: also the warnings (the API's; a worker's line says which learner and device it trains with)."""
    line, warnings = summary(rt)
    log.info(line)
    for w in warnings if risks else []:
        log.warning(w)
