"""A changed label set (a choice added or removed, or single <-> multiple choice) while a version serves.

The current version then no longer serves the config (``/predict`` answers no prediction), but its pushed
scores would keep ordering Label Studio's queue. So a change, seen at ``/setup`` (Label Studio sends the new
config) or in a ``PROJECT_UPDATED`` webhook (every project PATCH), starts a round, and every round checks the
config it reads from Label Studio: when the current version does not serve it, the round first deletes
every beal version's predictions in Label Studio (they stop steering at once) and records the change in
``<project>/label_change.json``; it then trains on the new set if ``MIN_ANNOTATIONS`` tasks are labeled under
it. While that record says no version serves the config, every annotation event enqueues a round
(coalesced; one with too few labels is skipped in a moment), so the first round with enough labels trains.
Reordering choices is not a change (``LabelSchema.serves``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
from pathlib import Path

from beal_backend.labelstudio.label_config import LabelConfigError, LabelSchema, parse_label_config, same_labels
from beal_backend.labelstudio.predictions import delete_stale
from beal_backend.worker.runtime import Runtime

log = logging.getLogger(__name__)
RECORD = "label_change.json"


@functools.lru_cache(maxsize=64)
def _schema(config: str) -> LabelSchema | None:
    """The config's schema, parsed once per process (/setup comes before every prediction run); None if unusable."""
    try:
        return parse_label_config(config)
    except LabelConfigError:
        return None


def _serves(labels, single_label: bool, meta: dict) -> bool:
    """Whether the version of ``meta`` was trained on this label set and choice mode (in any order)."""
    return same_labels(labels, single_label, meta["labels"], bool(meta.get("hparams", {}).get("single_label", False)))


def stale_version(rt: Runtime, project: str, schema: LabelSchema) -> tuple[str, dict] | None:
    """(current version, its metadata) when it was trained on another label set than ``schema``, else None."""
    version = rt.store.current(project)
    if version is None:
        return None
    meta = rt.store.metadata(project, version)
    return None if _serves(schema.labels, schema.single_label, meta) else (version, meta)


def describe(schema: LabelSchema, version: str, meta: dict) -> str:
    """What changed since ``version`` was trained, in words for the status page and the job log."""
    old, new = list(meta["labels"]), list(schema.labels)
    parts = [f"added {', '.join(c for c in new if c not in old)}"] if set(new) - set(old) else []
    parts += [f"removed {', '.join(c for c in old if c not in new)}"] if set(old) - set(new) else []
    if meta.get("hparams", {}).get("single_label", False) != schema.single_label:
        parts.append("now single-choice" if schema.single_label else "now multiple-choice")
    return f"the label set changed since {version} was trained ({'; '.join(parts)})"


def seen_at_setup(rt: Runtime, project: str, old_config: str | None, config: str) -> str | None:
    """``/setup``'s check: why a round is due, for a label set first seen now that the current version does
    not serve (Label Studio calls /setup before every prediction run: an unchanged set starts nothing)."""
    schema, old = _schema(config), _schema(old_config) if old_config else None
    if schema is None or (old is not None and old.serves(schema.labels, schema.single_label)):
        return None
    return _why(rt, project, schema)


def seen_in_update(rt: Runtime, project: str, payload: dict) -> str | None:
    """The ``PROJECT_UPDATED`` webhook's check (the payload is the project, with its config): why a round is
    due when that label set is not the current version's. A round's own switch of ``model_version`` sends one
    too, before the new version is current here: one naming a version that serves the config is not a change.
    The round reads the config from Label Studio itself."""
    config, shown = payload.get("label_config"), payload.get("model_version")
    schema = _schema(config) if isinstance(config, str) else None
    if schema is None:
        return None
    if isinstance(shown, str) and shown in rt.store.versions(project):
        meta = rt.store.metadata(project, shown)
        if _serves(schema.labels, schema.single_label, meta):
            return None
    return _why(rt, project, schema)


def _why(rt: Runtime, project: str, schema: LabelSchema) -> str | None:
    stale = stale_version(rt, project, schema)
    if stale is None:
        return None
    why = describe(schema, *stale)
    log.info("project %s: %s; a round is due", project, why)
    return why


def withdraw_stale(rt: Runtime, client, project: str, schema: LabelSchema, lease) -> dict:
    """A round's first step: when the current version does not serve ``schema``, delete every beal version's
    predictions in Label Studio (``delete_stale``, keeping none) so they stop ordering the queue, and record
    the change; returns what the job record shows ({} when the current version serves the config)."""
    stale = stale_version(rt, project, schema)
    if stale is None:
        _record_path(rt, project).unlink(missing_ok=True)  # a version serves the config again
        return {}
    why = describe(schema, *stale)
    lease.check(confirm=True)  # deleting is irreversible: only while the project lock is ours
    removed = delete_stale(client, project, "")
    _write_record(rt, project, {"labels": list(schema.labels), "single_label": schema.single_label, "why": why})
    log.warning("project %s: %s; deleted its predictions from Label Studio: %s", project, why, removed)
    return {"labels_changed": f"{why}: its predictions were deleted from Label Studio and no longer order the queue"}


def pending(rt: Runtime, project: str) -> dict | None:
    """The recorded change while the current version still does not serve it (None otherwise): a stat of
    a file that is normally absent, cheap enough for every annotation webhook."""
    path = _record_path(rt, project)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        version = rt.store.current(project)
        meta = rt.store.metadata(project, version) if version else None
    except (OSError, ValueError) as e:
        log.warning("project %s: %s unreadable (%s); the next round checks the label set again", project, path, e)
        return None
    return record if meta is None or not _serves(record["labels"], record["single_label"], meta) else None


def awaits_round(rt: Runtime, project: str) -> bool:
    """Whether an annotation event must enqueue a round: no version serves the changed label set yet."""
    return pending(rt, project) is not None


def notice(rt: Runtime, project: str, job: dict | None = None) -> str:
    """The project card's line while a recorded label-set change has no version serving it, else what the
    project's latest job (``job``) found about one."""
    record = pending(rt, project)
    if record is None:
        return str((job or {}).get("labels_changed") or "")
    return (
        f"{record.get('why', 'the label set changed')}: its predictions were deleted from Label Studio and no "
        f"longer order the queue; a round trains on the new set once {rt.settings.min_annotations} tasks are "
        "labeled under it"
    )


def _record_path(rt: Runtime, project: str) -> Path:
    return rt.store.project_dir(project) / RECORD


def _write_record(rt: Runtime, project: str, record: dict) -> None:
    """Atomic (temp file + rename): the API reads it on every annotation webhook."""
    path = _record_path(rt, project)
    fd, tmp = tempfile.mkstemp(prefix=f".{RECORD}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
