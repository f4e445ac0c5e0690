"""Per-project coordination shared by the API and the workers: annotation counters, the
"one running + one pending job" rule, and job status records.

Two implementations with one interface: Redis (production, shared by every process and host) and
in-memory (embedded mode, one process). Both keep the same semantics:

- ``claim_pending(p)`` is true for exactly one caller until the pending job starts;
- a job calls ``begin(p)`` (waits for the project lock, then clears the pending flag, so a webhook
  arriving while it runs queues exactly one follow-up) and ``end(p)``.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import redis

PREFIX = "beal"
LOG_SIZE = 50


class Coordinator:
    def add_annotations(self, project: str, n: int = 1) -> int:
        """Count changed annotations since the last trigger; returns the new count."""
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
    def running(self, project: str, timeout: float) -> Iterator[None]:
        raise NotImplementedError

    def put_status(self, project: str, record: dict) -> None:
        """Update the project's job record; a new job id moves the previous one to ``last``."""
        raise NotImplementedError

    def statuses(self) -> dict[str, dict]:
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
        self._locks: dict[str, threading.Lock] = {}
        self._status: dict[str, dict] = {}
        self._log: dict[str, list[dict]] = {}

    def add_annotations(self, project, n=1):
        with self._mu:
            self._counts[project] = self._counts.get(project, 0) + n
            return self._counts[project]

    def reset_annotations(self, project):
        with self._mu:
            self._counts[project] = 0

    def claim_pending(self, project):
        with self._mu:
            if project in self._pending:
                return False
            self._pending.add(project)
            return True

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
    def running(self, project, timeout):
        with self._mu:
            lock = self._locks.setdefault(project, threading.Lock())
        if not lock.acquire(timeout=timeout):
            raise TimeoutError(f"project {project} stayed locked for {timeout} s")
        try:
            self.release_pending(project)
            yield
        finally:
            lock.release()

    def put_status(self, project, record):
        with self._mu:
            self._status[project] = merge_status(self._status.get(project), record)

    def statuses(self):
        with self._mu:
            return json.loads(json.dumps(self._status))

    def append_log(self, project, entry):
        with self._mu:
            self._log[project] = ([entry] + self._log.get(project, []))[:LOG_SIZE]

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

    def reset_annotations(self, project):
        self.r.delete(self._key("count", project))

    def claim_pending(self, project):
        return bool(self.r.set(self._key("pending", project), "1", nx=True, ex=self.pending_ttl))

    def release_pending(self, project):
        self.r.delete(self._key("pending", project))

    def is_pending(self, project):
        return bool(self.r.exists(self._key("pending", project)))

    def is_running(self, project):
        return bool(self.r.exists(self._key("lock", project)))

    @contextmanager
    def running(self, project, timeout):
        lock = self.r.lock(self._key("lock", project), timeout=self.lock_ttl, blocking_timeout=timeout, thread_local=False)
        if not lock.acquire():
            raise TimeoutError(f"project {project} stayed locked for {timeout} s")
        stop = threading.Event()
        beat = threading.Thread(target=self._renew, args=(lock, stop), daemon=True)
        beat.start()
        try:
            self.release_pending(project)
            yield
        finally:
            stop.set()
            beat.join()
            try:
                lock.release()
            except redis.exceptions.LockError:
                pass  # expired while running: nothing left to release

    def _renew(self, lock, stop: threading.Event) -> None:
        """Keep a short-lived lock alive while the job runs; a killed worker stops renewing it.
        (The lock is not thread-local, so this thread may renew what the job thread took.)"""
        while not stop.wait(self.lock_ttl / 3):
            try:
                lock.reacquire()
            except redis.exceptions.RedisError:
                pass  # Redis away for a moment: the next beat tries again

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
            raw = self.r.get(key)
            if raw:
                k = key.decode() if isinstance(key, bytes) else key
                out[k.split(":", 2)[2]] = json.loads(raw)
        return out

    def append_log(self, project, entry):
        key = self._key("log", project)
        self.r.pipeline().lpush(key, json.dumps(entry)).ltrim(key, 0, LOG_SIZE - 1).execute()

    def job_log(self, project):
        return [json.loads(x) for x in self.r.lrange(self._key("log", project), 0, LOG_SIZE - 1)]

    def ping(self):
        try:
            return bool(self.r.ping())
        except redis.exceptions.RedisError:
            return False
