"""What the worker functions use of the runtime they are given (``rt``), as Protocols defined in this layer:
``wiring.Runtime`` builds the real one above it (mypy checks it matches wherever the wiring, the service or the
CLI hands it to a worker function), and tests pass stand-ins. The workers never import the wiring."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from beal_backend.config import Settings
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.engine.training import TrainConfig
from beal_backend.labelstudio.client import LabelStudioClient
from beal_backend.store.versions import ModelStore
from beal_backend.worker.coordination import Coordinator


class JobQueue(Protocol):
    """Where the API puts jobs: only the project id crosses (RQQueue on Redis, ThreadQueue in process)."""

    def enqueue(self, project: str, job_id: str | None = None) -> str: ...

    def enqueue_embedding(self, project: str, job_id: str | None = None) -> str: ...

    def enqueue_idle_check(self, project: str, delay: float) -> str: ...

    def alive(self, job_id: str) -> bool:
        """Whether the job is queued, scheduled (a retry or a deferral), or running."""
        ...


class Runtime(Protocol):
    settings: Settings
    store: ModelStore
    coordinator: Coordinator
    queue: JobQueue | None  # None where no job is enqueued (an rq worker's embedding job)
    train: TrainConfig  # what a round trains with
    scoring: ScoringConfig  # how a round scores the pool
    preload: Callable[[str, str], None] | None  # (project, version): loads it into this process's /predict cache

    def client(self, project: str) -> LabelStudioClient: ...

    def project_settings(self, project: str, info: dict | None = None) -> Settings: ...

    @property
    def webhook_authorization(self) -> str: ...


def job_queue(rt: Runtime) -> JobQueue:
    """``rt``'s queue, for the functions that enqueue or ask whether a job may still run."""
    if rt.queue is None:
        raise RuntimeError("this runtime has no job queue (built without build_runtime)")
    return rt.queue
