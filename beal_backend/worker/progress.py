"""A job's progress as /jobs, /status and the job log show it (``coordination``'s job records)."""

from __future__ import annotations

import logging
import time

import redis

from beal_backend.worker.coordination import Coordinator
from beal_backend.worker.locks import Lease

log = logging.getLogger(__name__)


class Reporter:
    """Writes the job record, best effort: a Redis outage must neither kill a long run nor hide the error a
    failing run reports; nothing once the project lock is lost. ``throttled`` (frequent progress callbacks)
    writes at most once a second and stops the job (``LockLost``) once its project lock is gone."""

    def __init__(self, coordinator: Coordinator, project: str, job_id: str):
        self.c, self.project, self.job_id, self._last = coordinator, project, job_id, 0.0
        self.lease: Lease | None = None  # set while the project lock is held

    def __call__(self, **fields) -> None:
        self._last = time.monotonic()
        if self.lease is not None and self.lease.is_lost():
            return  # the project's record may belong to the job that holds the lock now
        try:
            self.c.put_status(self.project, {"id": self.job_id, **fields})
            if "state" in fields:
                message = (
                    fields.get("error")
                    or fields.get("reason")
                    or (fields.get("promotion") or {}).get("reason")
                    or fields.get("stage", "")
                )
                self.c.append_log(
                    self.project, {"time": time.time(), "id": self.job_id, "state": fields["state"], "message": message}
                )
        except redis.exceptions.RedisError as e:
            log.warning("project %s: job %s could not record %s (%s)", self.project, self.job_id, fields, e)

    def throttled(self, **fields) -> None:
        if self.lease is not None:
            self.lease.check()
        if time.monotonic() - self._last >= 1.0:
            self(**fields)
