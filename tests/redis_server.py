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
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import redis

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


def start_private() -> str:
    """A ``redis-server`` on a free port with no persistence, stopped when the test process exits."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("no Redis: install redis-server (apt-get install redis-server) or set REDIS_URL")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="beal-test-redis-")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(_stop, proc, workdir)
    url = f"redis://127.0.0.1:{port}"
    deadline = time.time() + 10
    while not answers(url):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"redis-server on port {port} did not start")
        time.sleep(0.05)
    return url


def _stop(proc: subprocess.Popen, workdir: str) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(workdir, ignore_errors=True)


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
