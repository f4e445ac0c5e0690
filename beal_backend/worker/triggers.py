"""When a round is enqueued: by the webhook's count (``TRAIN_EVERY``), by Start Training, and by the idle check,
which trains the end of a burst ``TRAIN_IDLE_SECONDS`` after its last annotation event (the count alone would
leave those annotations untrained until more arrive). Each only claims the project's one pending slot and
enqueues; the round itself reads every annotation when it starts.

Normally one idle check per project is scheduled at a time (see ``CHECK_SLOT_MARGIN``). The check frees
its slot *before* it reads the time of the last annotation event, so an event that arrives while it runs either
is seen by it or schedules the next check: none is left unchecked.
"""

from __future__ import annotations

import logging
import uuid

from beal_backend.worker import embedding
from beal_backend.worker.runtime import Runtime, job_queue

log = logging.getLogger(__name__)
# How long (s) an idle-check slot outlives its check's due time. A check queued behind a longer round outlives
# its slot; an event may then schedule a second check, which is harmless (rounds go through the pending slot).
CHECK_SLOT_MARGIN = 600


def new_job_id(kind: str, project: str) -> str:
    """``kind``-``project``-random: the pending slot records it, so the id exists before the job is enqueued."""
    return f"{kind}-{project}-{uuid.uuid4().hex[:8]}"


def enqueue_round(rt: Runtime, project: str) -> dict:
    """Enqueue a round unless one is already waiting (it will read everything)."""
    # the counter restarts when the job starts (coordinator.running), not here: annotations that
    # arrive before then are read by that job too, so they must not count towards the next one
    job_id = _claim_and_enqueue(rt, project, job_queue(rt).enqueue, project, "train")
    if job_id is None:
        return {"status": "coalesced", "project": project}  # the waiting round will read everything
    return {"status": "queued", "project": project, "job_id": job_id}


def enqueue_embedding(rt: Runtime, project: str) -> dict:
    """Enqueue the low-priority job that caches imported tasks' features, unless one is waiting."""
    job_id = _claim_and_enqueue(rt, embedding.embed_key(project), job_queue(rt).enqueue_embedding, project, "embed")
    state = {"status": "queued", "job_id": job_id} if job_id else {"status": "coalesced"}
    return {**state, "project": project, "job": "embedding"}


def note_annotation_event(rt: Runtime, project: str, idle: int) -> None:
    """Record the event's time and make sure one idle check is scheduled (``idle``: the project's
    ``TRAIN_IDLE_SECONDS``; 0: off)."""
    if idle:
        rt.coordinator.mark_annotated(project)
        _schedule_check(rt, project, idle)


def check_idle(rt: Runtime, project: str) -> dict:
    """The scheduled check: enqueue a round if annotations are untrained and none came for the idle time;
    if one came since the check was scheduled, look again when the idle time after it has passed."""
    idle = rt.project_settings(project).train_idle_seconds
    wait = idle - rt.coordinator.release_idle_check(project)
    if wait > 0:
        _schedule_check(rt, project, wait)
        return {"status": "waiting", "project": project, "seconds": round(wait, 3)}
    if rt.coordinator.owed(project) == 0:
        return {"status": "up to date", "project": project}  # the last round trained everything
    log.info("project %s: no annotation for %s s, training the untrained ones", project, idle)
    return enqueue_round(rt, project)


def _claim_and_enqueue(rt: Runtime, slot: str, enqueue, project: str, kind: str) -> str | None:
    """The job id, or None when a job of this kind already waits (the pending ``slot`` is taken); the slot is
    freed again if the queue refuses the job."""
    job_id = new_job_id(kind, project)
    if not claim_slot(rt, slot, job_id):
        return None
    try:
        return enqueue(project, job_id=job_id)
    except Exception:
        rt.coordinator.release_pending(slot, job_id)
        raise


def claim_slot(rt: Runtime, slot: str, job_id: str) -> bool:
    """Take the pending ``slot`` for ``job_id``. A slot whose job can no longer run (it failed before taking
    the lock, its work horse was killed after its last retry, Redis lost it) is freed here, however that job
    ended; a live holder keeps it (its short TTL starts again)."""
    c = rt.coordinator
    if c.claim_pending(slot, job_id):
        return True
    holder = c.pending_holder(slot)
    if holder is not None and not job_queue(rt).alive(holder):
        c.release_pending(slot, holder)  # only if still that job's
    if holder is None or not job_queue(rt).alive(holder):
        return c.claim_pending(slot, job_id)
    c.claim_pending(slot, holder)
    return False


def schedule_check(rt: Runtime, project: str) -> None:
    """An idle check after the project's idle time, as if an annotation came now (a failed round's last try:
    its work is owed, and the check trains it)."""
    idle = rt.project_settings(project).train_idle_seconds
    if idle:
        _schedule_check(rt, project, idle)


def _schedule_check(rt: Runtime, project: str, delay: float) -> None:
    if not rt.coordinator.claim_idle_check(project, ttl=delay + CHECK_SLOT_MARGIN):
        return  # one is scheduled: it will see this event's time
    try:
        job_queue(rt).enqueue_idle_check(project, delay)
    except Exception:
        rt.coordinator.release_idle_check(project)
        raise
