"""Making a version serve (a round's promoted candidate, or a rollback target), in an order a crash cannot split.

Two systems say which version serves: Label Studio's ``model_version`` (whose predictions order the tasks) and
the store's ``CURRENT`` (what /setup and /predict answer). No step writes both at once, so:

1. push the version's scores: harmless while Label Studio still shows the old version;
2. write the store's ``SWITCHING`` marker (new and old version);
3. switch Label Studio's ``model_version``;
4. write ``CURRENT`` (this ends the marker);
5. delete the predictions of every other beal version.

The project lock is confirmed ours (``lease.check(confirm=True)``) before steps 1, 2, 4 and 5: a job that lost
it stops there, since another job may be publishing now. A crash or a lost lock between 2 and 4 leaves the
marker; the next job on the project (round or rollback, holding the lock) asks Label Studio which version it
shows and makes ``CURRENT`` agree (``reconcile``): the switch is finished if Label Studio made it, else undone.
A round also reconciles when it ends, for a job that lost its lock to it mid-switch.
"""

from __future__ import annotations

import logging

from beal_backend.labelstudio.label_config import LabelSchema
from beal_backend.labelstudio.predictions import delete_stale, from_scores
from beal_backend.worker.runtime import Runtime

log = logging.getLogger(__name__)
PUBLISHING = "publishing"  # a version's publish state from its first push until it serves or fails


def publish(
    rt: Runtime, client, project: str, version: str, schema: LabelSchema, scores: dict, pool_ids: list[int], lease
) -> dict:
    """Steps 1-5 above for ``version``; a failure is recorded in the version (``/versions`` shows a version
    that never served, and why) and raised."""
    pid, store, pushed, step = int(project), rt.store, 0, "push"
    if rt.preload:  # an API in this process (embedded mode, rollback) loads the version before it serves
        rt.preload(project, version)
    try:
        if pool_ids:
            predictions = from_scores(schema, scores["tasks"], pool_ids)
            lease.check(confirm=True)
            store.note_publish(project, version, PUBLISHING)
            pushed = client.push_predictions(pid, version, predictions)
            if pushed != len(predictions):
                log.warning(
                    "Label Studio stored %d of %d predictions for project %s", pushed, len(predictions), project
                )
            step = "switch"
            lease.check(confirm=True)
            store.begin_switch(project, version)
            client.set_model_version(pid, version)  # only once every score is in
        step = "making it current"
        lease.check(confirm=True)
        store.set_current(project, version)
    except Exception as e:
        _note_failure(store, project, version, f"{step} failed ({type(e).__name__}: {str(e)[:200]})")
        raise
    lease.check(confirm=True)  # another job's fresh predictions must not be deleted as stale
    return {"pushed": pushed, **delete_stale(client, project, version)}


def _note_failure(store, project: str, version: str, state: str) -> None:
    try:
        store.note_publish(project, version, state)
    except OSError as e:  # must not hide the failure being reported
        log.warning("project %s: could not record that %s was not served (%s)", project, version, e)


def reconcile(rt: Runtime, client, project: str, lease) -> dict | None:
    """End a switch a crash (or a lost lock) interrupted: ``CURRENT`` becomes what Label Studio shows when that
    is the marker's version, else stays. Call with the project lock held. -> what was done, or None."""
    switch = rt.store.switching(project)
    if switch is None:
        return None
    shown = client.model_version(int(project))
    lease.check(confirm=True)
    if shown == switch["to"] and shown in rt.store.versions(project):
        rt.store.set_current(project, shown)
        done = {"finished_switch_to": shown}
    else:
        rt.store.end_switch(project)
        done = {"undid_switch_to": switch["to"], "label_studio_shows": shown}
    log.warning("project %s: a switch to %s was interrupted; reconciled: %s", project, switch["to"], done)
    return done


def version_status(store, project: str, version: str, current: str | None, meta: dict) -> tuple[str, str | None]:
    """(status, publish note) as ``/versions`` lists them: current, promoted (a rollback target), unserved (promoted
    but never current: its publish failed or was interrupted) or rejected (by the quality gate)."""
    if version == current:
        return "current", None
    if not (meta.get("promotion") or {}).get("promoted", True):
        return "rejected", None
    state = store.publish_state(project, version)
    if state is None or state == "served":  # None: written before publish states were recorded
        return "promoted", None
    if state == PUBLISHING:
        state = "interrupted before it served (its job stopped, or is still publishing)"
    return "unserved", f"promoted, never served: {state}"
