"""The Redis the suite uses: ``REDIS_URL`` (or the older ``BEAL_TEST_REDIS``) when set, else the server on
127.0.0.1:6379 if it answers, else a private ``redis-server`` started for this test session.

Tests append a database number of their own to :func:`base_url` and flush only that database.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import redis

from tests.ports import free_port

DEFAULT = "redis://127.0.0.1:6379"


def server_of(url: str) -> str:
    """``scheme://[auth@]host:port`` of a Redis URL: its database path is dropped (tests pick their own)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"not a redis:// URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def resolve(
    env: Mapping[str, str], answers: Callable[[str], bool] = answers, start: Callable[[], str] | None = None
) -> str:
    """The Redis server URL (no database) the suite should use, by the rule in the module docstring."""
    for name in ("REDIS_URL", "BEAL_TEST_REDIS"):
        if env.get(name):
            return server_of(env[name])
    if answers(DEFAULT):
        return DEFAULT
    return (start or start_private)()


class PrivateRedis:
    """A ``redis-server`` of the caller's own on a free port, without persistence: stopping it (an outage a test
    makes) touches no one else's. ``start`` may be called again after ``stop`` (same port: Redis comes back)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.workdir = tempfile.mkdtemp(prefix="beal-test-redis-")
        self.proc: subprocess.Popen | None = None
        # short timeouts: a test of an outage must see it within a second
        self.conn = redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.2)

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("no Redis: install redis-server (apt-get install redis-server) or set REDIS_URL")
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [exe, *args, "--dir", self.workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + timeout
        while not answers(self.url):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_private() -> str:
    """A private server for the whole test session, stopped when the test process exits."""
    server = PrivateRedis().start()
    atexit.register(_stop, server)
    return server.url


def _stop(server: PrivateRedis) -> None:
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


@functools.cache
def base_url() -> str:
    return resolve(os.environ)


@contextlib.contextmanager
def flushed(url: str):
    """A connection to ``url``'s database, empty before and after the test (the e2e and integration fixtures)."""
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    try:
        yield conn
    finally:
        conn.flushdb()
