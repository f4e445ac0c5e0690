"""The service as subprocesses: the API (``python -m beal_backend serve``) and any number of workers, on a Label
Studio and a Redis, sharing a model store. One harness for the end-to-end tests (``conftest.py``'s fixtures),
the round benchmark (``benchmarks/bench_round.py``, whose worker is timed) and ``scripts/status_screenshot.py``.
No pytest here: benchmarks and scripts import it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from ..ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_healthy(url: str, timeout: float = 60.0) -> None:
    """Until ``url`` answers 200 (asked every 0.2 s); RuntimeError after ``timeout`` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


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
    """The service (API process, started and healthy on construction) and any number of workers
    (``worker()``), sharing a model store (``<logs>/model_store``) and Redis (``redis_url``; "" is embedded
    mode). Each process appends to ``<logs>/<name>.log``. ``settings`` are environment variables of every
    process and win over the defaults here; a worker's own ``env`` wins over them."""

    WORKER = (sys.executable, "-m", "beal_backend", "worker")  # the worker's command, before --name

    def __init__(self, label_studio, logs: Path, redis_url: str, health_timeout: float = 60.0, **settings):
        url, key = label_studio
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = logs
        self.env = {
            **os.environ,
            "LABEL_STUDIO_URL": url,
            "LABEL_STUDIO_API_KEY": key,
            "REDIS_URL": redis_url,
            "MODEL_DIR": str(logs / "model_store"),
            "PORT": str(self.port),
            "HF_HUB_OFFLINE": "1",
            "DEVICE": "cpu",
            "PYTHONPATH": str(ROOT),
            **{k: str(v) for k, v in settings.items()},
        }
        self.procs: list[subprocess.Popen] = []
        self.api = self._spawn(
            [sys.executable, "-m", "beal_backend", "serve", "--host", "127.0.0.1", "--port", str(self.port)], "api", {}
        )
        wait_healthy(f"{self.url}/health", health_timeout)

    def worker(self, name="w1", **env) -> subprocess.Popen:
        return self._spawn([*self.WORKER, "--name", f"{name}-{self.port}"], name, env)

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
