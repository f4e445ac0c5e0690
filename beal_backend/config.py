"""Settings: the only place that reads the environment. Names follow Label Studio's own ML examples.

Every setting is checked when the process starts: a bad one raises ``SettingsError`` with one line
naming the variable and what it accepts. Reading settings imports no torch: the training and scoring
configs are built from them by ``wiring`` (``Runtime.train`` / ``Runtime.scoring``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from urllib.parse import urlsplit

from beal_backend import acquisition  # the strategy registry: pure NumPy, so reading settings imports no torch


class SettingsError(ValueError):
    """A setting the process cannot run with; the message names the variable and the allowed values."""


@dataclass(frozen=True)
class Rule:
    env: str  # the environment variable
    parse: Callable[[str], object]
    ok: Callable[[object], bool]
    allowed: str  # what the error message offers instead


def _int(lo: int, hi: int | None = None) -> tuple:
    text = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
    return int, (lambda v: v >= lo and (hi is None or v <= hi)), text


def _float(lo: float, hi: float, hi_open: bool = False, lo_open: bool = False) -> tuple:
    text = f"a number {'>' if lo_open else '>='} {lo} and {'<' if hi_open else '<='} {hi}"
    return float, (lambda v: (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)), text


def _match(pattern: str, allowed: str) -> tuple:
    return str, (lambda v: re.fullmatch(pattern, v) is not None), allowed


def host_key(url: str) -> str:
    """One spelling per Label Studio address, for comparing /setup hostnames: scheme and host in lower case,
    no trailing slash (Label Studio sends its LABEL_STUDIO_HOST as typed)."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


URL = r"(?i)https?://[^\s,/]+(/[^\s,]*)?"


def _hosts(raw: str) -> tuple[str, ...]:
    urls = [u.strip() for u in raw.split(",") if u.strip()]
    if not all(re.fullmatch(URL, u) for u in urls):
        raise ValueError(raw)
    return tuple(host_key(u) for u in urls)


def _one_of(names: tuple[str, ...]) -> tuple:
    return str, (lambda v: v in names), "one of " + ", ".join(names)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LEARNERS = ("auto", "frozen", "finetune")  # auto: finetune on CUDA, frozen on a CPU (engine.learners)
POOLINGS = ("auto", "cls", "mean")
STRATEGIES = tuple(acquisition.STRATEGIES)  # STRATEGY: a name of the registry
# field name -> rule; MC_SCOPE mirrors mc_dropout.Scope.parse without importing torch
RULES = {
    name: Rule(env, *spec)
    for name, env, spec in [
        ("label_studio_url", "LABEL_STUDIO_URL", _match(r"https?://\S+", "an http:// or https:// URL")),
        (
            "label_studio_hosts",
            "LABEL_STUDIO_HOSTS",
            (
                _hosts,
                lambda v: all(re.fullmatch(URL, u) for u in v),
                "comma-separated http:// or https:// URLs",
            ),
        ),
        ("webhook_token", "WEBHOOK_TOKEN", _match(r"[A-Za-z0-9._~+/=-]{16,}", "16 or more letters, digits or ._~+/=-")),
        ("redis_url", "REDIS_URL", _match(r"(rediss?|unix)://\S*", "a redis://, rediss:// or unix:// URL")),
        ("model_dir", "MODEL_DIR", _match(r".+", "a folder path")),
        ("port", "PORT", _int(1, 65535)),
        ("log_level", "LOG_LEVEL", (str.upper, lambda v: v in LOG_LEVELS, "one of " + ", ".join(LOG_LEVELS))),
        ("train_every", "TRAIN_EVERY", _int(1)),
        ("train_idle_seconds", "TRAIN_IDLE_SECONDS", _int(0, 7 * 24 * 3600)),
        ("min_annotations", "MIN_ANNOTATIONS", _int(1)),
        ("lock_ttl", "LOCK_TTL", _int(1)),
        ("round_retry_seconds", "ROUND_RETRY_SECONDS", _match(r"\d+(,\d+)*", "waits in s, e.g. 30,120,600")),
        ("predict_passes", "PREDICT_PASSES", _int(1)),
        ("predict_seconds", "PREDICT_SECONDS", _float(0, 3600, lo_open=True)),
        ("max_request_bytes", "MAX_REQUEST_BYTES", _int(1)),
        ("ls_timeout", "LS_TIMEOUT", _float(1, 3600)),
        ("promotion_margin", "PROMOTION_MARGIN", _float(-1, 1)),  # < 0: a new version must be better by that much
        ("keep_versions", "KEEP_VERSIONS", _int(0)),
        ("encoder", "ENCODER", _match(r"\S+", "a Hugging Face model name, a local folder or minilm")),
        ("epochs", "EPOCHS", _int(1)),
        ("min_steps", "MIN_STEPS", _int(0)),
        ("batch_size", "BATCH_SIZE", _int(1)),
        ("learning_rate", "LEARNING_RATE", _float(0, 1, lo_open=True)),
        ("val_fraction", "VAL_FRACTION", _float(0, 1, hi_open=True)),
        ("min_val", "MIN_VAL", _int(1)),
        ("seed", "SEED", _int(0)),
        ("mc_passes", "MC_PASSES", _int(1)),
        ("mc_scope", "MC_SCOPE", _match(r"full|head|last-[1-9][0-9]*", "full, head or last-<k> with k >= 1")),
        ("device", "DEVICE", _match(r"auto|cpu|cuda(:[0-9]+)?|mps", "auto, cpu, cuda, cuda:<n> or mps")),
        ("learner", "LEARNER", _one_of(LEARNERS)),
        ("pooling", "POOLING", _one_of(POOLINGS)),
        ("strategy", "STRATEGY", _one_of(STRATEGIES)),
    ]
}
SECRETS = {"webhook_token"}  # checked like the others, never echoed in an error
# what a project may set for itself, in its Label Studio model connection's extra_params (config.project_params)
PROJECT_PARAMS = ("train_every", "train_idle_seconds")
PAIRS = (  # set both or neither: a half-set pair would fail open (auth) or mix credentials (Label Studio)
    ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "label_studio_url", "label_studio_api_key"),
    ("BASIC_AUTH_USER", "BASIC_AUTH_PASS", "basic_auth_user", "basic_auth_pass"),
)


@dataclass(frozen=True)
class Settings:
    label_studio_url: str | None = None  # with LABEL_STUDIO_API_KEY; both unset: the pair /setup received
    label_studio_api_key: str | None = field(default=None, repr=False)  # legacy token or personal access token
    label_studio_hosts: tuple[str, ...] = ()  # the only hostnames a /setup may name (host_key form); empty: any
    webhook_token: str | None = field(default=None, repr=False)  # unset: generated and kept in MODEL_DIR
    basic_auth_user: str | None = None
    basic_auth_pass: str | None = field(default=None, repr=False)
    model_dir: str = "./model_store"
    redis_url: str | None = None  # unset: embedded in-process worker thread
    queue_name: str = "beal-training"
    port: int = 9090
    log_level: str = "INFO"
    train_every: int = 10  # retrain after this many new/changed annotations (START_TRAINING: at once)
    train_idle_seconds: int = 300  # ... or when no annotation came for this long and some are untrained; 0: off
    min_annotations: int = 2  # fewer labeled tasks than this: the job is skipped with a reason
    job_timeout: int = 6 * 3600  # seconds; RQ's default of 180 s is far too short for training
    lock_ttl: int = 60  # s; a running job renews its project lock, so a killed worker frees it within this
    round_retry_seconds: str = "30,120,600"  # a failed round is retried after each of these waits, in turn
    predict_passes: int = 10  # T when /predict must score in the request (no cached score)
    predict_seconds: float = 30.0  # /predict stops scoring uncached tasks after this (Label Studio waits 100 s)
    max_request_bytes: int = 32 * 1024 * 1024
    max_text_chars: int = 1_000_000  # longer texts are refused (the model reads 510 word-pieces anyway)
    promotion_margin: float = 0.02  # a new version may be this much worse in held-out F1 and still serve
    keep_versions: int = 5  # versions kept besides the current one (oldest pruned first)
    ls_timeout: float = 30.0  # s, per Label Studio API call
    ls_retries: int = 4
    # training and scoring (-> ``train`` / ``scoring``); defaults as training.TrainConfig
    encoder: str = "minilm"  # "minilm" = the packaged MiniLM BERT
    epochs: int = 8
    min_steps: int = 1000
    batch_size: int = 16
    learning_rate: float = 5e-5
    val_fraction: float = 0.1
    min_val: int = 10
    seed: int = 0
    mc_passes: int = 100
    mc_scope: str = "last-2"
    device: str = "auto"  # auto: CUDA when available
    learner: str = "auto"  # frozen | finetune | auto (finetune on CUDA, frozen on CPU)
    pooling: str = "auto"  # cls | mean | auto (mean for sentence-transformers checkpoints)
    strategy: str = "beal"  # whose acquisition order the pushed scores give

    def __post_init__(self):
        for f in fields(self):
            rule, value = RULES.get(f.name), getattr(self, f.name)
            if rule is not None and value is not None and not rule.ok(value):
                shown = "<hidden>" if f.name in SECRETS else repr(value)  # not even a bad secret is echoed
                raise SettingsError(f"{rule.env}={shown} is invalid: use {rule.allowed}")
        for a, b, fa, fb in PAIRS:
            if bool(getattr(self, fa)) != bool(getattr(self, fb)):
                set_, unset = (a, b) if getattr(self, fa) else (b, a)
                raise SettingsError(f"{set_} is set but {unset} is empty: set both {a} and {b}, or neither")

    @property
    def round_retries(self) -> list[int]:
        """The waits (s) before each retry of a failed round (``ROUND_RETRY_SECONDS``)."""
        return [int(x) for x in self.round_retry_seconds.split(",")]

    @property
    def torch_device(self) -> str:
        return _auto_device() if self.device == "auto" else self.device

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; an empty variable counts as unset. ``overrides``: variables given
        another way (command-line options), checked by the same rules. Raises ``SettingsError``."""
        env = {**(os.environ if env is None else env), **(overrides or {})}
        values: dict = {
            "label_studio_api_key": env.get("LABEL_STUDIO_API_KEY") or None,
            "basic_auth_user": env.get("BASIC_AUTH_USER") or None,
            "basic_auth_pass": env.get("BASIC_AUTH_PASS") or None,
        }
        for name, rule in RULES.items():
            raw = env.get(rule.env, "").strip()
            if raw:
                try:
                    values[name] = rule.parse(raw)
                except ValueError:
                    shown = "<hidden>" if name in SECRETS else repr(raw)
                    raise SettingsError(f"{rule.env}={shown} is invalid: use {rule.allowed}") from None
        return cls(**values)


def project_params(raw) -> dict:
    """A project's own settings from Label Studio's ``extra_params`` (a JSON object; a JSON string is read too):
    only ``PROJECT_PARAMS``, each checked by its environment variable's rule. Raises ``SettingsError``."""
    if isinstance(raw, str) and raw.strip():
        try:
            raw = json.loads(raw)
        except ValueError:
            raise SettingsError('extra_params is not JSON: use an object such as {"train_every": 20}') from None
    if raw in (None, "", {}):
        return {}
    if not isinstance(raw, dict):
        raise SettingsError('extra_params must be a JSON object such as {"train_every": 20}')
    out = {}
    for key, value in raw.items():
        if key not in PROJECT_PARAMS:
            allowed = ", ".join(PROJECT_PARAMS)
            raise SettingsError(f"extra_params {str(key)[:80]!r} is not a per-project setting: use {allowed}")
        rule = RULES[key]
        try:
            parsed = None if isinstance(value, bool) else rule.parse(str(value).strip())
        except ValueError:
            parsed = None
        if parsed is None or not rule.ok(parsed):
            raise SettingsError(f"extra_params {key}={str(value)[:80]!r} is invalid: use {rule.allowed}")
        out[key] = parsed
    return out


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@lru_cache(maxsize=1)
def _auto_device() -> str:
    import torch  # only when DEVICE is auto, and only when a training or scoring config is first needed

    return "cuda" if torch.cuda.is_available() else "cpu"
