"""Real components for end-to-end tests: a Label Studio started by ``label_studio.py``, Redis (see
``tests/redis_server.py``), the service as a subprocess (`python -m beal_backend serve`) and `rq worker` processes.
Nothing is mocked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .. import redis_server
from ..ports import free_port
from .label_studio import LabelStudio

ROOT = Path(__file__).resolve().parents[2]
# a db of its own, flushed by these tests (REDIS_URL's server, else 127.0.0.1:6379, else a private one)
REDIS_URL = f"{redis_server.base_url()}/7"


def _wait(url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


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


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


class Backend:
    """The service (API process) and any number of rq workers, sharing a model store and Redis."""

    def __init__(self, label_studio, tmp_path, **overrides):
        url, key = label_studio
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = tmp_path
        self.env = {
            **os.environ,
            "LABEL_STUDIO_URL": url,
            "LABEL_STUDIO_API_KEY": key,
            "REDIS_URL": REDIS_URL,
            "MODEL_DIR": str(tmp_path / "model_store"),
            "PORT": str(self.port),
            "HF_HUB_OFFLINE": "1",
            "TRAIN_EVERY": "10",
            "TRAIN_IDLE_SECONDS": "0",  # rounds come from the count; test_idle_training turns idle checks on
            "EPOCHS": "2",
            "MC_PASSES": "8",
            "MC_SCOPE": "full",
            "SEED": "3",
            "DEVICE": "cpu",
            "LEARNER": "finetune",  # the fault tests time the encoder's training; frozen rounds are opted into
            "PYTHONPATH": str(ROOT),
            **{k: str(v) for k, v in overrides.items()},
        }
        self.procs: list[subprocess.Popen] = []
        self.api = self._spawn(
            [sys.executable, "-m", "beal_backend", "serve", "--host", "127.0.0.1", "--port", str(self.port)], "api", {}
        )
        _wait(f"{self.url}/health")

    def worker(self, name="w1", **env) -> subprocess.Popen:
        return self._spawn([sys.executable, "-m", "beal_backend", "worker", "--name", f"{name}-{self.port}"], name, env)

    def _spawn(self, args, name, env):
        log = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 - the child process writes to it until stopped
        p = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**self.env, **{k: str(v) for k, v in env.items()}},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(p)
        return p

    def __getitem__(self, key):  # backend["url"], backend["env"], backend["logs"]
        return {"url": self.url, "env": self.env, "logs": self.logs}[key]

    def stop(self):
        for p in self.procs:
            for child in children(p.pid):  # rq work horses run in process groups of their own
                os.kill(child, signal.SIGKILL)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


@pytest.fixture
def backend_factory(label_studio, redis_db, tmp_path):
    started = []

    def make(**overrides):
        b = Backend(label_studio, tmp_path, **overrides)
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
