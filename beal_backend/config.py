"""Settings: the only place that reads the environment. Names follow Label Studio's own ML examples."""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass, field, replace
from typing import Mapping

from .acquisition import STRATEGIES
from .scoring import ScoringConfig
from .training import TrainConfig


@dataclass(frozen=True)
class Settings:
    label_studio_url: str | None = None  # LABEL_STUDIO_URL; else the hostname /setup reports
    label_studio_api_key: str | None = field(default=None, repr=False)  # legacy token or personal access token
    basic_auth_user: str | None = None
    basic_auth_pass: str | None = field(default=None, repr=False)
    model_dir: str = "./model_store"
    redis_url: str | None = None  # unset: embedded in-process worker thread
    queue_name: str = "beal-training"
    port: int = 9090
    log_level: str = "INFO"
    train_every: int = 10  # retrain after this many new/changed annotations (START_TRAINING: at once)
    min_annotations: int = 2  # fewer labeled tasks than this: the job is skipped with a reason
    job_timeout: int = 6 * 3600  # seconds; RQ's default of 180 s is far too short for training
    lock_ttl: int = 60  # s; a running job renews its project lock, so a killed worker frees it within this
    predict_passes: int = 10  # T when /predict must score in the request (no cached score)
    max_request_bytes: int = 32 * 1024 * 1024
    max_text_chars: int = 1_000_000  # longer texts are refused (the model reads 510 word-pieces anyway)
    promotion_margin: float = 0.02  # a new version may be this much worse in held-out F1 and still serve
    keep_versions: int = 5  # versions kept besides the current one (oldest pruned first)
    ls_timeout: float = 30.0
    ls_retries: int = 4
    train: TrainConfig = TrainConfig()
    scoring: ScoringConfig = ScoringConfig(passes=100, scope="last-2")
    learner: str = "auto"  # frozen | finetune | auto (finetune on CUDA, frozen on CPU): learners.py
    strategy: str = "beal"  # the acquisition strategy whose order the pushed scores give (acquisition.STRATEGIES)

    def basic_auth_header(self) -> str | None:
        """The Authorization header our webhooks must carry when basic auth is on."""
        if not self.basic_auth_user:
            return None
        token = base64.b64encode(f"{self.basic_auth_user}:{self.basic_auth_pass or ''}".encode()).decode()
        return f"Basic {token}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        device = env.get("DEVICE") or _auto_device()
        train = replace(
            TrainConfig(),
            encoder=env.get("ENCODER", TrainConfig.encoder),
            epochs=int(env.get("EPOCHS", TrainConfig.epochs)),
            batch_size=int(env.get("BATCH_SIZE", TrainConfig.batch_size)),
            lr_encoder=float(env.get("LEARNING_RATE", TrainConfig.lr_encoder)),
            val_fraction=float(env.get("VAL_FRACTION", TrainConfig.val_fraction)),
            min_val=int(env.get("MIN_VAL", TrainConfig.min_val)),
            seed=int(env.get("SEED", TrainConfig.seed)),
            pooling=_choice(env, "POOLING", "auto", ("auto", "cls", "mean")),
            device=device,
        )
        scoring = ScoringConfig(
            passes=int(env.get("MC_PASSES", 100)),
            scope=env.get("MC_SCOPE", "last-2"),
            seed=int(env.get("SEED", 0)),
            device=device,
        )
        return cls(
            label_studio_url=env.get("LABEL_STUDIO_URL") or None,
            label_studio_api_key=env.get("LABEL_STUDIO_API_KEY") or None,
            basic_auth_user=env.get("BASIC_AUTH_USER") or None,
            basic_auth_pass=env.get("BASIC_AUTH_PASS") or None,
            model_dir=env.get("MODEL_DIR", cls.model_dir),
            redis_url=env.get("REDIS_URL") or None,
            port=int(env.get("PORT", cls.port)),
            log_level=env.get("LOG_LEVEL", cls.log_level).upper(),
            train_every=int(env.get("TRAIN_EVERY", cls.train_every)),
            lock_ttl=int(env.get("LOCK_TTL", cls.lock_ttl)),
            min_annotations=int(env.get("MIN_ANNOTATIONS", cls.min_annotations)),
            predict_passes=int(env.get("PREDICT_PASSES", cls.predict_passes)),
            max_request_bytes=int(env.get("MAX_REQUEST_BYTES", cls.max_request_bytes)),
            promotion_margin=float(env.get("PROMOTION_MARGIN", cls.promotion_margin)),
            keep_versions=int(env.get("KEEP_VERSIONS", cls.keep_versions)),
            train=train,
            scoring=scoring,
            learner=_choice(env, "LEARNER", cls.learner, ("auto", "frozen", "finetune")),
            strategy=_choice(env, "STRATEGY", cls.strategy, tuple(STRATEGIES)),
        )


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: choose one of {', '.join(allowed)}")
    return value


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _auto_device() -> str:
    import torch  # only when no DEVICE is given; never initialises CUDA in the API process otherwise

    return "cuda" if torch.cuda.is_available() else "cpu"
