"""The ML backend's use cases, shaped like label-studio-ml's ``LabelStudioMLBase``:
``setup``, ``predict(tasks, context=None, **kwargs)`` and ``fit(event, data, **kwargs)``.

No HTTP here (app.py) and no training in a request: ``fit`` only counts and enqueues.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import replace

import redis

from beal_backend.config import SettingsError, project_params
from beal_backend.labelstudio.label_config import LabelSchema, parse_label_config
from beal_backend.service import host_trust
from beal_backend.service.model_cache import ModelCache
from beal_backend.store import scores as score_cache
from beal_backend.store.versions import check_id
from beal_backend.wiring import Runtime
from beal_backend.worker import label_change, pool_scores, publishing, rounds, triggers

log = logging.getLogger(__name__)
UNTRAINED = "beal-untrained"  # what /setup reports before the first model (stable, so LS predicts once)
PREDICT_CHUNK = 256  # uncached texts scored between two looks at the /predict deadline
PREDICT_FULL_PASSES_UP_TO = 1000  # uncached texts that get all PREDICT_PASSES; more get proportionally fewer
ANNOTATION_EVENTS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"}


class BadRequest(ValueError):
    """Input the caller must fix: answered with HTTP 400 and this message."""


class NotFound(LookupError):
    """An unknown project: answered with HTTP 404."""


_PROJECT = re.compile(r"([1-9][0-9]{0,17})(?:\.[0-9]{1,20})?")


def project_id(raw) -> str:
    """The one canonical id of a Label Studio project: its number without leading zeros.

    Label Studio sends ``"<id>.<created_at epoch>"`` to /setup and /predict and an int in webhooks. Anything
    else ("02", "1.2.3", 1.5, 1e3, "-1") is refused, so one project never gets two folders, locks or pages.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    match = _PROJECT.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        shown = raw[:64] if isinstance(raw, str) else raw if isinstance(raw, (int, float)) else type(raw).__name__
        raise BadRequest(
            f"invalid project {shown!r}: expected a project number '<id>' or '<id>.<timestamp>' (no leading zeros)"
        )
    return check_id(match.group(1), "project")


class BealModel:
    model_class = "BealModel"

    def __init__(self, rt: Runtime, cache_size: int = 4):
        self.rt = rt
        self.versions_cache = ModelCache(rt.store, cache_size)
        rt.preload = self.versions_cache.preload  # a round in this process loads a version before it serves
        self._webhooks_checked: set[str] = set()  # projects whose webhook credentials this process handled

    # ---- /setup

    def setup(self, project, schema, hostname=None, access_token=None, extra_params=None) -> dict:
        pid = project_id(project)
        parse_label_config(schema)  # refuse a config we cannot serve now, not at the first round
        try:  # Label Studio sends the connection's extra_params with every /setup: the stored ones follow them
            params = project_params(extra_params)
        except SettingsError as e:
            raise BadRequest(str(e)) from None
        old = self.rt.store.read_project(pid)
        link = host_trust.link(self.rt, pid, old, hostname, access_token)  # refused: nothing is written
        info = {k: v for k, v in (old or {}).items() if k not in ("params", *host_trust.LINK)}
        info |= link | {"label_config": schema}
        if params:
            info["params"] = params
        if info != old:  # Label Studio calls /setup before every prediction run: write only what changed
            self.rt.store.write_project(pid, info)
        self._label_set_hook(pid, (old or {}).get("label_config"), schema)
        if self.rt.settings.basic_auth_user and pid not in self._webhooks_checked:
            self._webhooks_checked.add(pid)
            threading.Thread(target=self._authorize_webhooks, args=(pid,), daemon=True).start()
        return {"model_version": self.model_version(pid)}

    def _label_set_hook(self, pid: str, old_config, config: str) -> None:
        """A label set first seen now that the current version does not serve starts a round (label_change).
        Best effort: the next round or annotation sees the change too, so a Redis error must not fail /setup."""
        try:
            if label_change.seen_at_setup(self.rt, pid, old_config, config):
                triggers.enqueue_round(self.rt, pid)
        except redis.exceptions.RedisError as e:
            log.warning("project %s: a round for the changed label set was not enqueued: %s", pid, e)

    def _authorize_webhooks(self, pid: str, tries: int = 10, wait: float = 1.0) -> None:
        """Background: Label Studio creates the project's webhook just after connecting, without credentials; give
        it the webhook token (never the operator's password) so annotation webhooks are accepted. Best effort."""
        header = self.rt.webhook_authorization
        for _ in range(tries):
            time.sleep(wait)
            try:
                if self.rt.client(pid).authorize_webhooks(int(pid), header):
                    log.info("project %s: gave its webhook the webhook token", pid)
                    return
            except Exception as e:  # Label Studio unreachable or no API key: the next round tries again
                log.warning("project %s: could not update the webhook's credentials: %s", pid, e)
                return

    def model_version(self, project: str) -> str:
        return self.rt.store.current(project) or UNTRAINED

    # ---- /predict

    def predict(self, tasks, context=None, project=None, label_config=None, **_) -> dict:
        pid = project_id(project)
        info = self.rt.store.read_project(pid) or {}
        config = label_config or info.get("label_config")
        if not config:
            raise BadRequest(f"no label_config given and project {pid} was never set up")
        schema = parse_label_config(config)
        if not isinstance(tasks, list):
            raise BadRequest("tasks must be a list")
        version = self.rt.store.current(pid)
        if version is None:
            log.info("project %s: no model trained yet; returning no predictions for %d tasks", pid, len(tasks))
            return {"results": [[] for _ in tasks], "model_version": UNTRAINED}
        meta, cached = self.versions_cache.scored(pid, version)  # cached answers never wait for a model load
        if not schema.serves(meta["labels"], meta.get("hparams", {}).get("single_label", False)):
            log.warning(
                "project %s: model %s was trained on other labels or choice mode; no predictions until retrained",
                pid,
                version,
            )
            return {"results": [[] for _ in tasks], "model_version": version}
        return {"results": self._predictions(pid, version, cached, tasks, schema), "model_version": version}

    def _predictions(self, pid: str, version: str, cached: dict, tasks, schema: LabelSchema) -> list:
        out: list = [None] * len(tasks)
        todo_idx: list[int] = []
        todo_texts: list[str] = []
        for i, task in enumerate(tasks):
            text, why = self._text(task, schema)
            if why or text is None:
                log.warning("task %s skipped: %s", task.get("id") if isinstance(task, dict) else "?", why)
                out[i] = []
                continue
            hit = score_cache.cached(cached, task.get("id"), text)  # only a score of this very text
            if hit is not None:
                out[i] = self._prediction(schema, hit, version)
            else:
                todo_idx.append(i)
                todo_texts.append(text)
        if todo_idx:  # not in the pool when the version was scored: score now, within a time bound
            trained = self.versions_cache.model(pid, version)  # waits only for a load of this version
            fresh = self._score_bounded(trained, todo_idx, todo_texts)  # keyed by position: ids may repeat
            unanswered = 0
            for i, text in zip(todo_idx, todo_texts):
                hit = fresh.get(str(i))
                out[i] = self._prediction(schema, hit, version) if hit else []
                unanswered += hit is None
                if hit and isinstance(tasks[i].get("id"), int):  # the next request for this text is a cache hit
                    cached[str(tasks[i]["id"])] = {**hit, score_cache.TEXT_HASH: score_cache.text_hash(text)}
            if unanswered:
                log.warning(
                    "%d of %d uncached tasks not scored within PREDICT_SECONDS; the next round scores them",
                    unanswered,
                    len(todo_idx),
                )
        return out

    def _score_bounded(self, trained, idx: list[int], texts: list[str]) -> dict:
        """Score in chunks until ``predict_seconds`` have passed (Label Studio stores nothing after its 100-s
        timeout, so a late full answer is worth less than a prompt partial one). Large requests get fewer
        passes: T * texts stays <= predict_passes * PREDICT_FULL_PASSES_UP_TO, and T >= 1."""
        s = self.rt.settings
        passes = max(1, min(s.predict_passes, s.predict_passes * PREDICT_FULL_PASSES_UP_TO // len(idx)))
        cfg = replace(self.rt.scoring, passes=passes)
        deadline, fresh = time.monotonic() + s.predict_seconds, {}
        for start in range(0, len(idx), PREDICT_CHUNK):
            if start and time.monotonic() >= deadline:
                break
            part = slice(start, start + PREDICT_CHUNK)
            fresh.update(pool_scores.score_pool(trained, idx[part], texts[part], cfg)["tasks"])
        return fresh

    def _text(self, task, schema: LabelSchema) -> tuple[str | None, str | None]:
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            return None, "task has no data object"
        text, why = schema.text_of(task["data"])
        if why or text is None:
            return None, why or "task has no text"
        if len(text) > self.rt.settings.max_text_chars:
            return None, f"text longer than {self.rt.settings.max_text_chars} characters"
        return text, None

    @staticmethod
    def _prediction(schema: LabelSchema, hit: dict, version: str) -> dict:
        return {"result": schema.result(hit["choices"]), "score": hit["score"], "model_version": version}

    # ---- /webhook

    def fit(self, event, data, **_) -> dict:
        """Count annotation events and enqueue a round when due; returns what was decided."""
        project = (data or {}).get("project")
        if not isinstance(project, dict) or "id" not in project:
            raise BadRequest("webhook payload has no project.id")
        pid = project_id(project["id"])
        info = self.rt.store.read_project(pid)
        if info is None and not (self.rt.settings.label_studio_url and self.rt.settings.label_studio_api_key):
            raise NotFound(f"project {pid} was never set up with this backend (connect it in Label Studio first)")
        if event in ANNOTATION_EVENTS:
            deleted = data.get("annotations")
            changed = len(deleted) if event == "ANNOTATIONS_DELETED" and isinstance(deleted, list) else 1
            count = self.rt.coordinator.add_annotations(pid, max(changed, 1))
            s = self.rt.project_settings(pid, info or {})
            # (a round due now reads this event: no idle check needed; while no version serves a changed label
            # set, every event is: the first round with MIN_ANNOTATIONS labels under it trains)
            if count < s.train_every and not label_change.awaits_round(self.rt, pid):
                triggers.note_annotation_event(self.rt, pid, s.train_idle_seconds)
                return {"status": "counted", "project": pid, "annotations_since_training": count}
        elif event == "TASKS_CREATED":  # a low-priority job embeds them (frozen) and scores them (both learners)
            return triggers.enqueue_embedding(self.rt, pid)
        elif event == "PROJECT_UPDATED":  # a PATCH of the project: a changed label set starts a round
            if not label_change.seen_in_update(self.rt, pid, project):
                return {"status": "ignored", "action": event}
        elif event != "START_TRAINING":
            return {"status": "ignored", "action": event}
        return triggers.enqueue_round(self.rt, pid)

    # ---- status, registry

    def jobs(self) -> dict:
        out, statuses = {}, self.rt.coordinator.statuses()
        for pid in sorted(set(self.rt.store.projects()) | set(statuses)):
            st = statuses.get(pid, {})  # a dead worker's job already reads as failed (coordination.statuses)
            out[pid] = {
                "model_version": self.model_version(pid),
                "pending": self.rt.coordinator.is_pending(pid),
                "annotations_since_training": self.rt.coordinator.owed(pid),  # not yet in a round that ended well
                "current_job": st.get("current"),
                "last_job": st.get("last"),
            }
        return out

    def versions(self, project) -> list[dict]:
        """Every stored version, oldest first, with what it was trained on and how it was judged."""
        pid = project_id(project)
        if not self.rt.store.project_dir(pid).is_dir():
            raise NotFound(f"project {pid} has no model store")
        current, out = self.rt.store.current(pid), []
        for v in self.rt.store.versions(pid):
            meta = self.rt.store.metadata(pid, v)
            gate = meta.get("promotion") or {}
            status, publish_note = publishing.version_status(self.rt.store, pid, v, current, meta)
            out.append(
                {
                    "version": v,
                    "status": status,
                    "reason": gate.get("reason"),
                    **({"publish": publish_note} if publish_note else {}),
                    "created_at": meta.get("created_at"),
                    "n_annotations": meta.get("n_annotations"),
                    "val_micro_f1": (gate.get("candidate") or {}).get(
                        "micro_f1", meta.get("metrics", {}).get("val_micro_f1")
                    ),
                    "val_macro_f1": (gate.get("candidate") or {}).get(
                        "macro_f1", meta.get("metrics", {}).get("val_macro_f1")
                    ),
                    "mean_ec": meta.get("mean_score"),
                    "train_seconds": meta.get("train_seconds"),
                    "score_seconds": meta.get("score_seconds"),
                }
            )
        return out

    def rollback(self, project, version) -> dict:
        pid = project_id(project)
        if not isinstance(version, str) or version not in self.rt.store.versions(pid):
            raise NotFound(f"project {pid} has no version {str(version)[:80]!r}")
        return rounds.rollback(pid, version, self.rt)

    def status_projects(self) -> list[dict]:
        """What the status page shows, one dict per project."""
        out = []
        for pid, st in self.jobs().items():
            current = st["model_version"] if st["model_version"] != UNTRAINED else None
            versions = self.versions(pid) if self.rt.store.project_dir(pid).is_dir() else []
            meta = self.rt.store.metadata(pid, current) if current else {}
            scores = self.rt.store.scores(pid, current) if current else {"tasks": {}}
            own = self.rt.project_settings(pid)
            out.append(
                {
                    "project": pid,
                    "current_version": current,
                    "pending": st["pending"],
                    "annotations_since_training": st["annotations_since_training"],
                    "train_every": own.train_every,
                    "train_idle_seconds": own.train_idle_seconds,
                    "current_job": st["current_job"],
                    "last_job": st["last_job"],
                    "versions": versions,
                    "label_counts": meta.get("label_counts", {}),
                    "ec_scores": pool_scores.pool_ec(
                        scores, len(meta.get("labels", [])), meta.get("hparams", {}).get("single_label", False)
                    ),
                    "job_log": self.rt.coordinator.job_log(pid),
                    "label_notice": label_change.notice(self.rt, pid, st["current_job"]),
                }
            )
        return out
