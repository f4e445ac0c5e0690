"""Wiring: Settings -> store, coordinator, queue and Label Studio clients (the one place that builds them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from beal_backend.config import Settings
from beal_backend.worker.coordination import Coordinator, LocalCoordinator, RedisCoordinator
from beal_backend.labelstudio.client import LabelStudioClient
from beal_backend.store.versions import ModelStore


class NotConfiguredError(RuntimeError):
    """Label Studio's URL or key is unknown for a project (no env and no /setup seen)."""


@dataclass
class Runtime:
    settings: Settings
    store: ModelStore
    coordinator: Coordinator
    queue: object = field(default=None)  # has enqueue(project) -> job id
    redis: redis.Redis | None = None

    @classmethod
    def from_env(cls) -> "Runtime":
        return cls.build(Settings.from_env())

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        """Store and coordinator; the queue is attached by ``queues.build_runtime`` where jobs are enqueued."""
        store = ModelStore(settings.model_dir, settings.train.device, settings.lock_ttl)
        if not settings.redis_url:
            return cls(settings, store, LocalCoordinator())
        conn = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=0.5)  # /health and /webhook must answer within LS's 1 s
        return cls(settings, store, RedisCoordinator(conn, settings.lock_ttl, settings.job_timeout), redis=conn)

    def client(self, project: str) -> LabelStudioClient:
        """URL and key are one pair, never mixed: the environment's (then a /setup hostname is never
        called), else both from what Label Studio sent to /setup. So the operator's key only ever goes
        to the operator's URL, whatever an unauthenticated /setup claims."""
        s = self.settings
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
        return LabelStudioClient(url, key, timeout=s.ls_timeout, retries=s.ls_retries)
