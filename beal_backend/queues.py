"""The queues that run training rounds, and the RQ job entry point.

Production: ``RQQueue`` puts the project id on a Redis queue; ``beal worker`` processes (the GPU
container) call ``train_project``. Embedded default (no REDIS_URL): ``ThreadQueue`` runs the same
``jobs.run_round`` in one thread of the API process. Only the project id crosses a queue.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid

import rq
from rq.serializers import JSONSerializer

from .config import Settings
from .jobs import run_round
from .runtime import Runtime

log = logging.getLogger(__name__)


def build_runtime(settings: Settings) -> Runtime:
    """A runtime with the queue its settings ask for (the API process and the CLI's ``serve``)."""
    rt = Runtime.build(settings)
    rt.queue = RQQueue(rt.redis, settings.queue_name, settings.job_timeout) if settings.redis_url else ThreadQueue(rt)
    return rt


def train_project(project: str) -> dict:
    """RQ entry point: a JSON-serialisable argument, the runtime rebuilt from the worker's environment."""
    job = rq.get_current_job()
    return run_round(project, Runtime.from_env(), job_id=job.id if job else None)


class RQQueue:
    def __init__(self, conn, name: str, timeout: int):
        self.q = rq.Queue(name, connection=conn, serializer=JSONSerializer, default_timeout=timeout)
        self.timeout = timeout  # RQ's default of 180 s would kill every real training run

    def enqueue(self, project: str) -> str:
        job = self.q.enqueue(
            "beal_backend.queues.train_project", project,
            job_id=f"train-{project}-{uuid.uuid4().hex[:8]}", job_timeout=self.timeout,
            result_ttl=7 * 24 * 3600, failure_ttl=7 * 24 * 3600,
        )
        return job.id


class ThreadQueue:
    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=self._work, name="beal-training", daemon=True).start()

    def enqueue(self, project: str) -> str:
        job_id = f"train-{project}-{uuid.uuid4().hex[:8]}"
        self._q.put((project, job_id))
        return job_id

    def join(self) -> None:
        """Wait until every queued job has run (tests, CLI)."""
        self._q.join()

    def _work(self) -> None:
        while True:
            project, job_id = self._q.get()
            try:
                run_round(project, self.rt, job_id)
            except Exception as e:  # the training thread must outlive any one job; the round logged its traceback
                log.error("training job %s for project %s failed: %s: %s", job_id, project, type(e).__name__, e)
            finally:
                self._q.task_done()
