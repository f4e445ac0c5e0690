"""Wiring: Settings -> engine configs, store, coordinator, queue and Label Studio clients (the one place that
builds them), and the RQ entry points, which rebuild all of it from a worker's environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import redis
import rq

from beal_backend.config import PROJECT_PARAMS, Settings
from beal_backend.engine import learners
from beal_backend.engine.scoring import ScoringConfig
from beal_backend.engine.training import TrainConfig
from beal_backend.labelstudio.client import LabelStudioClient
from beal_backend.store.secrets import webhook_token
from beal_backend.store.versions import ModelStore
from beal_backend.worker import triggers
from beal_backend.worker.attempts import attempt_round
from beal_backend.worker.coordination import Coordinator
from beal_backend.worker.embedding import embed_tasks
from beal_backend.worker.local_coordination import LocalCoordinator
from beal_backend.worker.queues import RQQueue, ThreadQueue
from beal_backend.worker.redis_coordination import RedisCoordinator
from beal_backend.worker.runtime import JobQueue


class NotConfiguredError(RuntimeError):
    """Label Studio's URL or key is unknown for a project (no env and no /setup seen)."""


@dataclass
class Runtime:
    settings: Settings
    store: ModelStore
    coordinator: Coordinator
    queue: JobQueue | None = None  # attached by build_runtime
    redis: redis.Redis | None = None
    train: TrainConfig = None  # type: ignore[assignment]  # what a round trains with; default: from the settings
    scoring: ScoringConfig = None  # type: ignore[assignment]  # how a round scores the pool; likewise
    # (project, version) -> None: loads a version into this process's /predict cache (set by the API's model)
    preload: Callable[[str, str], None] | None = None

    def __post_init__(self):
        self.train = self.train or train_config(self.settings)
        self.scoring = self.scoring or scoring_config(self.settings)

    @classmethod
    def from_env(cls) -> Runtime:
        return cls.build(Settings.from_env())

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Engine configs, store and coordinator; the queue is attached by ``build_runtime`` where jobs are enqueued."""
        train = train_config(settings)
        store = ModelStore(settings.model_dir, train.device, settings.lock_ttl)
        if not settings.redis_url:
            return cls(settings, store, LocalCoordinator(), train=train)
        conn = redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=0.5
        )  # /health and /webhook must answer within LS's 1 s
        return cls(settings, store, RedisCoordinator(conn, settings.lock_ttl), redis=conn, train=train)

    def project_settings(self, project: str, info: dict | None = None) -> Settings:
        """The settings with the project's own applied (Label Studio's extra_params, checked and stored at /setup);
        ``info``: the project's stored record, when the caller has read it already."""
        info = self.store.read_project(project) if info is None else info
        params = (info or {}).get("params") or {}
        own = {k: params[k] for k in PROJECT_PARAMS if k in params}
        return replace(self.settings, **own) if own else self.settings

    def client(self, project: str) -> LabelStudioClient:
        """URL and key are one pair, never mixed: the environment's (then a /setup hostname is never
        called), else both from what Label Studio sent to /setup. So the operator's key only ever goes
        to the operator's URL, whatever an unauthenticated /setup claims."""
        s = self.settings
        url: str | None
        key: str | None
        if s.label_studio_url:
            url, key = s.label_studio_url, s.label_studio_api_key
        else:
            info = self.store.read_project(project) or {}
            url, key = info.get("hostname"), info.get("access_token")
        if not url or not key:
            raise NotConfiguredError(
                f"no Label Studio URL and API key for project {project}: set LABEL_STUDIO_URL and "
                "LABEL_STUDIO_API_KEY, or reconnect the model in Label Studio so /setup sends both"
            )
        return self.client_for(url, key)

    def client_for(self, url: str, key: str) -> LabelStudioClient:
        return LabelStudioClient(url, key, timeout=self.settings.ls_timeout, retries=self.settings.ls_retries)

    @property
    def learner(self) -> str:
        """The learner rounds train with: ``LEARNER``, ``auto`` resolved for this runtime's device."""
        return learners.resolve(self.settings.learner, self.train.device)

    @cached_property
    def webhook_authorization(self) -> str:
        """The Authorization header Label Studio's webhooks carry under basic auth: the webhook token (WEBHOOK_TOKEN,
        else the one kept in MODEL_DIR), which authorises /webhook only; never the operator's password."""
        return f"Bearer {self.settings.webhook_token or webhook_token(self.settings.model_dir)}"


def train_config(s: Settings) -> TrainConfig:
    """The training config of a round (``Settings`` stays free of torch-importing modules)."""
    return TrainConfig(
        encoder=s.encoder,
        epochs=s.epochs,
        min_steps=s.min_steps,
        batch_size=s.batch_size,
        lr_encoder=s.learning_rate,
        val_fraction=s.val_fraction,
        min_val=s.min_val,
        seed=s.seed,
        device=s.torch_device,
        pooling=s.pooling,
    )


def scoring_config(s: Settings) -> ScoringConfig:
    """How a round scores the pool: T = ``MC_PASSES`` under ``MC_SCOPE``."""
    return ScoringConfig(passes=s.mc_passes, scope=s.mc_scope, seed=s.seed, device=s.torch_device)


def build_runtime(settings: Settings) -> Runtime:
    """A runtime with the queue its settings ask for (the API process and the CLI's ``serve``)."""
    rt = Runtime.build(settings)
    if settings.redis_url:
        rt.queue = RQQueue(rt.redis, settings.queue_name, settings.job_timeout, settings.round_retries)
    else:
        rt.queue = ThreadQueue(rt)
    return rt


DEFERRALS = 100_000  # rq counts the Retry a deferred round returns; a round may wait for the lock this often


def train_project(project: str) -> dict | rq.Retry:
    """RQ entry point: a JSON-serialisable argument, the runtime rebuilt from the worker's environment. A round
    whose project is locked returns rq's ``Retry``: rq runs the same job again later, and the worker is free."""
    job = rq.get_current_job()
    rt = build_runtime(Settings.from_env())  # with the queue: a deferred or failed round checks who waits
    if job is None:  # called directly (not by a worker): no retries
        return attempt_round(project, rt, f"train-{project}-direct")
    retry_in = job.get_retry_interval() if job.should_retry else None
    result = attempt_round(project, rt, job.id, retry_in=retry_in)
    if result.get("outcome") == "deferred":
        return rq.Retry(max=DEFERRALS, interval=int(result["retry_in"]))
    return result


def check_idle(project: str) -> dict:
    """RQ entry point of the delayed idle check; it may enqueue a round, so it needs the queue too."""
    return triggers.check_idle(build_runtime(Settings.from_env()), project)


def embed_project(project: str) -> dict:
    """RQ entry point of the low-priority embedding job (``TASKS_CREATED``)."""
    job = rq.get_current_job()
    return embed_tasks(project, Runtime.from_env(), job_id=job.id if job else None)
