"""How a queued round is attempted, the same under rq and in embedded mode: work owed to a project is never
forgotten, and no worker waits on a project lock.

- a round whose project is locked (another round or a rollback runs) is deferred: it keeps (or takes) the
  project's pending slot and the queue runs it again after ``DEFER_SECONDS``; if another job holds that slot, it
  is coalesced into that job, which reads every annotation when it starts;
- a round that fails leaves its annotations owed (``coordination``); while the queue will retry it, it holds the
  pending slot (triggers coalesce into the retry); after its last try an idle check is scheduled, so the owed
  work is trained without anyone acting, and the next trigger counts it too.
"""

from __future__ import annotations

import logging

from beal_backend.worker import triggers
from beal_backend.worker.locks import ProjectLocked
from beal_backend.worker.rounds import run_round
from beal_backend.worker.runtime import Runtime, job_queue

log = logging.getLogger(__name__)
DEFER_SECONDS = 10  # how soon a round whose project was locked looks again


def attempt_round(project: str, rt: Runtime, job_id: str, retry_in: float | None = None) -> dict:
    """Run the round of job ``job_id`` (``rt`` with a queue), or defer or coalesce it. ``retry_in``: seconds until
    the queue retries the job if it fails (None: this is its last try). Returns the round's summary,
    ``{"outcome": "deferred", "retry_in": s}`` (the queue must run it again then) or ``{"outcome": "coalesced"}``."""
    holder = rt.coordinator.pending_holder(project)
    if holder not in (None, job_id) and job_queue(rt).alive(holder):
        return _coalesced(project, job_id, holder)
    try:
        return run_round(project, rt, job_id, retry_in=retry_in)
    except ProjectLocked:
        if triggers.claim_slot(rt, project, job_id):
            log.info("project %s is locked: job %s runs again in %s s", project, job_id, DEFER_SECONDS)
            return {"outcome": "deferred", "project": project, "retry_in": DEFER_SECONDS}
        return _coalesced(project, job_id, rt.coordinator.pending_holder(project))
    except Exception:
        _leave_owed(project, rt, job_id, retry_in)
        raise


def _coalesced(project: str, job_id: str, holder: str | None) -> dict:
    log.info("project %s: job %s coalesced into the waiting job %s", project, job_id, holder)
    return {"outcome": "coalesced", "project": project, "into": holder}


def _leave_owed(project: str, rt: Runtime, job_id: str, retry_in: float | None) -> None:
    """Best effort (the round's own error is what the queue must see): the retry becomes the project's waiting
    round, or, after the last try, an idle check will train the owed annotations."""
    try:
        if retry_in is not None:
            triggers.claim_slot(rt, project, job_id)
        else:
            triggers.schedule_check(rt, project)
    except Exception as e:
        log.warning("project %s: job %s could not schedule its owed work (%s)", project, job_id, e)
