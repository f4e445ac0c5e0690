"""The queues that run training rounds, and the RQ job entry point.

Production: ``RQQueue`` puts the project id on a Redis queue; ``beal worker`` processes (the GPU
container) call ``wiring.train_project``. Embedded default (no REDIS_URL): ``ThreadQueue`` runs the same
``jobs.run_round`` in one thread of the API process. Only the project id crosses a queue. Idle checks
(``triggers.check_idle``) are delayed jobs: rq's scheduler, run by ``beal worker``, or a timer thread.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import uuid
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Protocol

import rq
from rq.serializers import JSONSerializer

from beal_backend.worker import triggers
from beal_backend.worker.embedding import embed_tasks
from beal_backend.worker.rounds import run_round

log = logging.getLogger(__name__)
# a check that failed (Redis away for a moment) freed its slot first: retried, it cannot leave events unchecked
CHECK_RETRY = rq.Retry(max=3, interval=[10, 60, 300])
# an import job that found its project locked by a round (fresh_tasks.LOCK_WAIT) tries again after it
EMBED_RETRY = rq.Retry(max=5, interval=[30, 60, 120, 300, 600])


def worker_alive(conn, hostname: str) -> bool:
    """Whether an rq worker of this host is registered: a worker renews its registration with every heartbeat,
    and a dead one's expires (rq's worker_ttl), so this is the worker container's health check."""
    return any(w.hostname == hostname for w in rq.Worker.all(connection=conn))


def embedding_queue_name(training_queue: str) -> str:
    """Workers take jobs from the training queue first: embedding imported tasks only fills idle time."""
    return f"{training_queue}-embedding"


class JobQueue(Protocol):
    """Where the API puts jobs: only the project id crosses (RQQueue on Redis, ThreadQueue in process)."""

    def enqueue(self, project: str) -> str: ...

    def enqueue_embedding(self, project: str) -> str: ...

    def enqueue_idle_check(self, project: str, delay: float) -> str: ...


class RQQueue:
    def __init__(self, conn, name: str, timeout: int):
        self.q = rq.Queue(name, connection=conn, serializer=JSONSerializer, default_timeout=timeout)
        self.low = rq.Queue(
            embedding_queue_name(name), connection=conn, serializer=JSONSerializer, default_timeout=timeout
        )
        self.timeout = timeout  # RQ's default of 180 s would kill every real training run

    def enqueue_embedding(self, project: str) -> str:
        return self._put(
            self.low, "embed_project", f"embed-{project}", project, result_ttl=24 * 3600, retry=EMBED_RETRY
        )

    def enqueue(self, project: str) -> str:
        return self._put(self.q, "train_project", f"train-{project}", project, result_ttl=7 * 24 * 3600)

    def enqueue_idle_check(self, project: str, delay: float) -> str:
        """Due after ``delay`` s: the scheduler of a ``beal worker`` (rq's, in the worker) moves it to the queue."""
        at = datetime.now(timezone.utc) + timedelta(seconds=delay + 1)  # rq rounds due times down to the second
        return self._put(self.q, "check_idle", f"idle-{project}", project, result_ttl=3600, at=at, retry=CHECK_RETRY)

    def _put(
        self,
        queue: rq.Queue,
        entry: str,
        prefix: str,
        project: str,
        result_ttl: int,
        at: datetime | None = None,
        retry: rq.Retry | None = None,
    ) -> str:
        """Enqueue ``wiring.<entry>(project)``, at once or at ``at``: only the project id crosses the queue."""
        put = partial(queue.enqueue_at, at) if at else queue.enqueue
        job = put(
            f"beal_backend.wiring.{entry}",
            project,
            job_id=f"{prefix}-{uuid.uuid4().hex[:8]}",
            job_timeout=self.timeout,
            result_ttl=result_ttl,
            failure_ttl=7 * 24 * 3600,
            retry=retry,
        )
        return job.id


class ThreadQueue:
    TRAIN, EMBED = 0, 1  # priorities: a waiting round runs before waiting embedding jobs

    def __init__(self, runtime):  # wiring.Runtime
        self.rt = runtime
        self._q: queue.PriorityQueue = queue.PriorityQueue()
        self._seq = itertools.count()  # FIFO within a priority
        threading.Thread(target=self._work, name="beal-training", daemon=True).start()

    def enqueue(self, project: str) -> str:
        job_id = f"train-{project}-{uuid.uuid4().hex[:8]}"
        self._q.put((self.TRAIN, next(self._seq), project, job_id))
        return job_id

    def enqueue_embedding(self, project: str) -> str:
        job_id = f"embed-{project}-{uuid.uuid4().hex[:8]}"
        self._q.put((self.EMBED, next(self._seq), project, job_id))
        return job_id

    def enqueue_idle_check(self, project: str, delay: float) -> str:
        """A timer thread runs the check itself: it only reads counters and may enqueue a round here."""
        job_id = f"idle-{project}-{uuid.uuid4().hex[:8]}"
        timer = threading.Timer(delay, self._check_idle, (project, job_id))
        timer.daemon = True
        timer.start()
        return job_id

    def _check_idle(self, project: str, job_id: str) -> None:
        try:
            triggers.check_idle(self.rt, project)
        except Exception:  # a lost check only delays training until the next annotation or Start Training
            log.exception("idle check %s of project %s failed", job_id, project)

    def join(self) -> None:
        """Wait until every queued job has run (tests, CLI)."""
        self._q.join()

    def _work(self) -> None:
        while True:
            kind, _, project, job_id = self._q.get()
            try:
                if kind == self.TRAIN:
                    run_round(project, self.rt, job_id)
                else:
                    embed_tasks(project, self.rt, job_id)
            except Exception as e:  # the thread must outlive any one job; a round logged its own traceback
                if kind == self.EMBED:  # a failed embedding is redone by the next round
                    log.exception("embedding job %s of project %s failed", job_id, project)
                else:
                    log.error("training job %s for project %s failed: %s: %s", job_id, project, type(e).__name__, e)
            finally:
                self._q.task_done()
