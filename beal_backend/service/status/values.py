"""Plain values for the status page from what Redis and the store hold, which may be partial or odd (None,
NaN, strings for numbers): numbers, times, durations and texts, each normalised to a printable string."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone


def num(value) -> float | None:
    """A finite float, or None for None/bool/NaN/inf/garbage."""
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def fmt(value, digits: int = 3) -> str:
    x = num(value)
    return "—" if x is None else f"{x:.{digits}f}"


def delta(x: float) -> str:
    return f"{x:+.2f}" if abs(x) >= 0.01 else f"{x:+.3f}"


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else []


def clock(ts) -> str:
    x = num(ts)
    if x is None:
        return "—"
    try:
        return datetime.fromtimestamp(x, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return "—"


def ago(ts, now: float) -> str:
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


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def untrained(p: dict) -> str:
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
    return f"{text}; next round {more} or {duration(idle)} without any" if idle else f"{text}; next round {more}"


def iso(value) -> str:
    """An ISO timestamp shortened for a table cell ("2026-05-01 12:03:04")."""
    if value is None:
        return "—"
    text = str(value)
    m = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(:\d{2})?)", text)
    return f"{m.group(1)} {m.group(2)}" if m else text[:32]


def short(text, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def text_of(value) -> str:
    return "" if value is None else str(value)
