"""The queues that run training rounds, and the RQ job entry point.

Production: ``RQQueue`` puts the project id on a Redis queue; ``beal worker`` processes (the GPU
container) call ``wiring.train_project``. Embedded default (no REDIS_URL): ``ThreadQueue`` runs the same
``attempts.attempt_round`` in one thread of the API process. Only the project id crosses a queue. Idle checks
(``triggers.check_idle``) are delayed jobs: rq's scheduler, run by ``beal worker``, or a timer thread.

Both queues treat a round alike: one that fails is retried after each of ``ROUND_RETRY_SECONDS`` in turn (rq's
``Retry``; a timer here), keeping its job id; one whose project is locked is deferred (rq runs the ``Retry`` it
returns; a timer here), so no worker waits on a lock. ``alive`` says whether a job may still run (a pending slot
held by a job that may not is stale: ``triggers``).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from datetime import datetime, timedelta, timezone
from functools import partial

import rq
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from beal_backend.worker import triggers
from beal_backend.worker.attempts import attempt_round
from beal_backend.worker.embedding import embed_tasks
from beal_backend.worker.runtime import Runtime

log = logging.getLogger(__name__)
# a check that failed (Redis away for a moment) freed its slot first: retried, it cannot leave events unchecked
CHECK_RETRY = rq.Retry(max=3, interval=[10, 60, 300])
# an import job that found its project locked by a round (fresh_tasks.LOCK_WAIT) tries again after it
EMBED_RETRY = rq.Retry(max=5, interval=[30, 60, 120, 300, 600])
WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED)  # may still run


def worker_alive(conn, hostname: str) -> bool:
    """Whether an rq worker of this host is registered: a worker renews its registration with every heartbeat,
    and a dead one's expires (rq's worker_ttl), so this is the worker container's health check."""
    return any(w.hostname == hostname for w in rq.Worker.all(connection=conn))


def embedding_queue_name(training_queue: str) -> str:
    """Workers take jobs from the training queue first: embedding imported tasks only fills idle time."""
    return f"{training_queue}-embedding"


class RQQueue:
    def __init__(self, conn, name: str, timeout: int, retries: list[int] | None = None):
        self.q = rq.Queue(name, connection=conn, serializer=JSONSerializer, default_timeout=timeout)
        self.low = rq.Queue(
            embedding_queue_name(name), connection=conn, serializer=JSONSerializer, default_timeout=timeout
        )
        self.timeout = timeout  # RQ's default of 180 s would kill every real training run
        retries = retries or [30, 120, 600]
        self.round_retry = rq.Retry(max=len(retries), interval=retries)

    def enqueue_embedding(self, project: str, job_id: str | None = None) -> str:
        job_id = job_id or triggers.new_job_id("embed", project)
        return self._put(self.low, "embed_project", job_id, project, 24 * 3600, retry=EMBED_RETRY)

    def enqueue(self, project: str, job_id: str | None = None) -> str:
        """A failed round is retried by rq (a killed work horse's too), under the same job id."""
        job_id = job_id or triggers.new_job_id("train", project)
        return self._put(self.q, "train_project", job_id, project, 7 * 24 * 3600, retry=self.round_retry)

    def enqueue_idle_check(self, project: str, delay: float) -> str:
        """Due after ``delay`` s: the scheduler of a ``beal worker`` (rq's, in the worker) moves it to the queue."""
        at = datetime.now(timezone.utc) + timedelta(seconds=delay + 1)  # rq rounds due times down to the second
        job_id = triggers.new_job_id("idle", project)
        return self._put(self.q, "check_idle", job_id, project, 3600, at=at, retry=CHECK_RETRY)

    def alive(self, job_id: str) -> bool:
        try:
            job = Job.fetch(job_id, connection=self.q.connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return False
        return job.get_status(refresh=False) in WAITING

    def _put(
        self,
        queue: rq.Queue,
        entry: str,
        job_id: str,
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
            job_id=job_id,
            job_timeout=self.timeout,
            result_ttl=result_ttl,
            failure_ttl=7 * 24 * 3600,
            retry=retry,
        )
        return job.id


class ThreadQueue:
    TRAIN, EMBED = 0, 1  # priorities: a waiting round runs before waiting embedding jobs

    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self._q: queue.PriorityQueue = queue.PriorityQueue()
        self._seq = itertools.count()  # FIFO within a priority
        self._mu = threading.Lock()
        self._live: set[str] = set()  # queued, running, or waiting on a timer to be retried or deferred
        threading.Thread(target=self._work, name="beal-training", daemon=True).start()

    def enqueue(self, project: str, job_id: str | None = None) -> str:
        job_id = job_id or triggers.new_job_id("train", project)
        self._put(self.TRAIN, project, job_id)
        return job_id

    def enqueue_embedding(self, project: str, job_id: str | None = None) -> str:
        job_id = job_id or triggers.new_job_id("embed", project)
        self._put(self.EMBED, project, job_id)
        return job_id

    def enqueue_idle_check(self, project: str, delay: float) -> str:
        """A timer thread runs the check itself: it only reads counters and may enqueue a round here."""
        job_id = triggers.new_job_id("idle", project)
        self._later(delay, self._check_idle, project, job_id)
        return job_id

    def alive(self, job_id: str) -> bool:
        with self._mu:
            return job_id in self._live

    def _put(self, kind: int, project: str, job_id: str, attempt: int = 0) -> None:
        with self._mu:
            self._live.add(job_id)
        self._q.put((kind, next(self._seq), project, job_id, attempt))

    @staticmethod
    def _later(delay: float, fn, *args) -> None:
        timer = threading.Timer(delay, fn, args)
        timer.daemon = True
        timer.start()

    def _check_idle(self, project: str, job_id: str) -> None:
        try:
            triggers.check_idle(self.rt, project)
        except Exception:  # a lost check only delays training until the next annotation or Start Training
            log.exception("idle check %s of project %s failed", job_id, project)

    def join(self) -> None:
        """Wait until every queued job has run (tests, CLI); retries and deferrals wait on timers."""
        self._q.join()

    def _work(self) -> None:
        while True:
            kind, _, project, job_id, attempt = self._q.get()
            try:
                if kind == self.TRAIN:
                    self._round(project, job_id, attempt)
                else:
                    self._embed(project, job_id)
            finally:
                self._q.task_done()

    def _round(self, project: str, job_id: str, attempt: int) -> None:
        """As rq runs a round: a failure is retried after the next of the waits, a deferral after its own."""
        waits = self.rt.settings.round_retries
        retry_in = waits[attempt] if attempt < len(waits) else None
        again = None
        try:
            result = attempt_round(project, self.rt, job_id, retry_in=retry_in)
            if result.get("outcome") == "deferred":
                again = (result["retry_in"], attempt)
        except Exception as e:  # the thread must outlive any one job; a round logged its own traceback
            log.error("training job %s for project %s failed: %s: %s", job_id, project, type(e).__name__, e)
            again = None if retry_in is None else (retry_in, attempt + 1)
        if again is None:
            with self._mu:
                self._live.discard(job_id)
        else:
            self._later(again[0], self._put, self.TRAIN, project, job_id, again[1])

    def _embed(self, project: str, job_id: str) -> None:
        try:
            embed_tasks(project, self.rt, job_id)
        except Exception:  # a failed embedding is redone by the next round
            log.exception("embedding job %s of project %s failed", job_id, project)
        finally:
            with self._mu:
                self._live.discard(job_id)
