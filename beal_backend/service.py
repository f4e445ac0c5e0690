"""The ML backend's use cases, shaped like label-studio-ml's ``LabelStudioMLBase``:
``setup``, ``predict(tasks, context=None, **kwargs)`` and ``fit(event, data, **kwargs)``.

No HTTP here (api.py) and no training in a request: ``fit`` only counts and enqueues.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import replace

from . import jobs, learners
from .labelconfig import LabelSchema, parse_label_config
from .runtime import Runtime
from .store import check_id

log = logging.getLogger(__name__)
UNTRAINED = "beal-untrained"  # what /setup reports before the first model (stable, so LS predicts once)
ANNOTATION_EVENTS = {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"}


class BadRequest(ValueError):
    """Input the caller must fix: answered with HTTP 400 and this message."""


class NotFound(LookupError):
    """An unknown project: answered with HTTP 404."""


def project_id(raw) -> str:
    """Label Studio sends ``"<id>.<created_at epoch>"`` to /setup and /predict, an int in webhooks."""
    if isinstance(raw, bool) or raw is None:
        raise BadRequest("missing project")
    text = str(raw).split(".", 1)[0]
    if not text.isdigit():
        raise BadRequest(f"invalid project {str(raw)[:64]!r}: expected '<id>' or '<id>.<timestamp>'")
    return check_id(text, "project")


class BealModel:
    model_class = "BealModel"

    def __init__(self, rt: Runtime, cache_size: int = 4):
        self.rt = rt
        self._models: OrderedDict = OrderedDict()  # (project, version) -> (TrainedModel, scores), LRU
        self._cache_size = cache_size
        self._mu = threading.Lock()
        self._webhooks_checked: set[str] = set()  # projects whose webhook credentials this process handled

    # ---- /setup

    def setup(self, project, schema, hostname=None, access_token=None, **_) -> dict:
        pid = project_id(project)
        parse_label_config(schema)  # refuse a config we cannot serve now, not at the first round
        old = self.rt.store.read_project(pid) or {}
        info = {**old, "label_config": schema}
        if hostname:
            info["hostname"] = str(hostname)
        if access_token:
            info["access_token"] = str(access_token)
        if info != old:  # Label Studio calls /setup before every prediction run: write only what changed
            self.rt.store.write_project(pid, info)
        if self.rt.settings.basic_auth_user and pid not in self._webhooks_checked:
            self._webhooks_checked.add(pid)
            threading.Thread(target=self._authorize_webhooks, args=(pid,), daemon=True).start()
        return {"model_version": self.model_version(pid)}

    def _authorize_webhooks(self, pid: str, tries: int = 10, wait: float = 1.0) -> None:
        """Background: Label Studio creates the project's webhook just after connecting, without our basic-auth
        credentials; add them so annotation webhooks are accepted. Best effort, logged."""
        header = self.rt.settings.basic_auth_header()
        for _ in range(tries):
            time.sleep(wait)
            try:
                if self.rt.client(pid).authorize_webhooks(int(pid), header):
                    log.info("project %s: added basic-auth credentials to its webhook", pid)
                    return
            except Exception as e:  # Label Studio unreachable or no API key: webhooks need the header added by hand
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
        trained, cached = self._model(pid, version)
        if tuple(trained.labels) != schema.labels:
            log.warning("project %s: model %s was trained on other labels; no predictions until retrained", pid, version)
            return {"results": [[] for _ in tasks], "model_version": version}
        return {"results": self._predictions(version, trained, cached, tasks, schema), "model_version": version}

    def _predictions(self, version, trained, cached: dict, tasks, schema: LabelSchema) -> list:
        out: list = [None] * len(tasks)
        todo_idx, todo_texts = [], []
        for i, task in enumerate(tasks):
            text, why = self._text(task, schema)
            if why:
                log.warning("task %s skipped: %s", task.get("id") if isinstance(task, dict) else "?", why)
                out[i] = []
                continue
            hit = cached.get(str(task.get("id")))
            if hit is not None:
                out[i] = self._prediction(schema, hit, version)
            else:
                todo_idx.append(i)
                todo_texts.append(text)
        if todo_idx:  # not in the pool when the version was scored: score now with a bounded T
            cfg = replace(self.rt.settings.scoring, passes=self.rt.settings.predict_passes)
            fresh = jobs.score_pool(trained, todo_idx, todo_texts, schema, cfg)["tasks"]  # keyed by position: ids may repeat
            for i in todo_idx:
                out[i] = self._prediction(schema, fresh[str(i)], version)
        return out

    def _text(self, task, schema: LabelSchema) -> tuple[str | None, str | None]:
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            return None, "task has no data object"
        text = task["data"].get(schema.value_key)
        if not isinstance(text, str) or not text.strip():
            return None, f"task has no text in data.{schema.value_key}"
        if len(text) > self.rt.settings.max_text_chars:
            return None, f"text longer than {self.rt.settings.max_text_chars} characters"
        return text, None

    @staticmethod
    def _prediction(schema: LabelSchema, hit: dict, version: str) -> dict:
        return {"result": schema.result(hit["choices"]), "score": hit["score"], "model_version": version}

    def _model(self, pid: str, version: str):
        """(model, cached scores by task id) of a version, loaded once per process (versions never change)."""
        key = (pid, version)
        with self._mu:  # concurrent requests for a version being loaded wait for that one load
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            self._models[key] = (self.rt.store.load(pid, version), self.rt.store.scores(pid, version)["tasks"])
            while len(self._models) > self._cache_size:
                self._models.popitem(last=False)
            return self._models[key]

    # ---- /webhook

    def fit(self, event, data, **_) -> dict:
        """Count annotation events and enqueue a round when due; returns what was decided."""
        project = (data or {}).get("project")
        if not isinstance(project, dict) or "id" not in project:
            raise BadRequest("webhook payload has no project.id")
        pid = project_id(project["id"])
        if self.rt.store.read_project(pid) is None and not (self.rt.settings.label_studio_url and self.rt.settings.label_studio_api_key):
            raise NotFound(f"project {pid} was never set up with this backend (connect it in Label Studio first)")
        if event in ANNOTATION_EVENTS:
            deleted = data.get("annotations")
            changed = len(deleted) if event == "ANNOTATIONS_DELETED" and isinstance(deleted, list) else 1
            count = self.rt.coordinator.add_annotations(pid, max(changed, 1))
            if count < self.rt.settings.train_every:
                return {"status": "counted", "project": pid, "annotations_since_training": count}
        elif event == "TASKS_CREATED":
            return self._trigger_embedding(pid)
        elif event != "START_TRAINING":
            return {"status": "ignored", "action": event}
        return self._trigger(pid)

    def _trigger_embedding(self, pid: str) -> dict:
        """Imported tasks: a low-priority job caches their features (frozen learner only), coalesced."""
        if learners.resolve(self.rt.settings.learner, self.rt.settings.train.device) != "frozen":
            return {"status": "ignored", "action": "TASKS_CREATED", "reason": "the finetune learner caches no features"}
        key = jobs.embed_key(pid)
        if not self.rt.coordinator.claim_pending(key):
            return {"status": "coalesced", "project": pid, "job": "embedding"}
        try:
            job_id = self.rt.queue.enqueue_embedding(pid)
        except Exception:
            self.rt.coordinator.release_pending(key)
            raise
        return {"status": "queued", "project": pid, "job": "embedding", "job_id": job_id}

    def _trigger(self, pid: str) -> dict:
        if not self.rt.coordinator.claim_pending(pid):
            return {"status": "coalesced", "project": pid}  # the pending job will read everything
        self.rt.coordinator.reset_annotations(pid)
        try:
            job_id = self.rt.queue.enqueue(pid)
        except Exception:
            self.rt.coordinator.release_pending(pid)
            raise
        return {"status": "queued", "project": pid, "job_id": job_id}

    # ---- status, registry

    def jobs(self) -> dict:
        out, statuses = {}, self.rt.coordinator.statuses()
        for pid in sorted(set(self.rt.store.projects()) | set(statuses)):
            st = self._reap(pid, statuses.get(pid, {}))
            out[pid] = {
                "model_version": self.model_version(pid),
                "pending": self.rt.coordinator.is_pending(pid),
                "current_job": st.get("current"),
                "last_job": st.get("last"),
            }
        return out

    def _reap(self, pid: str, st: dict) -> dict:
        """A job recorded as running whose project lock is gone died with its worker: record it as failed."""
        cur = st.get("current") or {}
        if cur.get("state") == "started" and not self.rt.coordinator.is_running(pid):
            reason = "the worker stopped during the job (killed or crashed); the previous version keeps serving and the next trigger retrains"
            self.rt.coordinator.put_status(pid, {"id": cur.get("id"), "state": "failed", "error": reason})
            self.rt.coordinator.append_log(pid, {"time": time.time(), "id": cur.get("id"), "state": "failed", "message": reason})
            st = self.rt.coordinator.statuses().get(pid, st)
        return st

    def versions(self, project) -> list[dict]:
        """Every stored version, oldest first, with what it was trained on and how it was judged."""
        pid = project_id(project)
        if not self.rt.store.project_dir(pid).is_dir():
            raise NotFound(f"project {pid} has no model store")
        current, out = self.rt.store.current(pid), []
        for v in self.rt.store.versions(pid):
            meta = self.rt.store.metadata(pid, v)
            gate = meta.get("promotion") or {}
            promoted = gate.get("promoted", True)
            out.append({
                "version": v,
                "status": "current" if v == current else ("promoted" if promoted else "rejected"),
                "reason": gate.get("reason"),
                "created_at": meta.get("created_at"),
                "n_annotations": meta.get("n_annotations"),
                "val_micro_f1": (gate.get("candidate") or {}).get("micro_f1", meta.get("metrics", {}).get("val_micro_f1")),
                "val_macro_f1": (gate.get("candidate") or {}).get("macro_f1", meta.get("metrics", {}).get("val_macro_f1")),
                "mean_ec": meta.get("mean_score"),
                "train_seconds": meta.get("train_seconds"),
                "score_seconds": meta.get("score_seconds"),
            })
        return out

    def rollback(self, project, version) -> dict:
        pid = project_id(project)
        if not isinstance(version, str) or version not in self.rt.store.versions(pid):
            raise NotFound(f"project {pid} has no version {str(version)[:80]!r}")
        return jobs.rollback(pid, version, self.rt)

    def status_projects(self) -> list[dict]:
        """What the status page shows, one dict per project."""
        out = []
        for pid, st in self.jobs().items():
            current = st["model_version"] if st["model_version"] != UNTRAINED else None
            versions = self.versions(pid) if self.rt.store.project_dir(pid).is_dir() else []
            meta = self.rt.store.metadata(pid, current) if current else {}
            scores = self.rt.store.scores(pid, current) if current else {"tasks": {}}
            out.append({
                "project": pid,
                "current_version": current,
                "pending": st["pending"],
                "current_job": st["current_job"],
                "last_job": st["last_job"],
                "versions": versions,
                "label_counts": meta.get("label_counts", {}),
                "ec_scores": jobs.pool_ec(scores, len(meta.get("labels", []))),
                "job_log": self.rt.coordinator.job_log(pid),
            })
        return out
