"""The status page's data: what ``templates/status.html`` shows, prepared as plain values, and the stop hint.

Project data comes from Redis and the store and may be partial or odd (None, NaN, strings for numbers):
every value is normalised here, so the template only prints strings and numbers (Jinja escapes them).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

from beal_backend.service.status import charts

# versions that were accepted by the quality gate (serve or served); "rejected" candidates never served
ACCEPTED = ("current", "promoted", "superseded")
MAX_LABELS = 12  # label bars shown; the rest are summarised
MAX_VERSION_ROWS = 10
MAX_LOG_ROWS = 12


# ---------------------------------------------------------------------------------------------- values


def num(value) -> float | None:
    """A finite float, or None for None/bool/NaN/inf/garbage."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _fmt(value, digits: int = 3) -> str:
    x = num(value)
    return "—" if x is None else f"{x:.{digits}f}"


def _delta(x: float) -> str:
    return f"{x:+.2f}" if abs(x) >= 0.01 else f"{x:+.3f}"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def clock(ts) -> str:
    x = num(ts)
    if x is None:
        return "—"
    try:
        return datetime.fromtimestamp(x, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "—"


def _ago(ts, now: float) -> str:
    x = num(ts)
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


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _untrained(p: dict) -> str:
    """The annotation changes no round has trained yet (a failed round's included), and what starts the next."""
    n, every, idle = (num(p.get(k)) for k in ("annotations_since_training", "train_every", "train_idle_seconds"))
    if not n or n < 1:
        return ""
    text = f"{n:.0f} annotation change{'' if n == 1 else 's'} not trained yet"
    if p.get("pending"):
        return f"{text}; a round is queued and will read them"
    if every is None:
        return text
    more = f"after {max(every - n, 1):.0f} more"
    return f"{text}; next round {more} or {_duration(idle)} without any" if idle else f"{text}; next round {more}"


def _iso(value) -> str:
    """An ISO timestamp shortened for a table cell ("2026-05-01 12:03:04")."""
    if value is None:
        return "—"
    text = str(value)
    m = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2})?)", text)
    return f"{m.group(1)} {m.group(2)}" if m else text[:32]


def short(text, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value) -> str:
    return "" if value is None else str(value)


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
        v
        for v in _list(versions)
        if isinstance(v, dict) and v.get("status") in ACCEPTED and num(v.get("val_micro_f1")) is not None
    ]
    if len(pts) < window + 1:
        return {
            "stopped": False,
            "reason": f"not enough versions yet: {len(pts)} accepted with held-out metrics, "
            f"{window + 1} needed to judge the last {window}",
        }
    base, last = pts[-window - 1], pts[-1]
    gain = (num(last["val_micro_f1"]) or 0.0) - (num(base["val_micro_f1"]) or 0.0)  # pts all have metrics
    span = f"over the last {window} versions"
    n0, n1 = num(base.get("n_annotations")), num(last.get("n_annotations"))
    if n0 is not None and n1 is not None:
        span += f", {n0:.0f} → {n1:.0f} annotations"
    if gain >= f1_tol:
        return {"stopped": False, "reason": f"micro-F1 still rising ({_delta(gain)} {span})"}
    ec0, ec1 = num(base.get("mean_ec")), num(last.get("mean_ec"))
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


def _hint(versions: list[dict]) -> dict:
    hint = stop_hint(versions)
    if hint["stopped"]:
        klass, head = "stop", "Model has stopped improving"
    elif hint["reason"].startswith("not enough versions"):
        klass, head = "wait", "Labeling still pays off (too early to judge)"
    else:
        klass, head = "go", "Labeling still pays off"
    return {**hint, "klass": klass, "head": head}


# ---------------------------------------------------------------------------------------------- sections


def _job(p: dict, now: float) -> dict | None:
    """The running job, else the last one: state, progress (0-100), facts; None when there was none."""
    job = _dict(p.get("current_job")) or _dict(p.get("last_job"))
    if not job:
        return None
    state = str(job.get("state") or "unknown")
    progress = num(job.get("progress"))
    if state == "finished" and progress is None:
        progress = 1.0
    facts = []
    if job.get("started_at") is not None:
        facts.append(
            {"text": f"started {clock(job.get('started_at'))} ({_ago(job.get('started_at'), now)})", "code": ""}
        )
    if job.get("updated_at") is not None:
        facts.append({"text": f"updated {_ago(job.get('updated_at'), now)}", "code": ""})
    if job.get("version"):
        facts.append({"text": "version ", "code": _text(job.get("version"))})
    retry_at = num(job.get("retry_at"))
    if state == "failed" and retry_at is not None:  # the queue runs it again then: nobody has to act
        facts.append({"text": f"next try {clock(retry_at)} (in {_duration(max(retry_at - now, 0))})", "code": ""})
    return {
        "klass": {"started": "running", "finished": "ok", "failed": "bad"}.get(state, "neutral"),
        "label": "running" if state == "started" else state,
        "id": short(job.get("id"), 40),
        "stage": _text(job.get("stage")) if job.get("stage") else "",
        "pct": max(0.0, min(1.0, progress or 0.0)) * 100,
        "facts": facts,
        "error": short(job.get("error"), 600) if job.get("error") else "",
        "reason": short(job.get("reason"), 600) if job.get("reason") else "",
    }


def _round_counts(job: dict) -> list[dict]:
    """What the round made of the annotations: tasks left out of training and notes, by reason."""
    rows = [(why, n, "left out of training") for why, n in _dict(job.get("skipped")).items()]
    rows += [(why, n, "trained on") for why, n in _dict(job.get("notes")).items()]
    return [{"n": int(num(n) or 0), "why": short(why, 200), "kind": kind} for why, n, kind in rows if num(n)]


def _previous(p: dict, now: float) -> dict | None:
    """The last finished job, shown under a running one."""
    last = _dict(p.get("last_job"))
    if not (_dict(p.get("current_job")) and last):
        return None
    return {
        "id": short(last.get("id"), 40),
        "state": str(last.get("state") or "unknown"),
        "error": short(last.get("error"), 200) if last.get("error") else "",
        "ago": _ago(last.get("updated_at"), now) if last.get("updated_at") is not None else "",
    }


def _points(versions: list[dict], key: str, pick) -> list[tuple[float, float]]:
    pts = [(num(v.get("n_annotations")), num(v.get(key))) for v in versions if pick(v.get("status"))]
    return [(x, y) for x, y in pts if x is not None and y is not None]


def _charts(p: dict, versions: list[dict]) -> list[dict]:
    """Three chart cells: caption, the SVG (or None if drawing failed) and the note shown without data."""
    curve = {
        name: {
            "accepted": _points(versions, key, lambda s: s != "rejected"),
            "rejected": _points(versions, key, lambda s: s == "rejected"),
            "current": _points(versions, key, lambda s: s == "current"),
        }
        for name, key in (("micro", "val_micro_f1"), ("macro", "val_macro_f1"))
    }
    has_curve = any(curve[k]["accepted"] or curve[k]["rejected"] for k in curve)
    counts = [(str(k), x) for k, v in _dict(p.get("label_counts")).items() if (x := num(v)) is not None and x >= 0]
    counts.sort(key=lambda kv: (-kv[1], kv[0]))
    shown, rest = tuple(counts[:MAX_LABELS]), max(0, len(counts) - MAX_LABELS)
    scores = tuple(min(1.0, max(0.0, x)) for x in map(num, _list(p.get("ec_scores"))) if x is not None)
    return [
        _cell(
            "Learning curve (held-out F1)",
            "no held-out metrics yet",
            has_curve,
            charts.learning_curve,
            "learning curve: held-out F1 against annotations",
            curve,
        ),
        _cell(
            "Label frequency",
            "no label counts yet",
            bool(shown),
            charts.label_bars,
            "label frequency in the annotations",
            shown,
            rest,
        ),
        _cell(
            f"EC over the unlabeled pool ({len(scores)} tasks)" if scores else "EC over the unlabeled pool",
            "no scored unlabeled tasks",
            bool(scores),
            charts.ec_histogram,
            "distribution of EC/H_J over the unlabeled tasks",
            scores,
        ),
    ]


def _cell(caption: str, empty: str, has_data: bool, build, label: str, *args) -> dict:
    svg = charts.chart(build, label, *args) if has_data else None
    return {"caption": caption, "empty": "" if has_data else empty, "svg": svg}


def _versions(versions: list[dict], current) -> dict:
    rows = []
    for v in list(reversed(versions))[:MAX_VERSION_ROWS]:
        status = str(v.get("status") or "unknown")
        rows.append(
            {
                "cur": status == "current" or (current is not None and v.get("version") == current),
                "version": _text(v.get("version")) or "—",
                "created": _iso(v.get("created_at")),
                "n": _fmt(v.get("n_annotations"), 0),
                "micro": _fmt(v.get("val_micro_f1")),
                "macro": _fmt(v.get("val_macro_f1")),
                "ec": _fmt(v.get("mean_ec")),
                "status": status,
                "reason": short(v.get("reason"), 300),
            }
        )
    return {"rows": rows, "more": max(0, len(versions) - MAX_VERSION_ROWS)}


def _log(entries: list, now: float) -> list[dict]:
    return [
        {
            "clock": clock(e.get("time")),
            "ago": _ago(e.get("time"), now),
            "id": short(e.get("id"), 40),
            "state": str(e.get("state") or ""),
            "message": short(e.get("message"), 400),
        }
        for e in [e for e in entries if isinstance(e, dict)][:MAX_LOG_ROWS]
    ]


def project(p: dict, now: float) -> dict:
    """Everything one project card shows."""
    versions = [v for v in _list(p.get("versions")) if isinstance(v, dict)]
    pid, current = p.get("project"), p.get("current_version")
    job = _dict(p.get("current_job")) or _dict(p.get("last_job"))
    return {
        "pid": _text(pid),
        "head": _text(pid) if pid not in (None, "") else "?",
        "title": short(p.get("title"), 120) if p.get("title") else "",
        "current": _text(current) if current else "",
        "pending": bool(p.get("pending")),
        "untrained": _untrained(p),
        "notice": short(p.get("label_notice"), 600),
        "job": _job(p, now),
        "counts": _round_counts(job if "skipped" in job else _dict(p.get("last_job"))),
        "previous": _previous(p, now),
        "hint": _hint(versions),
        "charts": _charts(p, versions),
        "versions": _versions(versions, current),
        "log": _log(_list(p.get("job_log")), now),
    }


def broken(p: dict, exc: Exception) -> dict:
    """The card of a project whose data could not be prepared: the page shows the error, not a 500."""
    return {"pid": _text(p.get("project")), "error": f"{type(exc).__name__}: {short(exc, 300)}"}
