"""Which Redis the suite uses (tests/redis_server.py): REDIS_URL, BEAL_TEST_REDIS, 6379, or a private one."""

from __future__ import annotations

import pytest
import redis

from tests import redis_server


def never(url):
    raise AssertionError("must not probe 127.0.0.1:6379 when a URL is given")


def test_redis_url_wins_and_loses_its_database():
    env = {"REDIS_URL": "redis://:pw@cache.example:6380/3", "BEAL_TEST_REDIS": "redis://other:1"}
    assert redis_server.resolve(env, answers=never) == "redis://:pw@cache.example:6380"


def test_older_beal_test_redis_still_works():
    assert (
        redis_server.resolve({"BEAL_TEST_REDIS": "redis://127.0.0.1:6394"}, answers=never) == "redis://127.0.0.1:6394"
    )


def test_default_server_when_it_answers_else_a_private_one():
    assert redis_server.resolve({}, answers=lambda url: url == "redis://127.0.0.1:6379") == "redis://127.0.0.1:6379"
    assert (
        redis_server.resolve({}, answers=lambda url: False, start=lambda: "redis://127.0.0.1:5555")
        == "redis://127.0.0.1:5555"
    )


def test_not_a_redis_url_is_refused():
    with pytest.raises(ValueError, match="not a redis:// URL"):
        redis_server.resolve({"REDIS_URL": "http://127.0.0.1:6379"})


def test_private_server_really_runs():
    if redis_server.shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    url = redis_server.start_private()
    conn = redis.Redis.from_url(url + "/0")
    conn.set("k", "v")
    assert conn.get("k") == b"v" and url != redis_server.DEFAULT
