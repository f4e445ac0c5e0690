"""Per-project coordination shared by the API and the workers: annotation counters, the
"one running + one pending job" rule, the idle check's slot, and job status records.

Two implementations with one interface: Redis (production, shared by every process and host) and
in-memory (embedded mode, one process). Both keep the same semantics:

- ``claim_pending(p)`` is true for exactly one caller until the pending job starts;
- a round runs inside ``running(p)``: it waits for the project lock, then in one step clears the pending
  flag and the annotation counter (the round reads every annotation so far, so a webhook arriving while it
  runs counts towards exactly one follow-up), and records a job left "started" by a dead worker as failed;
- ``claim_idle_check(p)`` is true for one caller until the check runs and calls ``release_idle_check(p)``;
- ``running`` yields a ``Lease``: ``check()`` raises ``LockLost`` once the lock is no longer ours;
- reads (``statuses``) never write: a dead worker's job is shown as failed from one atomic snapshot.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from beal_backend.worker.locks import Lease, ProjectLocked, RedisLease

log = logging.getLogger(__name__)
PREFIX = "beal"
LOG_SIZE = 50
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

    def claim_pending(self, project: str) -> bool:
        raise NotImplementedError

    def release_pending(self, project: str) -> None:
        raise NotImplementedError

    def is_pending(self, project: str) -> bool:
        raise NotImplementedError

    def is_running(self, project: str) -> bool:
        """Whether some job holds the project lock now (a dead worker's lock expires)."""
        raise NotImplementedError

    @contextmanager
    def running(self, project: str, timeout: float, starts_round: bool = True) -> Iterator[Lease]:
        """Hold the project lock; ``starts_round``: the holder is a training round (see the module doc).
        Raises ``ProjectLocked`` when the lock stays taken for ``timeout`` seconds."""
        raise NotImplementedError

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


class LocalCoordinator(Coordinator):
    def __init__(self):
        self._mu = threading.Lock()
        self._counts: dict[str, int] = {}
        self._pending: set[str] = set()
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

    def reset_annotations(self, project):
        with self._mu:
            self._counts[project] = 0

    def mark_annotated(self, project):
        with self._mu:
            self._annotated[project] = time.monotonic()

    def claim_idle_check(self, project, ttl):  # one process: a scheduled check is never lost, so no TTL
        return self._claim(self._idle_checks, project)

    def release_idle_check(self, project):
        with self._mu:
            self._idle_checks.discard(project)
            return time.monotonic() - self._annotated.get(project, -math.inf)

    def claim_pending(self, project):
        return self._claim(self._pending, project)

    def _claim(self, slots: set[str], project: str) -> bool:
        """True for the one caller that finds the project's slot free (and takes it)."""
        with self._mu:
            free = project not in slots
            slots.add(project)
            return free

    def release_pending(self, project):
        with self._mu:
            self._pending.discard(project)

    def is_pending(self, project):
        with self._mu:
            return project in self._pending

    def is_running(self, project):
        with self._mu:
            lock = self._locks.get(project)
        return bool(lock and lock.locked())

    @contextmanager
    def running(self, project, timeout, starts_round=True):
        with self._mu:
            lock = self._locks.setdefault(project, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise ProjectLocked(f"project {project} stayed locked for {timeout} s")
        try:
            if starts_round:
                with self._mu:
                    self._pending.discard(project)
                    self._counts[project] = 0
            self._record_dead_job(project)
            yield Lease()
        finally:
            lock.release()

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


class RedisCoordinator(Coordinator):
    def __init__(self, conn: redis.Redis, lock_ttl: int, pending_ttl: int = 6 * 3600):
        self.r = conn
        self.lock_ttl = lock_ttl  # a SIGKILLed worker's lock expires after this (renewed while alive)
        self.pending_ttl = pending_ttl  # a lost pending job (e.g. Redis flushed) stops blocking triggers after this

    def _key(self, kind: str, project: str) -> str:
        return f"{PREFIX}:{kind}:{project}"

    def add_annotations(self, project, n=1):
        return int(self.r.incrby(self._key("count", project), n))

    def annotations(self, project):
        return int(self.r.get(self._key("count", project)) or 0)

    def reset_annotations(self, project):
        self.r.delete(self._key("count", project))

    def mark_annotated(self, project):  # Redis's clock: the API and the workers may run on different hosts
        sec, usec = self.r.time()
        self.r.set(self._key("annotated", project), f"{sec}.{usec:06d}")  # no TTL: idle times may be days

    def claim_idle_check(self, project, ttl):
        return bool(self.r.set(self._key("idle", project), "1", nx=True, ex=max(1, math.ceil(ttl))))

    def release_idle_check(self, project):
        with self.r.pipeline(transaction=True) as pipe:
            pipe.delete(self._key("idle", project))
            pipe.get(self._key("annotated", project))
            pipe.time()
            _, at, (sec, usec) = pipe.execute()
        return sec + usec / 1e6 - float(at) if at else math.inf

    def claim_pending(self, project):
        return bool(self.r.set(self._key("pending", project), "1", nx=True, ex=self.pending_ttl))

    def release_pending(self, project):
        self.r.delete(self._key("pending", project))

    def is_pending(self, project):
        return bool(self.r.exists(self._key("pending", project)))

    def is_running(self, project):
        return bool(self.r.exists(self._key("lock", project)))

    @contextmanager
    def running(self, project, timeout, starts_round=True):
        lock = self.r.lock(
            self._key("lock", project), timeout=self.lock_ttl, blocking_timeout=timeout, thread_local=False
        )
        if not lock.acquire():
            raise ProjectLocked(f"project {project} stayed locked for {timeout} s")
        lease = RedisLease(lock, self.lock_ttl)
        stop = threading.Event()
        beat = threading.Thread(target=self._renew, args=(lease, stop), daemon=True)
        beat.start()
        try:
            if starts_round:  # one step: no annotation counted between the two deletes is lost
                with self.r.pipeline(transaction=True) as pipe:
                    pipe.delete(self._key("pending", project), self._key("count", project))
                    pipe.execute()
            self._record_dead_job(project)
            yield lease
        finally:
            stop.set()
            beat.join()
            try:
                lock.release()
            except redis.exceptions.LockError:
                pass  # expired or taken over while running: nothing left to release
            except redis.exceptions.RedisError as e:  # must not hide the job's own outcome; the TTL frees it
                log.warning(
                    "project %s: could not release the lock (%s); it expires within %s s", project, e, self.lock_ttl
                )

    def _renew(self, lease: RedisLease, stop: threading.Event) -> None:
        """Keep a short-lived lock alive while the job runs; a killed worker stops renewing it.
        (The lock is not thread-local, so this thread may renew what the job thread took.)"""
        while not stop.wait(self.lock_ttl / 3) and not lease.lost.is_set():
            lease.renew()

    def _raw_status(self, project):
        raw = self.r.get(self._key("status", project))
        return json.loads(raw) if raw else None

    def put_status(self, project, record):
        key = self._key("status", project)
        with self.r.pipeline() as pipe:  # optimistic transaction: workers on several hosts may write
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    merged = merge_status(json.loads(raw) if raw else None, record)
                    pipe.multi()
                    pipe.set(key, json.dumps(merged))
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def statuses(self):
        out = {}
        for key in self.r.scan_iter(f"{PREFIX}:status:*"):
            project = (key.decode() if isinstance(key, bytes) else key).split(":", 2)[2]
            # one atomic snapshot: a job that finishes in between cannot be seen "started" without its lock
            with self.r.pipeline(transaction=True) as pipe:
                pipe.get(key)
                pipe.exists(self._key("lock", project))
                raw, locked = pipe.execute()
            if raw:
                st = json.loads(raw)
                out[project] = _as_failed(st) if _dead(st.get("current") or {}, bool(locked)) else st
        return out

    def append_log(self, project, entry):
        key = self._key("log", project)
        with self.r.pipeline() as pipe:
            pipe.lpush(key, json.dumps(entry))
            pipe.ltrim(key, 0, LOG_SIZE - 1)
            pipe.execute()

    def job_log(self, project):
        return [json.loads(x) for x in self.r.lrange(self._key("log", project), 0, LOG_SIZE - 1)]

    def ping(self):
        try:
            return bool(self.r.ping())
        except redis.exceptions.RedisError:
            return False
