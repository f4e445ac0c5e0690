"""The HTML status page (``GET /status``): one self-contained document, no build step, no external assets.

Per project: the current version, the running/pending job with a progress bar, a learning curve (held-out
micro/macro F1 against the number of annotations, rejected candidates hollow), label frequency, the
distribution of the normalised expected confidence EC/H_J over the unlabeled pool, the versions table, a
learning-to-stop hint and the recent job log.  Charts are matplotlib figures rendered to SVG and inlined;
styles are inline; the page reloads itself with ``<meta http-equiv="refresh">``.

Project data is user content (titles, label names, error messages): every value goes through
:func:`html.escape`; chart text is drawn with math parsing off and is XML-escaped by matplotlib's SVG writer.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: nothing is
registered in pyplot's global figure manager (so nothing leaks), no GUI/Agg backend is selected, and
``savefig(format="svg")`` uses the SVG canvas.  ``rcParams`` are only touched inside ``rc_context`` under a
module lock, so concurrent requests do not see each other's settings.
"""

from __future__ import annotations

import hashlib
import html
import io
import itertools
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone

log = logging.getLogger(__name__)

# versions that were accepted by the quality gate (serve or served); "rejected" candidates never served
ACCEPTED = ("current", "promoted", "superseded")

MICRO_COLOR, MACRO_COLOR = "#2563eb", "#d97706"
LABEL_COLOR, EC_COLOR = "#0f9d76", "#6d5bd0"
CHART_SIZE = (4.5, 2.6)  # inches
MAX_LABELS = 12  # label bars shown; the rest are summarised
MAX_VERSION_ROWS = 10
MAX_LOG_ROWS = 12

_MPL_LOCK = threading.Lock()
_SVG_CACHE: OrderedDict[str, str] = OrderedDict()
_SVG_CACHE_SIZE = 96
_IDS = itertools.count(1)
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


# ---------------------------------------------------------------------------------------------- helpers


def _esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value) -> float | None:
    """A finite float, or None for None/bool/NaN/inf/garbage."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _fmt(value, digits: int = 3) -> str:
    x = _num(value)
    return "—" if x is None else f"{x:.{digits}f}"


def _delta(x: float) -> str:
    return f"{x:+.2f}" if abs(x) >= 0.01 else f"{x:+.3f}"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def _clock(ts) -> str:
    x = _num(ts)
    if x is None:
        return "—"
    try:
        return datetime.fromtimestamp(x, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "—"


def _ago(ts, now: float) -> str:
    x = _num(ts)
    if x is None:
        return ""
    d = now - x
    if d < 0:
        return "just now" if d > -5 else "in the future"
    if d < 60:
        return f"{d:.0f} s ago"
    if d < 3600:
        return f"{d / 60:.0f} min ago"
    if d < 86400:
        return f"{d / 3600:.1f} h ago"
    return f"{d / 86400:.1f} d ago"


def _iso(value) -> str:
    """An ISO timestamp shortened for a table cell ("2026-05-01 12:03:04")."""
    if value is None:
        return "—"
    text = str(value)
    m = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2})?)", text)
    return f"{m.group(1)} {m.group(2)}" if m else text[:32]


def _short(text, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------- stop hint


def stop_hint(versions: list[dict], window: int = 3, f1_tol: float = 0.01, ec_tol: float = 0.02) -> dict:
    """{"stopped": bool, "reason": str}: has labeling stopped paying off?

    Looks at the accepted versions (current/promoted, and superseded ones, which were once promoted) that have
    a held-out micro-F1, in the given (oldest-first) order.  Stopped when there are at least ``window + 1`` of
    them and, between the version ``window`` steps back and the newest one, the held-out micro-F1 gained less
    than ``f1_tol`` (a drop counts as no gain) AND the pool's mean EC changed by less than ``ec_tol`` relative
    to its earlier value.  If the mean EC was not recorded on either end, the flat-EC half cannot be shown and
    the answer is not stopped.
    """
    try:
        window = max(1, int(window))
    except (TypeError, ValueError):
        window = 3
    pts = [
        v for v in _list(versions)
        if isinstance(v, dict) and v.get("status") in ACCEPTED and _num(v.get("val_micro_f1")) is not None
    ]
    if len(pts) < window + 1:
        return {
            "stopped": False,
            "reason": f"not enough versions yet: {len(pts)} accepted with held-out metrics, "
                      f"{window + 1} needed to judge the last {window}",
        }
    base, last = pts[-window - 1], pts[-1]
    gain = _num(last["val_micro_f1"]) - _num(base["val_micro_f1"])
    span = f"over the last {window} versions"
    n0, n1 = _num(base.get("n_annotations")), _num(last.get("n_annotations"))
    if n0 is not None and n1 is not None:
        span += f", {n0:.0f} → {n1:.0f} annotations"
    if gain >= f1_tol:
        return {"stopped": False, "reason": f"micro-F1 still rising ({_delta(gain)} {span})"}
    ec0, ec1 = _num(base.get("mean_ec")), _num(last.get("mean_ec"))
    if ec0 is None or ec1 is None:
        return {
            "stopped": False,
            "reason": f"micro-F1 flat ({_delta(gain)} {span}) but the pool's mean EC was not recorded, "
                      "so it is unknown whether the pool is still changing",
        }
    rel = 0.0 if ec0 == ec1 else abs(ec1 - ec0) / max(abs(ec0), 1e-12)
    if rel >= ec_tol:
        return {
            "stopped": False,
            "reason": f"micro-F1 flat ({_delta(gain)} {span}) but the pool's mean EC is still moving "
                      f"({(ec1 - ec0) / max(abs(ec0), 1e-12):+.1%}: {ec0:.3f} → {ec1:.3f})",
        }
    return {
        "stopped": True,
        "reason": f"held-out micro-F1 {_delta(gain)} and the pool's mean EC {rel:.1%} ({ec0:.3f} → {ec1:.3f}) "
                  f"{span}; more labels of the same kind are unlikely to help",
    }


# ---------------------------------------------------------------------------------------------- charts


def _svg(fig, label: str, prefix: str) -> str:
    """Serialise a figure to an inlinable <svg> element: no XML prolog, comments, metadata, namespace URLs or
    global <style>; every id (and each reference to it) prefixed so that several charts share one document."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue().decode("utf-8")
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'<style type="text/css">.*?</style>', "", svg, flags=re.S)  # its rule is in CSS, scoped
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', svg)
    svg = svg.replace("url(#", f"url(#{prefix}").replace('href="#', f'href="#{prefix}')

    def head(m: re.Match) -> str:
        attrs = re.sub(r'\s(?:xmlns(?::\w+)?|width|height|version)="[^"]*"', "", m.group(1))
        return f'<svg{attrs} class="chart" role="img" aria-label="{_esc(label)}">'

    return re.sub(r"<svg([^>]*)>", head, svg, count=1).strip()


def _figure(height: float | None = None):
    from matplotlib.figure import Figure

    return Figure(figsize=(CHART_SIZE[0], height or CHART_SIZE[1]), layout="constrained")


def _chart(build, label: str, *args) -> str:
    """Run ``build(*args)`` -> Figure and return its SVG, or a short note if the chart could not be drawn.

    Drawing costs ~0.1-0.2 s a chart and the page reloads every few seconds, so SVGs are memoised on their
    inputs (a learning curve or histogram only changes when a job finishes).
    """
    import matplotlib

    key = hashlib.sha256(repr((build.__name__, label, args)).encode()).hexdigest()
    with _MPL_LOCK:
        if key in _SVG_CACHE:
            _SVG_CACHE.move_to_end(key)
            return _SVG_CACHE[key]
        fig = None
        try:
            with matplotlib.rc_context(_SVG_RC):
                fig = build(*args)
                svg = _svg(fig, label, f"c{next(_IDS)}-")
        except Exception:  # a broken chart must not take the page down
            log.exception("status page: could not draw %s", label)
            return '<p class="muted">chart unavailable (see the server log)</p>'
        finally:
            if fig is not None:
                fig.clear()
        _SVG_CACHE[key] = svg
        while len(_SVG_CACHE) > _SVG_CACHE_SIZE:
            _SVG_CACHE.popitem(last=False)
        return svg


def _learning_curve_fig(versions: list[dict]):
    from matplotlib.lines import Line2D

    fig = _figure()
    ax = fig.add_subplot()
    ys, handles, any_rejected, any_current = [], [], False, False
    for key, color, marker, name in (
        ("val_micro_f1", MICRO_COLOR, "o", "micro-F1"),
        ("val_macro_f1", MACRO_COLOR, "s", "macro-F1"),
    ):
        acc = [(_num(v.get("n_annotations")), _num(v.get(key))) for v in versions if v.get("status") != "rejected"]
        acc = [(x, y) for x, y in acc if x is not None and y is not None]
        rej = [(_num(v.get("n_annotations")), _num(v.get(key))) for v in versions if v.get("status") == "rejected"]
        rej = [(x, y) for x, y in rej if x is not None and y is not None]
        handles.append(Line2D([], [], color=color, marker=marker, ms=4, lw=1.5, label=name))
        if acc:
            ax.plot([x for x, _ in acc], [y for _, y in acc], marker=marker, color=color, ms=4, lw=1.5)
        if rej:
            any_rejected = True
            ax.scatter([x for x, _ in rej], [y for _, y in rej], marker=marker, s=24, facecolors="none",
                       edgecolors=color, linewidths=1.2, zorder=3)
        ys += [y for _, y in acc + rej]
        cur = [(_num(v.get("n_annotations")), _num(v.get(key))) for v in versions if v.get("status") == "current"]
        cur = [(x, y) for x, y in cur if x is not None and y is not None]
        if cur:
            any_current = True
            ax.scatter([x for x, _ in cur], [y for _, y in cur], marker="o", s=95, facecolors="none",
                       edgecolors="#111827", linewidths=1.0, zorder=4)
    if any_rejected:
        handles.append(Line2D([], [], ls="none", marker="o", ms=5, mfc="none", mec="#6b7280", label="rejected"))
    if any_current:
        handles.append(Line2D([], [], ls="none", marker="o", ms=8, mfc="none", mec="#111827", label="current"))
    lo = max(0.0, math.floor((min(ys) - 0.05) * 10) / 10) if ys else 0.0
    ax.set_ylim(lo, 1.0)
    ax.set_xlabel("annotations")
    ax.set_ylabel("held-out F1")
    ax.grid(True, alpha=0.3, lw=0.6)
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False,
               handlelength=1.6, columnspacing=1.0, handletextpad=0.4)
    return fig


def _labels_fig(counts: list[tuple[str, float]], rest: int):
    n = len(counts)
    fig = _figure(min(4.2, max(CHART_SIZE[1], 0.7 + 0.26 * n)))
    ax = fig.add_subplot()
    names = [_short(k, 28) for k, _ in counts][::-1]
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


def _ec_fig(scores: list[float]):
    import numpy as np

    fig = _figure()
    ax = fig.add_subplot()
    ax.hist(scores, bins=np.linspace(0.0, 1.0, 21), color=EC_COLOR, alpha=0.85, edgecolor="white", lw=0.5)
    mean = float(np.mean(scores))
    ax.axvline(mean, color="#111827", lw=1, ls="--", label=f"mean {mean:.3f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("EC / H_J   (lower = less confident = labeled first)")
    ax.set_ylabel("unlabeled tasks")
    ax.grid(True, axis="y", alpha=0.3, lw=0.6)
    ax.legend(loc="upper left", frameon=False)
    return fig


# ---------------------------------------------------------------------------------------------- sections


def _job_html(p: dict, now: float) -> str:
    job = _dict(p.get("current_job")) or _dict(p.get("last_job"))
    pending = bool(p.get("pending"))
    parts = ['<section class="panel job"><h3>Training job</h3>']
    if not job:
        parts.append('<p class="muted">no training job yet</p>')
        if pending:
            parts.append('<p><span class="badge pending">pending</span> a job is queued</p>')
        parts.append("</section>")
        return "".join(parts)
    state = str(job.get("state") or "unknown")
    klass = {"started": "running", "finished": "ok", "failed": "bad"}.get(state, "neutral")
    label = "running" if state == "started" else state
    progress = _num(job.get("progress"))
    if state == "finished":
        progress = 1.0 if progress is None else progress
    pct = max(0.0, min(1.0, progress or 0.0)) * 100
    parts.append(
        f'<div class="jobline"><span class="badge {klass}">{_esc(label)}</span> '
        f'<code>{_esc(_short(job.get("id"), 40)) or "—"}</code>'
        + (f' <span class="muted">stage:</span> {_esc(job.get("stage"))}' if job.get("stage") else "")
        + (' <span class="badge pending" title="another training run is queued">pending</span>' if pending else "")
        + "</div>"
    )
    parts.append(
        f'<div class="progress {klass}" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{pct:.0f}" data-progress="{pct / 100:.3f}">'
        f'<div class="fill" style="width:{pct:.1f}%"></div><span>{pct:.0f}%</span></div>'
    )
    facts = []
    if job.get("started_at") is not None:
        facts.append(f"started {_esc(_clock(job.get('started_at')))} ({_esc(_ago(job.get('started_at'), now))})")
    if job.get("updated_at") is not None:
        facts.append(f"updated {_esc(_ago(job.get('updated_at'), now))}")
    if job.get("version"):
        facts.append(f"version <code>{_esc(job.get('version'))}</code>")
    if facts:
        parts.append(f'<p class="muted small">{" · ".join(facts)}</p>')
    if job.get("error"):
        parts.append(f'<p class="error">{_esc(_short(job.get("error"), 600))}</p>')
    if job.get("reason"):
        parts.append(f'<p class="reason">{_esc(_short(job.get("reason"), 600))}</p>')
    last = _dict(p.get("last_job"))
    parts.append(_data_html(job if "skipped" in job else last))
    if _dict(p.get("current_job")) and last:
        lstate = str(last.get("state") or "unknown")
        parts.append(
            f'<p class="muted small">previous job <code>{_esc(_short(last.get("id"), 40))}</code>: {_esc(lstate)}'
            + (f" — {_esc(_short(last.get('error'), 200))}" if last.get("error") else "")
            + (f" ({_esc(_ago(last.get('updated_at'), now))})" if last.get("updated_at") is not None else "")
            + "</p>"
        )
    parts.append("</section>")
    return "".join(parts)


def _data_html(job: dict) -> str:
    """What the round made of the annotations: tasks left out of training and notes, by reason."""
    rows = [(why, n, "left out of training") for why, n in _dict(job.get("skipped")).items()]
    rows += [(why, n, "trained on") for why, n in _dict(job.get("notes")).items()]
    rows = [(str(why), int(n), kind) for why, n, kind in rows if _num(n)]
    if not rows:
        return ""
    items = "".join(f'<li data-kind="{_esc(kind)}"><b>{n}</b> {_esc(_short(why, 200))} '
                    f'<span class="muted small">({_esc(kind)})</span></li>' for why, n, kind in rows)
    return f'<div class="annotations"><p class="muted small">annotations in the last round:</p><ul class="skips">{items}</ul></div>'


def _hint_html(versions: list[dict]) -> str:
    hint = stop_hint(versions)
    if hint["stopped"]:
        klass, head = "stop", "Model has stopped improving"
    elif hint["reason"].startswith("not enough versions"):
        klass, head = "wait", "Labeling still pays off (too early to judge)"
    else:
        klass, head = "go", "Labeling still pays off"
    return (
        f'<section class="panel hint {klass}" data-stopped="{str(hint["stopped"]).lower()}">'
        f"<h3>{_esc(head)}</h3><p>{_esc(hint['reason'])}</p>"
        '<p class="muted small">Rule: over the last 3 accepted versions, held-out micro-F1 gain &lt; 0.01 and '
        "relative change of the pool's mean EC &lt; 2%.</p></section>"
    )


def _charts_html(p: dict, versions: list[dict]) -> str:
    cells = []
    has_curve = any(
        _num(v.get("n_annotations")) is not None
        and (_num(v.get("val_micro_f1")) is not None or _num(v.get("val_macro_f1")) is not None)
        for v in versions
    )
    body = (
        _chart(_learning_curve_fig, "learning curve: held-out F1 against annotations", versions)
        if has_curve else '<p class="muted empty-chart">no held-out metrics yet</p>'
    )
    cells.append(f'<figure class="panel"><figcaption>Learning curve (held-out F1)</figcaption>{body}</figure>')

    counts = []
    for k, v in _dict(p.get("label_counts")).items():
        x = _num(v)
        if x is not None and x >= 0:
            counts.append((str(k), x))
    counts.sort(key=lambda kv: (-kv[1], kv[0]))
    shown, rest = counts[:MAX_LABELS], max(0, len(counts) - MAX_LABELS)
    body = (
        _chart(_labels_fig, "label frequency in the annotations", shown, rest)
        if shown else '<p class="muted empty-chart">no label counts yet</p>'
    )
    cells.append(f'<figure class="panel"><figcaption>Label frequency</figcaption>{body}</figure>')

    scores = [min(1.0, max(0.0, x)) for x in (_num(s) for s in _list(p.get("ec_scores"))) if x is not None]
    body = (
        _chart(_ec_fig, "distribution of EC/H_J over the unlabeled tasks", scores)
        if scores else '<p class="muted empty-chart">no scored unlabeled tasks</p>'
    )
    cap = f"EC over the unlabeled pool ({len(scores)} tasks)" if scores else "EC over the unlabeled pool"
    cells.append(f'<figure class="panel"><figcaption>{_esc(cap)}</figcaption>{body}</figure>')
    return f'<div class="grid charts">{"".join(cells)}</div>'


def _versions_html(versions: list[dict], current: str | None) -> str:
    if not versions:
        return '<section class="panel"><h3>Versions</h3><p class="muted">no trained versions yet</p></section>'
    rows = []
    newest = list(reversed(versions))
    for v in newest[:MAX_VERSION_ROWS]:
        status = str(v.get("status") or "unknown")
        is_cur = status == "current" or (current is not None and v.get("version") == current)
        rows.append(
            f'<tr class="{"cur" if is_cur else ""}"><td><code>{_esc(v.get("version")) or "—"}</code></td>'
            f"<td class=\"time\">{_esc(_iso(v.get('created_at')))}</td>"
            f'<td class="num">{_esc(_fmt(v.get("n_annotations"), 0))}</td>'
            f'<td class="num">{_fmt(v.get("val_micro_f1"))}</td><td class="num">{_fmt(v.get("val_macro_f1"))}</td>'
            f'<td class="num">{_fmt(v.get("mean_ec"))}</td>'
            f'<td><span class="badge st-{_esc(status)}">{_esc(status)}</span></td>'
            f'<td class="reason">{_esc(_short(v.get("reason"), 300))}</td></tr>'
        )
    more = len(versions) - MAX_VERSION_ROWS
    foot = f'<p class="muted small">{more} older versions not shown</p>' if more > 0 else ""
    return (
        '<section class="panel"><h3>Versions <span class="muted small">(newest first)</span></h3>'
        '<div class="scroll"><table class="versions"><thead><tr><th>version</th><th>created</th>'
        '<th class="num">annotations</th><th class="num">micro-F1</th><th class="num">macro-F1</th>'
        '<th class="num">mean EC</th><th>status</th><th>reason</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{foot}</section>"
    )


def _log_html(entries: list, now: float) -> str:
    entries = [e for e in entries if isinstance(e, dict)]
    if not entries:
        return '<section class="panel"><h3>Recent job log</h3><p class="muted">no jobs logged yet</p></section>'
    rows = []
    for e in entries[:MAX_LOG_ROWS]:
        state = str(e.get("state") or "")
        rows.append(
            f"<tr><td class=\"time\">{_esc(_clock(e.get('time')))}<br><span class=\"muted small\">{_esc(_ago(e.get('time'), now))}"
            f"</span></td><td><code>{_esc(_short(e.get('id'), 40))}</code></td>"
            f'<td><span class="badge lg-{_esc(state)}">{_esc(state)}</span></td>'
            f'<td class="reason">{_esc(_short(e.get("message"), 400))}</td></tr>'
        )
    return (
        '<section class="panel"><h3>Recent job log</h3><div class="scroll"><table class="log"><thead><tr>'
        "<th>time</th><th>job</th><th>state</th><th>message</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _project_html(p: dict, now: float) -> str:
    pid = p.get("project")
    title = p.get("title")
    versions = [v for v in _list(p.get("versions")) if isinstance(v, dict)]
    current = p.get("current_version")
    head = f"Project {_esc(pid) if pid not in (None, '') else '?'}"
    if title:
        head += f' <span class="title">— {_esc(_short(title, 120))}</span>'
    cur = f"<code>{_esc(current)}</code>" if current else '<span class="muted">no model yet (untrained)</span>'
    badges = ' <span class="badge pending">retrain pending</span>' if p.get("pending") else ""
    return (
        f'<article class="card project" data-project="{_esc(pid)}"><div class="cardhead"><h2>{head}</h2>'
        f'<div class="current">current version: {cur}{badges}</div></div>'
        f'<div class="grid two">{_job_html(p, now)}{_hint_html(versions)}</div>'
        f"{_charts_html(p, versions)}"
        f'<div class="grid one">{_versions_html(versions, current)}{_log_html(_list(p.get("job_log")), now)}</div>'
        "</article>"
    )


EMPTY_STATE = (
    '<article class="card empty"><h2>No projects yet</h2>'
    "<p>This ML backend has not been connected to a Label Studio project (or no project has called it yet).</p>"
    "<ol><li>In Label Studio open your project and go to <b>Settings → Model</b>.</li>"
    "<li>Click <b>Connect model</b>, give it a name, and enter the URL of this service "
    "(the address this page is served from, without <code>/status</code>, e.g. <code>http://localhost:9090</code>)."
    "</li><li>Turn on <i>interactive preannotations</i> if you want predictions while labeling, then "
    "<b>Validate and save</b>.</li>"
    "<li>Annotate a few tasks or press <b>Start training</b>: the project, its jobs and its learning curve "
    "appear here.</li></ol></article>"
)

CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#111827;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans","DejaVu Sans",sans-serif}
header.top{background:#111827;color:#f9fafb;padding:12px 24px;display:flex;flex-wrap:wrap;gap:8px 24px;align-items:baseline;justify-content:space-between}
header.top h1{font-size:19px;margin:0;font-weight:650}
header.top .meta{color:#cbd5e1;font-size:13px}
main{max-width:1400px;margin:0 auto;padding:16px 20px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:14px 18px 16px;margin:0 0 18px;box-shadow:0 1px 2px rgba(0,0,0,.05)}
.cardhead{display:flex;flex-wrap:wrap;gap:4px 20px;align-items:baseline;justify-content:space-between;border-bottom:1px solid #eef0f3;padding-bottom:8px}
.cardhead h2{font-size:18px;margin:0}
.cardhead .title{font-weight:400;color:#374151}
.current{font-size:13px}
.grid{display:grid;gap:12px;margin-top:12px}
.grid.two{grid-template-columns:repeat(auto-fit,minmax(420px,1fr))}
.grid.one{grid-template-columns:minmax(0,1fr)}
.grid.charts{grid-template-columns:repeat(auto-fit,minmax(340px,1fr));align-items:start}
.panel{border:1px solid #eef0f3;border-radius:8px;padding:10px 12px;margin:0;min-width:0}
.panel h3{font-size:14px;margin:0 0 8px}
figure.panel figcaption{font-weight:600;font-size:13px;margin-bottom:4px}
svg.chart *{stroke-linejoin:round;stroke-linecap:butt}
svg.chart{display:block;width:100%;height:auto;max-height:360px}
.empty-chart{padding:40px 0;text-align:center}
code{font:12px/1.3 ui-monospace,"DejaVu Sans Mono",monospace;background:#f3f4f6;padding:1px 4px;border-radius:4px;word-break:break-all}
.muted{color:#6b7280}.small{font-size:12px}
.error{color:#991b1b;background:#fef2f2;border-radius:6px;padding:6px 8px;margin:6px 0 0;white-space:pre-wrap;word-break:break-word}
.badge{display:inline-block;font-size:11px;font-weight:600;padding:1px 8px;border-radius:999px;background:#e5e7eb;color:#374151;text-transform:uppercase;letter-spacing:.03em}
.badge.running,.badge.lg-started{background:#dbeafe;color:#1e40af}
.badge.ok,.badge.lg-finished,.badge.st-current{background:#dcfce7;color:#166534}
.badge.bad,.badge.lg-failed,.badge.st-rejected{background:#fee2e2;color:#991b1b}
.badge.pending{background:#fef3c7;color:#92400e}
.badge.st-promoted{background:#e0e7ff;color:#3730a3}
.jobline{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin-bottom:8px}
.progress{position:relative;height:18px;background:#e5e7eb;border-radius:9px;overflow:hidden}
.progress .fill{height:100%;background:#2563eb;transition:width .3s}
.progress.ok .fill{background:#16a34a}.progress.bad .fill{background:#dc2626}
.progress.running .fill{background-image:linear-gradient(45deg,rgba(255,255,255,.22) 25%,transparent 25%,transparent 50%,rgba(255,255,255,.22) 50%,rgba(255,255,255,.22) 75%,transparent 75%);background-size:18px 18px}
.progress span{position:absolute;inset:0;text-align:center;font-size:12px;line-height:18px;font-weight:600;color:#111827}
.hint{border-left:6px solid #9ca3af}
.hint p{margin:4px 0}
.hint.go{background:#f0fdf4;border-color:#16a34a}.hint.go h3{color:#166534}
.hint.stop{background:#fffbeb;border-color:#d97706}.hint.stop h3{color:#92400e}
.hint.wait{background:#f8fafc;border-color:#94a3b8}.hint.wait h3{color:#334155}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{text-align:left;vertical-align:top;padding:4px 8px;border-bottom:1px solid #f0f1f3}
th{font-weight:600;color:#4b5563;background:#f9fafb}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td code{white-space:nowrap;word-break:normal}
td.time{white-space:nowrap}
td.reason{color:#374151;word-break:break-word;min-width:160px}
tr.cur td{background:#f0fdf4}
.empty ol{line-height:1.8}
footer{color:#6b7280;font-size:12px;text-align:center;padding:4px 0 20px}
"""


def render(projects: list[dict], refresh_seconds: int = 10, now: float | None = None) -> str:
    """Full HTML document (str), self-contained: inline CSS, charts as inline SVG, no scripts, no external URLs.

    Reloads itself every ``refresh_seconds`` via ``<meta http-equiv="refresh">``.  Every value is escaped.
    A project whose data cannot be drawn becomes an error card instead of failing the page.
    """
    now = _num(now)
    now = time.time() if now is None else now
    try:
        refresh = max(1, int(refresh_seconds))
    except (TypeError, ValueError):
        refresh = 10
    cards = []
    for p in _list(projects):
        if not isinstance(p, dict):
            continue
        try:
            cards.append(_project_html(p, now))
        except Exception as exc:  # never let one project's odd data break the whole page
            log.exception("status page: could not render project %r", p.get("project"))
            cards.append(
                f'<article class="card project" data-project="{_esc(p.get("project"))}"><h2>Project '
                f'{_esc(p.get("project"))}</h2><p class="error">could not render this project: '
                f"{_esc(type(exc).__name__)}: {_esc(_short(exc, 300))}</p></article>"
            )
    body = "".join(cards) if cards else EMPTY_STATE
    n = len(cards)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{refresh}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>beal-backend status</title>"
        f"<style>{CSS}</style></head><body>"
        '<header class="top"><h1>beal-backend status</h1>'
        f'<div class="meta">{n} project{"s" if n != 1 else ""} · generated {_esc(_clock(now))} · '
        f"refreshes every {refresh} s</div></header>"
        f"<main>{body}</main>"
        '<footer>BEAL active learning: unlabeled tasks with the lowest expected confidence (EC/H_J) are '
        "labeled first.</footer></body></html>\n"
    )
