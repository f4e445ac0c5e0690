"""The service's stable held-out slice of the labeled texts (early stopping, and the promotion gate's yardstick).

Pure: a task is held out by a hash of its id, so it stays held out in every round. It lives in the engine so
that a service round (``worker.rounds``) and ``beal simulate`` hold out by the one same rule."""

from __future__ import annotations

import hashlib


def held_out_rows(task_ids: list[int], fraction: float, min_val: int) -> list[int]:
    """Rows whose task is in the stable held-out slice: a task is held out by a hash of its id, so it
    stays held out in every round and versions are compared on texts none of them trained on."""
    rows = [i for i, t in enumerate(task_ids) if _bucket(t) < fraction]
    return rows if len(rows) >= min_val and len(rows) < len(task_ids) else []


def _bucket(task_id: int) -> float:
    return int(hashlib.sha256(str(task_id).encode()).hexdigest()[:8], 16) / 16**8
