"""Real components for end-to-end tests: a Label Studio started by ``label_studio.py``, Redis (see
``tests/redis_server.py``), the service as a subprocess (`python -m beal_backend serve`) and `rq worker` processes
(``backend.py``'s Backend).
Nothing is mocked."""

from __future__ import annotations

import os

import pytest

from .. import redis_server
from .backend import Backend
from .label_studio import LabelStudio

# a db of its own, flushed by these tests (REDIS_URL's server, else 127.0.0.1:6379, else a private one)
REDIS_URL = f"{redis_server.base_url()}/7"


@pytest.fixture(scope="session")
def label_studio():
    """A fresh Label Studio 1.23.2 for the session (installed on first use into the cache folder)."""
    server = LabelStudio(instance=os.environ.get("BEAL_TEST_LS_INSTANCE", "beal-e2e"))
    yield server.start()
    server.stop()


@pytest.fixture
def redis_db():
    with redis_server.flushed(REDIS_URL) as conn:
        yield conn


# the environment of every test backend (a test's overrides win)
TEST_SETTINGS = {
    "TRAIN_EVERY": 10,
    "TRAIN_IDLE_SECONDS": 0,  # rounds come from the count; test_idle_training turns idle checks on
    "EPOCHS": 2,
    "MIN_STEPS": 0,  # a round of the few texts here trains EPOCHS epochs, seconds on a CPU
    "MC_PASSES": 8,
    "MC_SCOPE": "full",
    "SEED": 3,
    "LEARNER": "finetune",  # the fault tests time the encoder's training; frozen rounds are opted into
}


@pytest.fixture
def backend_factory(label_studio, redis_db, tmp_path):
    started = []

    def make(**overrides):
        b = Backend(label_studio, tmp_path, REDIS_URL, **{**TEST_SETTINGS, **overrides})
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def backend(backend_factory):
    """API + one rq worker on the default test settings."""
    b = backend_factory()
    b.worker()
    return b
