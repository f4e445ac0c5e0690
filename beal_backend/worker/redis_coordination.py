"""The Redis coordinator (production: shared by the API and every worker, on any host): the semantics of
``coordination``. Multi-key steps are Lua scripts or transactions, so each is atomic."""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from beal_backend.worker.coordination import (
    LOG_SIZE,
    PENDING_TTL,
    PREFIX,
    Coordinator,
    _as_failed,
    _dead,
    merge_status,
)
from beal_backend.worker.locks import Lease, ProjectLocked, RedisLease

log = logging.getLogger(__name__)
# KEYS: slot; ARGV: holder, ttl. Free or already the holder's: (re)take it.
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
# KEYS: slot; ARGV: holder. Free it only if that job still holds it.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# KEYS: from, to [, slot]: move the count ``from`` onto ``to`` (and free the slot), in one step.
_MOVE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('DEL', KEYS[1])
if KEYS[3] then redis.call('DEL', KEYS[3]) end
if n > 0 then redis.call('INCRBY', KEYS[2], n) end
return n
"""


class RedisCoordinator(Coordinator):
    def __init__(self, conn: redis.Redis, lock_ttl: int, pending_ttl: int = PENDING_TTL):
        self.r = conn
        self.lock_ttl = lock_ttl  # a SIGKILLed worker's lock expires after this (renewed while alive)
        self.pending_ttl = pending_ttl  # a vanished pending job stops blocking triggers after this
        self._claim = conn.register_script(_CLAIM)
        self._release = conn.register_script(_RELEASE)
        self._move = conn.register_script(_MOVE)

    def _key(self, kind: str, project: str) -> str:
        return f"{PREFIX}:{kind}:{project}"

    def add_annotations(self, project, n=1):
        return int(self.r.incrby(self._key("count", project), n))

    def annotations(self, project):
        return int(self.r.get(self._key("count", project)) or 0)

    def owed(self, project):
        with self.r.pipeline(transaction=True) as pipe:
            pipe.get(self._key("count", project))
            pipe.get(self._key("inflight", project))
            pipe.exists(self._key("lock", project))
            count, in_flight, locked = pipe.execute()
        return int(count or 0) + (0 if locked else int(in_flight or 0))

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

    def claim_pending(self, project, holder="1"):
        return bool(self._claim(keys=[self._key("pending", project)], args=[holder, self.pending_ttl]))

    def pending_holder(self, project):
        raw = self.r.get(self._key("pending", project))
        return raw.decode() if isinstance(raw, bytes) else raw

    def release_pending(self, project, holder=None):
        if holder is None:
            self.r.delete(self._key("pending", project))
        else:
            self._release(keys=[self._key("pending", project)], args=[holder])

    def is_running(self, project):
        return bool(self.r.exists(self._key("lock", project)))

    def _start_round(self, project):
        keys = [self._key("count", project), self._key("inflight", project), self._key("pending", project)]
        self._move(keys=keys)

    def _settle_round(self, project, trained):
        if trained:
            self.r.delete(self._key("inflight", project))
        else:
            self._move(keys=[self._key("inflight", project), self._key("count", project)])

    @contextmanager
    def _locked(self, project, timeout) -> Iterator[Lease]:
        lock = self.r.lock(
            self._key("lock", project), timeout=self.lock_ttl, blocking_timeout=timeout, thread_local=False
        )
        if not lock.acquire(blocking=timeout > 0):
            raise ProjectLocked(f"project {project} stayed locked for {timeout} s")
        lease = RedisLease(lock, self.lock_ttl)
        stop = threading.Event()
        beat = threading.Thread(target=self._renew, args=(lease, stop), daemon=True)
        beat.start()
        try:
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
