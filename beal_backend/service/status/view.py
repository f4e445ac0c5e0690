"""The status page's data: what ``templates/status.html`` shows, prepared as plain values, and the stop hint.

Project data comes from Redis and the store and may be partial or odd (None, NaN, strings for numbers):
every value is normalised here, so the template only prints strings and numbers (Jinja escapes them).
"""

from __future__ import annotations

from beal_backend.service.status import charts, values

# versions that were accepted by the quality gate (serve or served); "rejected" candidates never served
ACCEPTED = ("current", "promoted", "superseded")
MAX_LABELS = 12  # label bars shown; the rest are summarised
MAX_VERSION_ROWS = 10
MAX_LOG_ROWS = 12


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
        for v in values.as_list(versions)
        if isinstance(v, dict) and v.get("status") in ACCEPTED and values.num(v.get("val_micro_f1")) is not None
    ]
    if len(pts) < window + 1:
        return {
            "stopped": False,
            "reason": f"not enough versions yet: {len(pts)} accepted with held-out metrics, "
            f"{window + 1} needed to judge the last {window}",
        }
    base, last = pts[-window - 1], pts[-1]
    gain = (values.num(last["val_micro_f1"]) or 0.0) - (values.num(base["val_micro_f1"]) or 0.0)  # pts all have metrics
    span = f"over the last {window} versions"
    n0, n1 = values.num(base.get("n_annotations")), values.num(last.get("n_annotations"))
    if n0 is not None and n1 is not None:
        span += f", {n0:.0f} → {n1:.0f} annotations"
    if gain >= f1_tol:
        return {"stopped": False, "reason": f"micro-F1 still rising ({values.delta(gain)} {span})"}
    ec0, ec1 = values.num(base.get("mean_ec")), values.num(last.get("mean_ec"))
    if ec0 is None or ec1 is None:
        return {
            "stopped": False,
            "reason": f"micro-F1 flat ({values.delta(gain)} {span}) but the pool's mean EC was not recorded, "
            "so it is unknown whether the pool is still changing",
        }
    rel = 0.0 if ec0 == ec1 else abs(ec1 - ec0) / max(abs(ec0), 1e-12)
    if rel >= ec_tol:
        return {
            "stopped": False,
            "reason": f"micro-F1 flat ({values.delta(gain)} {span}) but the pool's mean EC is still moving "
            f"({(ec1 - ec0) / max(abs(ec0), 1e-12):+.1%}: {ec0:.3f} → {ec1:.3f})",
        }
    return {
        "stopped": True,
        "reason": f"held-out micro-F1 {values.delta(gain)} and the pool's mean EC {rel:.1%} ({ec0:.3f} → {ec1:.3f}) "
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
    job = values.as_dict(p.get("current_job")) or values.as_dict(p.get("last_job"))
    if not job:
        return None
    state = str(job.get("state") or "unknown")
    progress = values.num(job.get("progress"))
    if state == "finished" and progress is None:
        progress = 1.0
    facts = []
    if job.get("started_at") is not None:
        facts.append(
            {
                "text": f"started {values.clock(job.get('started_at'))} ({values.ago(job.get('started_at'), now)})",
                "code": "",
            }
        )
    if job.get("updated_at") is not None:
        facts.append({"text": f"updated {values.ago(job.get('updated_at'), now)}", "code": ""})
    if job.get("version"):
        facts.append({"text": "version ", "code": values.text_of(job.get("version"))})
    retry_at = values.num(job.get("retry_at"))
    if state == "failed" and retry_at is not None:  # the queue runs it again then: nobody has to act
        facts.append(
            {"text": f"next try {values.clock(retry_at)} (in {values.duration(max(retry_at - now, 0))})", "code": ""}
        )
    return {
        "klass": {"started": "running", "finished": "ok", "failed": "bad"}.get(state, "neutral"),
        "label": "running" if state == "started" else state,
        "id": values.short(job.get("id"), 40),
        "stage": values.text_of(job.get("stage")) if job.get("stage") else "",
        "pct": max(0.0, min(1.0, progress or 0.0)) * 100,
        "facts": facts,
        "error": values.short(job.get("error"), 600) if job.get("error") else "",
        "reason": values.short(job.get("reason"), 600) if job.get("reason") else "",
    }


def _round_counts(job: dict) -> list[dict]:
    """What the round made of the annotations: tasks left out of training and notes, by reason."""
    rows = [(why, n, "left out of training") for why, n in values.as_dict(job.get("skipped")).items()]
    rows += [(why, n, "trained on") for why, n in values.as_dict(job.get("notes")).items()]
    return [
        {"n": int(values.num(n) or 0), "why": values.short(why, 200), "kind": kind}
        for why, n, kind in rows
        if values.num(n)
    ]


def _previous(p: dict, now: float) -> dict | None:
    """The last finished job, shown under a running one."""
    last = values.as_dict(p.get("last_job"))
    if not (values.as_dict(p.get("current_job")) and last):
        return None
    return {
        "id": values.short(last.get("id"), 40),
        "state": str(last.get("state") or "unknown"),
        "error": values.short(last.get("error"), 200) if last.get("error") else "",
        "ago": values.ago(last.get("updated_at"), now) if last.get("updated_at") is not None else "",
    }


def _points(versions: list[dict], key: str, pick) -> list[tuple[float, float]]:
    pts = [(values.num(v.get("n_annotations")), values.num(v.get(key))) for v in versions if pick(v.get("status"))]
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
    counts = [
        (str(k), x)
        for k, v in values.as_dict(p.get("label_counts")).items()
        if (x := values.num(v)) is not None and x >= 0
    ]
    counts.sort(key=lambda kv: (-kv[1], kv[0]))
    shown, rest = tuple(counts[:MAX_LABELS]), max(0, len(counts) - MAX_LABELS)
    scores = tuple(min(1.0, max(0.0, x)) for x in map(values.num, values.as_list(p.get("ec_scores"))) if x is not None)
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
                "version": values.text_of(v.get("version")) or "—",
                "created": values.iso(v.get("created_at")),
                "n": values.fmt(v.get("n_annotations"), 0),
                "micro": values.fmt(v.get("val_micro_f1")),
                "macro": values.fmt(v.get("val_macro_f1")),
                "ec": values.fmt(v.get("mean_ec")),
                "status": status,
                "reason": values.short(v.get("reason"), 300),
            }
        )
    return {"rows": rows, "more": max(0, len(versions) - MAX_VERSION_ROWS)}


def _log(entries: list, now: float) -> list[dict]:
    return [
        {
            "clock": values.clock(e.get("time")),
            "ago": values.ago(e.get("time"), now),
            "id": values.short(e.get("id"), 40),
            "state": str(e.get("state") or ""),
            "message": values.short(e.get("message"), 400),
        }
        for e in [e for e in entries if isinstance(e, dict)][:MAX_LOG_ROWS]
    ]


def project(p: dict, now: float) -> dict:
    """Everything one project card shows."""
    versions = [v for v in values.as_list(p.get("versions")) if isinstance(v, dict)]
    pid, current = p.get("project"), p.get("current_version")
    job = values.as_dict(p.get("current_job")) or values.as_dict(p.get("last_job"))
    return {
        "pid": values.text_of(pid),
        "head": values.text_of(pid) if pid not in (None, "") else "?",
        "title": values.short(p.get("title"), 120) if p.get("title") else "",
        "current": values.text_of(current) if current else "",
        "pending": bool(p.get("pending")),
        "untrained": values.untrained(p),
        "notice": values.short(p.get("label_notice"), 600),
        "job": _job(p, now),
        "counts": _round_counts(job if "skipped" in job else values.as_dict(p.get("last_job"))),
        "previous": _previous(p, now),
        "hint": _hint(versions),
        "charts": _charts(p, versions),
        "versions": _versions(versions, current),
        "log": _log(values.as_list(p.get("job_log")), now),
    }


def broken(p: dict, exc: Exception) -> dict:
    """The card of a project whose data could not be prepared: the page shows the error, not a 500."""
    return {"pid": values.text_of(p.get("project")), "error": f"{type(exc).__name__}: {values.short(exc, 300)}"}
