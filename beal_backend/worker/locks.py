"""The project lock's lease: a job holds the lock while it runs, and checks before it publishes anything that the
lock is still its own (a Redis lock expires when its holder stops renewing it)."""

from __future__ import annotations

import logging
import threading
import time

import redis

log = logging.getLogger(__name__)


class ProjectLocked(TimeoutError):
    """Another job held the project lock for the whole wait (answered as HTTP 409)."""


class LockLost(RuntimeError):
    """The job's project lock expired or was taken over: the job must stop before it publishes anything."""


class Lease:
    """A held project lock. ``check`` raises ``LockLost`` once it is no longer ours; ``confirm=True`` asks
    the lock's owner (Redis) instead of trusting the heartbeat's last answer. A thread lock is never lost."""

    def check(self, confirm: bool = False) -> None:
        return None

    def is_lost(self) -> bool:
        return False


class RedisLease(Lease):
    def __init__(self, lock, ttl: float):
        self.lock, self.ttl = lock, ttl
        self.lost = threading.Event()
        self.renewed = time.monotonic()

    def renew(self) -> None:
        try:
            self.lock.reacquire()
            self.renewed = time.monotonic()
        except redis.exceptions.LockNotOwnedError:
            self.lost.set()  # expired (e.g. a long Redis outage or a stalled process) and maybe taken over
        except redis.exceptions.RedisError as e:  # Redis away for a moment: ours until the TTL runs out
            log.warning("could not renew %s (%s); retrying", self.lock.name, e)

    def is_lost(self) -> bool:
        return self.lost.is_set()

    def check(self, confirm: bool = False) -> None:
        if confirm and not self.lost.is_set():
            self.renew()
            if time.monotonic() - self.renewed > self.ttl:  # unreachable for longer than the TTL: maybe expired
                raise LockLost(f"could not confirm {self.lock.name} for {self.ttl} s (Redis unreachable)")
        if self.lost.is_set():
            raise LockLost(f"{self.lock.name} expired or was taken by another job")
