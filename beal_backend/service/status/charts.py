"""The status page's charts: matplotlib figures rendered to inline SVG (learning curve, label frequency, EC).

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: nothing is
registered in pyplot's global figure manager (so nothing leaks), no GUI/Agg backend is selected, and
``savefig(format="svg")`` uses the SVG canvas.  ``rcParams`` are only touched inside ``rc_context`` under a
module lock, so concurrent requests do not see each other's settings.

Chart text is user content (label names): it is drawn with math parsing off and XML-escaped by matplotlib's
SVG writer; before an SVG is marked safe for the page it is parsed and refused if it holds anything active
(scripts, foreign objects, event handlers, links out of the document).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import math
import re
import threading
import xml.etree.ElementTree as ET
from collections import OrderedDict

from markupsafe import Markup, escape

log = logging.getLogger(__name__)

MICRO_COLOR, MACRO_COLOR = "#2563eb", "#d97706"
LABEL_COLOR, EC_COLOR = "#0f9d76", "#6d5bd0"
CHART_SIZE = (4.5, 2.6)  # inches
EC_BINS = 20
EC_MIN_SPAN = 0.02  # the narrowest EC axis: equal (or nearly equal) scores still get a readable axis

_MPL_LOCK = threading.Lock()
_SVG_CACHE: OrderedDict[str, str] = OrderedDict()
_SVG_CACHE_SIZE = 96
_IDS = itertools.count(1)
_ACTIVE_TAGS = {"script", "foreignobject", "iframe", "object", "embed", "animate", "set", "image", "a"}
_SVG_RC = {
    "svg.fonttype": "none",  # text stays <text>: small, crisp, selectable
    "text.parse_math": False,  # a label "$x$" is a label, not mathtext
    "text.usetex": False,
    "font.size": 9.5,
    "font.family": "DejaVu Sans",  # ships with matplotlib; browsers fall back to their sans-serif
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def chart(build, label: str, *args) -> Markup | None:
    """``build(*args)`` -> Figure as an inline ``<svg>`` (safe to embed), or None if it could not be drawn.

    Drawing costs ~0.1-0.2 s a chart and the page reloads every few seconds, so SVGs are memoised on their
    inputs (a learning curve or histogram only changes when a job finishes).  The ids inside are prefixed
    afresh at every use, so the same cached chart twice on one page still has unique ids.
    """
    import matplotlib

    key = hashlib.sha256(repr((build.__name__, label, args)).encode()).hexdigest()
    with _MPL_LOCK:
        svg = _SVG_CACHE.get(key)
        if svg is not None:
            _SVG_CACHE.move_to_end(key)
        else:
            fig = None
            try:
                with matplotlib.rc_context(_SVG_RC):  # type: ignore[arg-type]  # plain rc keys
                    fig = build(*args)
                    svg = _clean_svg(fig, label)
            except Exception:  # a broken chart must not take the page down
                log.exception("status page: could not draw %s", label)
                return None
            finally:
                if fig is not None:
                    fig.clear()
            _SVG_CACHE[key] = svg
            while len(_SVG_CACHE) > _SVG_CACHE_SIZE:
                _SVG_CACHE.popitem(last=False)
    return Markup(_prefix_ids(svg, f"c{next(_IDS)}-"))


def _clean_svg(fig, label: str) -> str:
    """An inlinable <svg> element: no XML prolog, comments, metadata, namespace URLs or global <style>."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue().decode("utf-8")
    _check_inert(svg)
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.DOTALL)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)
    svg = re.sub(r'<style type="text/css">.*?</style>', "", svg, flags=re.DOTALL)  # its rule is in status.css

    def head(m: re.Match) -> str:
        attrs = re.sub(r'\s(?:xmlns(?::\w+)?|width|height|version)="[^"]*"', "", m.group(1))
        return f'<svg{attrs} class="chart" role="img" aria-label="{escape(label)}">'

    return re.sub(r"<svg([^>]*)>", head, svg, count=1).strip()


def _check_inert(svg: str) -> None:
    """Raise unless the SVG is inert: only drawing elements, no handlers, no links out of the document."""
    for el in ET.fromstring(svg).iter():
        if el.tag.rsplit("}", 1)[-1].lower() in _ACTIVE_TAGS:
            raise ValueError(f"active element in a chart: {el.tag}")
        for name, value in el.attrib.items():
            local = name.rsplit("}", 1)[-1].lower()
            if local.startswith("on") or (local == "href" and not value.startswith("#")):
                raise ValueError(f"active attribute in a chart: {name}={value!r}")


def _prefix_ids(svg: str, prefix: str) -> str:
    """Prefix every id and reference to one, inside tags only (text content is left as drawn)."""

    def tag(m: re.Match) -> str:
        t = re.sub(r'\bid="', f'id="{prefix}', m.group(0))
        return t.replace("url(#", f"url(#{prefix}").replace('href="#', f'href="#{prefix}')

    return re.sub(r"<[^>]*>", tag, svg)  # matplotlib escapes "<" and ">" inside text and attribute values


def _figure(height: float | None = None):
    from matplotlib.figure import Figure

    return Figure(figsize=(CHART_SIZE[0], height or CHART_SIZE[1]), layout="constrained")


def learning_curve(points: dict):
    """``points``: {"micro"|"macro": {"accepted"|"rejected"|"current": [(n, f1), ...]}} -> Figure."""
    from matplotlib.lines import Line2D

    fig = _figure()
    ax = fig.add_subplot()
    ys, handles, any_rejected, any_current = [], [], False, False
    for key, color, marker, name in (("micro", MICRO_COLOR, "o", "micro-F1"), ("macro", MACRO_COLOR, "s", "macro-F1")):
        acc, rej, cur = (points[key][k] for k in ("accepted", "rejected", "current"))
        handles.append(Line2D([], [], color=color, marker=marker, ms=4, lw=1.5, label=name))
        if acc:
            ax.plot([x for x, _ in acc], [y for _, y in acc], marker=marker, color=color, ms=4, lw=1.5)
        if rej:
            any_rejected = True
            ax.scatter(
                [x for x, _ in rej],
                [y for _, y in rej],
                marker=marker,
                s=24,
                facecolors="none",
                edgecolors=color,
                linewidths=1.2,
                zorder=3,
            )
        if cur:
            any_current = True
            ax.scatter(
                [x for x, _ in cur],
                [y for _, y in cur],
                marker="o",
                s=95,
                facecolors="none",
                edgecolors="#111827",
                linewidths=1.0,
                zorder=4,
            )
        ys += [y for _, y in acc + rej]
    if any_rejected:
        handles.append(Line2D([], [], ls="none", marker="o", ms=5, mfc="none", mec="#6b7280", label="rejected"))
    if any_current:
        handles.append(Line2D([], [], ls="none", marker="o", ms=8, mfc="none", mec="#111827", label="current"))
    lo = max(0.0, math.floor((min(ys) - 0.05) * 10) / 10) if ys else 0.0
    ax.set_ylim(lo, 1.0)
    ax.set_xlabel("annotations")
    ax.set_ylabel("held-out F1")
    ax.grid(True, alpha=0.3, lw=0.6)
    fig.legend(
        handles=handles,
        loc="outside upper center",
        ncols=len(handles),
        frameon=False,
        handlelength=1.6,
        columnspacing=1.0,
        handletextpad=0.4,
    )
    return fig


def label_bars(counts: tuple, rest: int):
    """``counts``: ((label, count), ...) largest first; ``rest``: how many labels are not shown."""
    n = len(counts)
    fig = _figure(min(4.2, max(CHART_SIZE[1], 0.7 + 0.26 * n)))
    ax = fig.add_subplot()
    names = [k if len(k) <= 28 else k[:27] + "…" for k, _ in counts][::-1]
    values = [v for _, v in counts][::-1]
    bars = ax.barh(range(n), values, color=LABEL_COLOR, height=0.65)
    ax.set_yticks(range(n), labels=names)
    ax.bar_label(bars, labels=[f"{v:g}" for v in values], padding=2, fontsize=8)
    ax.set_xlim(0, max(values) * 1.15 if max(values) > 0 else 1)
    ax.set_xlabel("annotations with the label" + (f"  (+{rest} more labels not shown)" if rest else ""))
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x", alpha=0.3, lw=0.6)
    return fig


def ec_edges(scores, bins: int = EC_BINS):
    """Histogram bin edges over the range of the scores (EC/H_J lies in [0, 1]).

    A pool whose scores sit within 0.40-0.44 would fall into one or two bins of a fixed 0-1 axis; spanning
    [min, max] shows its shape.  When the scores are (nearly) all equal the axis is widened to
    ``EC_MIN_SPAN`` around them, kept inside [0, 1].
    """
    import numpy as np

    lo, hi = float(min(scores)), float(max(scores))
    if hi - lo < EC_MIN_SPAN:
        mid = (lo + hi) / 2
        lo = min(max(0.0, mid - EC_MIN_SPAN / 2), 1.0 - EC_MIN_SPAN)
        hi = lo + EC_MIN_SPAN
    return np.linspace(lo, hi, bins + 1)


def ec_histogram(scores: tuple):
    import numpy as np

    fig = _figure()
    ax = fig.add_subplot()
    edges = ec_edges(scores)
    ax.hist(scores, bins=edges, color=EC_COLOR, alpha=0.85, edgecolor="white", lw=0.5)
    mean = float(np.mean(scores))
    ax.axvline(mean, color="#111827", lw=1, ls="--", label=f"mean {mean:.3f}")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("EC / H_J   (lower = less confident = labeled first)")
    ax.set_ylabel("unlabeled tasks")
    ax.grid(True, axis="y", alpha=0.3, lw=0.6)
    ax.legend(loc="upper left", frameon=False)
    return fig
