"""Per-project coordination shared by the API and the workers: annotation counters, the
"one running + one pending job" rule, the idle check's slot, and job status records.

Two implementations with one interface: Redis (``redis_coordination``: production, shared by every process and
host) and in-memory (``local_coordination``: embedded mode, one process). Both keep the same semantics:

- ``claim_pending(p, holder)`` is true for exactly one job (its ``holder`` id) until that job takes the lock;
  the holder may claim it again (a deferred or retried job keeps its slot); a slot whose job ended without
  taking the lock is freed by the next trigger (``triggers``), and a lost one expires after a short TTL;
- a round runs inside ``running(p)``: it takes the project lock (or raises ``ProjectLocked`` at once with
  ``timeout=0``), then in one step clears the pending flag and moves the annotation counter to the round's
  "in flight" count (the round reads every annotation so far, so a webhook arriving while it runs counts towards
  exactly one follow-up), and records a job left "started" by a dead worker as failed. A round that ends
  normally drops its in-flight count; one that raises puts it back: its work stays owed (``owed``), so a retry,
  the next trigger or the idle check trains it. A killed round's count stays in flight until the next round;
- ``claim_idle_check(p)`` is true for one caller until the check runs and calls ``release_idle_check(p)``;
- ``running`` yields a ``Lease``: ``check()`` raises ``LockLost`` once the lock is no longer ours;
- reads (``statuses``, ``owed``) never write: a dead worker's job is shown as failed from one atomic snapshot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from beal_backend.worker.locks import Lease

log = logging.getLogger(__name__)
PREFIX = "beal"
LOG_SIZE = 50
PENDING_TTL = 900  # s: a slot whose job vanished without a trace (e.g. Redis flushed) blocks triggers no longer
WORKER_DIED = (
    "the worker stopped during the job (killed or crashed, or it lost the project lock); "
    "the previous version keeps serving and the next trigger retrains"
)


def _dead(current: dict, locked: bool) -> bool:
    return current.get("state") == "started" and not locked


def _as_failed(st: dict) -> dict:
    """The read view of a record whose job died: failed, with the reason (nothing is written)."""
    return {**st, "current": {**st["current"], "state": "failed", "error": WORKER_DIED}}


class Coordinator:
    def add_annotations(self, project: str, n: int = 1) -> int:
        """Count changed annotations since the last round started; returns the new count."""
        raise NotImplementedError

    def annotations(self, project: str) -> int:
        """The count ``add_annotations`` returned last (a read: writes nothing)."""
        raise NotImplementedError

    def owed(self, project: str) -> int:
        """Annotation events no round has trained yet: the count, plus the in-flight count of a round that
        failed or died (while a round runs, its own in-flight count is not owed)."""
        raise NotImplementedError

    def mark_annotated(self, project: str) -> None:
        """Record that an annotation event arrived now (the idle check measures the quiet since then)."""
        raise NotImplementedError

    def claim_idle_check(self, project: str, ttl: float) -> bool:
        """One scheduled idle check per project; the slot expires after ``ttl`` s in case the check is lost."""
        raise NotImplementedError

    def release_idle_check(self, project: str) -> float:
        """The check runs: free its slot and return the seconds since the last annotation event (inf: none)."""
        raise NotImplementedError

    def reset_annotations(self, project: str) -> None:
        raise NotImplementedError

    def claim_pending(self, project: str, holder: str = "1") -> bool:
        """Take the project's pending slot for job ``holder``: true when it was free or already ``holder``'s
        (its TTL then starts again)."""
        raise NotImplementedError

    def pending_holder(self, project: str) -> str | None:
        """The id of the job holding the pending slot (None: free)."""
        raise NotImplementedError

    def release_pending(self, project: str, holder: str | None = None) -> None:
        """Free the slot; with ``holder``, only if that job still holds it."""
        raise NotImplementedError

    def is_pending(self, project: str) -> bool:
        return self.pending_holder(project) is not None

    def is_running(self, project: str) -> bool:
        """Whether some job holds the project lock now (a dead worker's lock expires)."""
        raise NotImplementedError

    def _locked(self, project: str, timeout: float) -> AbstractContextManager[Lease]:
        """Hold the project lock; raises ``ProjectLocked`` when it stays taken for ``timeout`` s (0: no wait)."""
        raise NotImplementedError

    def _start_round(self, project: str) -> None:
        """Clear the pending slot and add the annotation count to the in-flight count, in one step."""
        raise NotImplementedError

    def _settle_round(self, project: str, trained: bool) -> None:
        """Drop the in-flight count (``trained``) or move it back to the annotation count (the work is owed)."""
        raise NotImplementedError

    @contextmanager
    def running(self, project: str, timeout: float, starts_round: bool = True) -> Iterator[Lease]:
        """Hold the project lock; ``starts_round``: the holder is a training round (see the module doc).
        Raises ``ProjectLocked`` when the lock stays taken for ``timeout`` seconds."""
        with self._locked(project, timeout) as lease:
            if starts_round:
                self._start_round(project)
            self._record_dead_job(project)
            try:
                yield lease
            except BaseException:
                if starts_round:
                    self._settle_quietly(project, trained=False)
                raise
            if starts_round:
                self._settle_quietly(project, trained=True)

    def _settle_quietly(self, project: str, trained: bool) -> None:
        """Never hide the round's own outcome: a count Redis could not settle stays in flight, so it is owed
        (trained again by the next round) rather than lost."""
        try:
            self._settle_round(project, trained)
        except Exception as e:
            log.warning("project %s: the round's annotation count was not settled (%s)", project, e)

    def _record_dead_job(self, project: str) -> None:
        """Called with the project lock held, so no job of this project runs: a record still "started"
        belongs to a job that died, and saying so cannot race with that job finishing."""
        cur = (self._raw_status(project) or {}).get("current") or {}
        if cur.get("state") == "started":
            self.put_status(project, {"id": cur.get("id"), "state": "failed", "error": WORKER_DIED})
            self.append_log(
                project, {"time": time.time(), "id": cur.get("id"), "state": "failed", "message": WORKER_DIED}
            )

    def _raw_status(self, project: str) -> dict | None:
        raise NotImplementedError

    def put_status(self, project: str, record: dict) -> None:
        """Update the project's job record; a new job id moves the previous one to ``last``."""
        raise NotImplementedError

    def statuses(self) -> dict[str, dict]:
        """Every project's job record; a job "started" whose lock is gone is shown failed (not written)."""
        raise NotImplementedError

    def append_log(self, project: str, entry: dict) -> None:
        """Keep the newest ``LOG_SIZE`` job events per project (the status page's job log)."""
        raise NotImplementedError

    def job_log(self, project: str) -> list[dict]:
        raise NotImplementedError

    def ping(self) -> bool:
        return True


def merge_status(old: dict | None, record: dict) -> dict:
    old = old or {}
    current = old.get("current") or {}
    if current.get("id") != record.get("id"):
        old = {"last": current or old.get("last"), "current": {}}
    merged = {**old.get("current", {}), **record, "updated_at": time.time()}
    return {"current": merged, "last": old.get("last")}
