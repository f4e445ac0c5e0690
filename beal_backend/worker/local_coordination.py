"""The in-memory coordinator of embedded mode (one process, no Redis): the semantics of ``coordination``."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from beal_backend.worker.coordination import LOG_SIZE, Coordinator, _as_failed, _dead, merge_status
from beal_backend.worker.locks import Lease, ProjectLocked


class LocalCoordinator(Coordinator):
    def __init__(self):
        self._mu = threading.Lock()
        self._counts: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._pending: dict[str, str] = {}  # project -> the id of the job holding its pending slot
        self._idle_checks: set[str] = set()
        self._annotated: dict[str, float] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._status: dict[str, dict] = {}
        self._log: dict[str, list[dict]] = {}

    def add_annotations(self, project, n=1):
        with self._mu:
            self._counts[project] = self._counts.get(project, 0) + n
            return self._counts[project]

    def annotations(self, project):
        with self._mu:
            return self._counts.get(project, 0)

    def owed(self, project):
        with self._mu:
            lock = self._locks.get(project)
            in_flight = 0 if lock and lock.locked() else self._in_flight.get(project, 0)
            return self._counts.get(project, 0) + in_flight

    def reset_annotations(self, project):
        with self._mu:
            self._counts[project] = 0

    def mark_annotated(self, project):
        with self._mu:
            self._annotated[project] = time.monotonic()

    def claim_idle_check(self, project, ttl):  # one process: a scheduled check is never lost, so no TTL
        with self._mu:
            free = project not in self._idle_checks
            self._idle_checks.add(project)
            return free

    def release_idle_check(self, project):
        with self._mu:
            self._idle_checks.discard(project)
            return time.monotonic() - self._annotated.get(project, -math.inf)

    def claim_pending(self, project, holder="1"):  # one process: a queued job is never lost, so no TTL
        with self._mu:
            return self._pending.setdefault(project, holder) == holder

    def pending_holder(self, project):
        with self._mu:
            return self._pending.get(project)

    def release_pending(self, project, holder=None):
        with self._mu:
            if holder is None or self._pending.get(project) == holder:
                self._pending.pop(project, None)

    def is_running(self, project):
        with self._mu:
            lock = self._locks.get(project)
        return bool(lock and lock.locked())

    @contextmanager
    def _locked(self, project, timeout) -> Iterator[Lease]:
        with self._mu:
            lock = self._locks.setdefault(project, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise ProjectLocked(f"project {project} stayed locked for {timeout} s")
        try:
            yield Lease()
        finally:
            lock.release()

    def _start_round(self, project):
        with self._mu:
            self._pending.pop(project, None)
            self._in_flight[project] = self._in_flight.get(project, 0) + self._counts.pop(project, 0)

    def _settle_round(self, project, trained):
        with self._mu:
            n = self._in_flight.pop(project, 0)
            if not trained:
                self._counts[project] = self._counts.get(project, 0) + n

    def _raw_status(self, project):
        with self._mu:
            return self._status.get(project)

    def put_status(self, project, record):
        with self._mu:
            self._status[project] = merge_status(self._status.get(project), record)

    def statuses(self):
        with self._mu:
            out = json.loads(json.dumps(self._status))
            locked = {p for p, lock in self._locks.items() if lock.locked()}
        return {p: _as_failed(st) if _dead(st.get("current") or {}, p in locked) else st for p, st in out.items()}

    def append_log(self, project, entry):
        with self._mu:
            self._log[project] = ([entry, *self._log.get(project, [])])[:LOG_SIZE]

    def job_log(self, project):
        with self._mu:
            return list(self._log.get(project, []))
