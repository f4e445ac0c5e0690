"""The HTML status page (``GET /status``): one self-contained document, no build step, no external assets.

Per project: the current version, the running/pending job with a progress bar, a learning curve (held-out
micro/macro F1 against the number of annotations, rejected candidates hollow), label frequency, the
distribution of the normalised expected confidence EC/H_J over the unlabeled pool, the versions table, a
learning-to-stop hint and the recent job log.  The page reloads itself with ``<meta http-equiv="refresh">``.

The markup is ``templates/status.html`` (Jinja2, autoescaping on: project data is user content), its styles
``static/status.css``, inlined into the page and allowed by the hash in :data:`CONTENT_SECURITY_POLICY`.
Python prepares plain values (:mod:`.status.view`) and the charts' inline SVG (:mod:`.status.charts`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from beal_backend.service.status import values, view
from beal_backend.service.status.view import stop_hint

__all__ = ["CONTENT_SECURITY_POLICY", "render", "stop_hint"]

log = logging.getLogger(__name__)

CSS = resources.files("beal_backend.service").joinpath("static", "status.css").read_text("utf-8")
if "</" in CSS:  # it is inlined unescaped into <style>: it must not be able to close the element
    raise RuntimeError("static/status.css must not contain '</'")
_CSS_HASH = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode("ascii")
# no scripts, no requests, no framing; the one <style> element is ours (its hash); style attributes stay
# allowed for the progress bar's width and the presentation styles matplotlib writes into its SVG
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src '{_CSS_HASH}'; style-src-elem '{_CSS_HASH}'; "
    "style-src-attr 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_ENV = Environment(
    loader=PackageLoader("beal_backend.service", "templates"),
    autoescape=True,
    undefined=StrictUndefined,  # a field the view does not provide is a bug, not an empty string
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(projects: list[dict], refresh_seconds: int = 10, now: float | None = None) -> str:
    """Full HTML document (str), self-contained: inline CSS, charts as inline SVG, no scripts, no external URLs.

    Reloads itself every ``refresh_seconds``.  A project whose data cannot be prepared becomes an error card
    instead of failing the page.
    """
    now = values.num(now)
    now = time.time() if now is None else now
    try:
        refresh = max(1, int(refresh_seconds))
    except (TypeError, ValueError):
        refresh = 10
    cards = [_card(p, now) for p in (projects if isinstance(projects, (list, tuple)) else []) if isinstance(p, dict)]
    return _ENV.get_template("status.html").render(
        css=Markup(CSS),
        refresh=refresh,
        generated=values.clock(now),
        cards=cards,
    )


def _card(p: dict, now: float) -> dict:
    try:
        return view.project(p, now)
    except Exception as exc:  # never let one project's odd data break the whole page
        log.exception("status page: could not render project %r", p.get("project"))
        return view.broken(p, exc)
