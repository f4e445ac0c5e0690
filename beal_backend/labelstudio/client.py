"""The only module that talks to Label Studio's API (through label-studio-sdk).

Every call gets bounded retries with exponential backoff on connection errors and 5xx answers.
The API key is never logged.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.core.request_options import RequestOptions

from beal_backend.labelstudio.auth import LabelStudioAuth

log = logging.getLogger(__name__)
T = TypeVar("T")
PAGE_SIZE = 1000
# Label Studio's data-manager filter for tasks with at least one annotation (its counter excludes cancelled ones)
ANNOTATED = json.dumps(
    {
        "filters": {
            "conjunction": "and",
            "items": [
                {"filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number", "value": 0}
            ],
        }
    }
)


def _unscored(version: str) -> str:
    """The data-manager filter for unlabeled tasks (no annotation but cancelled ones, as ``ANNOTATED`` counts)
    without a prediction of ``version`` (Label Studio matches each listed version as a substring; ours are unique)."""
    items = [
        {"filter": "filter:tasks:total_annotations", "operator": "equal", "type": "Number", "value": 0},
        {
            "filter": "filter:tasks:predictions_model_versions",
            "operator": "not_contains",
            "type": "List",
            "value": [version],  # a list: Label Studio iterates it (a string would be read letter by letter)
        },
    ]
    return json.dumps({"filters": {"conjunction": "and", "items": items}})


# Predictions per import request. Label Studio 1.23 (unless its flag
# fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short is on) recounts the counters of every
# task of the project after each import request, so a request costs about as much as the project is large:
# 10,000 predictions next to a previous version: one request 5.8 s, ten of 1,000 51 s; 50,000 in one request: 37 s
# (benchmarks/bench_round.py, its --io mode).
PUSH_CHUNK = 50_000
# Calls whose work grows with the rows they touch get this much read timeout per row on top of LS_TIMEOUT:
# about 4x the slowest measured (deleting a version: 2.7 ms per prediction; importing: 0.8 ms).
SECONDS_PER_ROW = 0.01
# The SDK retries 5xx answers on its own; that would re-send an import whose reply was lost and
# duplicate predictions. Our loop below is the only retry: it undoes a failed push first.
ONCE: RequestOptions = {"max_retries": 0}
# what a call to Label Studio may fail with: an HTTP error answer, a network error, or an answer that does
# not parse (ValueError covers JSON and pydantic validation errors); anything else is a bug and propagates
LS_ERRORS = (ApiError, httpx.HTTPError, ValueError)
_POOLS: dict[tuple[int, str], httpx.Client] = {}  # (process id, Label Studio URL) -> its connection pool
_POOLS_LOCK = threading.Lock()
CONFIRM_TIMEOUT = 2  # s: /setup's check that the project exists must answer within Label Studio's 3 s


class LabelStudioError(RuntimeError):
    """Label Studio could not be reached or refused a call after the retries."""


@dataclass(frozen=True)
class Task:
    id: int
    data: dict
    annotations: list[dict]  # not cancelled, newest first


class LabelStudioClient:
    def __init__(self, url: str, api_key: str, timeout: float = 30.0, retries: int = 4, backoff: float = 0.5):
        self.url = url.rstrip("/")
        self._http = _pool(self.url)
        self._ls = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout, httpx_client=self._http)
        self._auth = LabelStudioAuth(api_key, lambda: self._ls.tokens.refresh(refresh=api_key).access)
        self._timeout, self._retries, self._backoff = timeout, retries, backoff

    # ---- reads

    def label_config(self, project: int) -> str:
        return self._call(lambda: self._ls.projects.get(id=project, request_options=ONCE).label_config or "")

    def tasks(self, project: int, annotations: bool = True) -> list[Task]:
        """Every task of the project; with ``annotations``, each annotated task's usable annotations.

        Two reads: the full records (annotations, predictions ...) of the annotated tasks only, then the id
        and data of every task. Reading every task in full carries its predictions too: 3.9x slower at 10,000
        tasks (benchmarks/bench_round.py --io).
        A task annotated between the reads joins the pool (its annotation counts towards the next round);
        one deleted between them is left out."""

        def pages(**query) -> Iterable[Any]:  # the SDK's pager (page after page, as the loop asks)
            return self._ls.tasks.list(project=project, page_size=PAGE_SIZE, request_options=ONCE, **query)

        def fetch():
            labeled: dict[int, list[dict]] = {}
            if annotations:
                for t in pages(fields="all", query=ANNOTATED):
                    anns = [a if isinstance(a, dict) else a.model_dump() for a in (t.annotations or [])]
                    anns = [a for a in anns if not a.get("was_cancelled")]
                    anns.sort(key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""), reverse=True)
                    labeled[int(t.id)] = anns
            return [
                Task(id=int(t.id), data=dict(t.data or {}), annotations=labeled.get(int(t.id), []))
                for t in pages(fields="task_only", include="id,data")
            ]

        return self._call(fetch)

    def unscored_tasks(self, project: int, version: str) -> list[Task]:
        """Id and data of every unlabeled task without a prediction of ``version`` (e.g. imported after its round)."""

        def fetch() -> list[Task]:
            pages: Iterable[Any] = self._ls.tasks.list(
                project=project,
                page_size=PAGE_SIZE,
                request_options=ONCE,
                fields="task_only",
                include="id,data",
                query=_unscored(version),
            )
            return [Task(id=int(t.id), data=dict(t.data or {}), annotations=[]) for t in pages]

        return self._call(fetch)

    def model_version(self, project: int) -> str | None:
        """The version whose predictions order the project's tasks (None: none set)."""
        return self._call(lambda: self._ls.projects.get(id=project, request_options=ONCE).model_version) or None

    def project_status(self, project: int) -> int:
        """One quick GET of the project, not retried (Label Studio gives /setup, which asks this, 3 s): 200 when
        this key sees project ``project``, else Label Studio's status (401/403: key refused, 404: no such
        project). Raises LabelStudioError when unreachable or when the answer is not that project."""
        try:
            url = f"{self.url}/api/projects/{project}/"
            resp = self._http.request("GET", url, timeout=CONFIRM_TIMEOUT, auth=self._auth)
            if resp.status_code != 200:
                return resp.status_code
            if (resp.json() or {}).get("id") == project:
                return 200
        except (httpx.HTTPError, ValueError, AttributeError) as e:
            raise LabelStudioError(f"Label Studio at {self.url}: {_describe(e)}") from e
        raise LabelStudioError(f"Label Studio at {self.url}: its answer is not project {project}")

    def model_versions(self, project: int) -> dict[str, int]:
        return self._call(lambda: self._raw("GET", f"api/projects/{project}/model-versions/").json())

    # ---- writes

    def push_predictions(self, project: int, version: str, predictions: list[dict]) -> int:
        """Import all predictions under ``version``; a failed attempt is undone before the retry,
        so a reply lost in transit never leaves duplicates. Returns the number created."""
        for attempt in range(self._retries + 1):
            try:
                created = 0
                for s in range(0, len(predictions), PUSH_CHUNK):
                    chunk = [{**p, "model_version": version} for p in predictions[s : s + PUSH_CHUNK]]
                    result = self._ls.projects.import_predictions(
                        id=project,
                        request=chunk,  # type: ignore[arg-type]  # plain dicts
                        request_options=self._sized(len(chunk)),
                    )
                    created += result.created or 0
                return created
            except LS_ERRORS as e:
                if attempt == self._retries or not _transient(e):
                    raise LabelStudioError(f"pushing predictions to project {project} failed: {_describe(e)}") from e
                self._sleep(attempt, e)
                self.delete_model_version(project, version, len(predictions))
        raise AssertionError("unreachable")

    def set_model_version(self, project: int, version: str) -> None:
        self._call(lambda: self._ls.projects.update(id=project, model_version=version, request_options=ONCE))

    def delete_model_version(self, project: int, version: str, n_predictions: int = 0) -> int:
        """Delete every prediction of ``version``; ``n_predictions`` (how many there are) sizes the timeout."""
        resp = self._call(
            lambda: self._raw(
                "DELETE",
                f"api/projects/{project}/model-versions/",
                json={"model_version": version},
                options=self._sized(n_predictions),
            )
        )
        return int((resp.json() or {}).get("deleted_predictions", 0))

    def authorize_webhooks(self, project: int, authorization: str) -> int:
        """Label Studio sends webhooks without credentials; with basic auth on, add our Authorization
        header to the project's webhooks that point at a connected ML backend's ``/webhook``. Returns
        how many were changed (0 when all already carry it)."""
        urls = {
            str(m.get("url", "")).rstrip("/") + "/webhook"
            for m in self._call(lambda: self._raw("GET", "api/ml/", params={"project": project}).json())
        }
        changed = 0
        for hook in self._call(lambda: self._raw("GET", "api/webhooks/", params={"project": project}).json()):
            if hook.get("url") in urls and (hook.get("headers") or {}).get("Authorization") != authorization:
                headers = {**(hook.get("headers") or {}), "Authorization": authorization}
                self._patch_webhook(hook["id"], headers)
                changed += 1
        return changed

    def _patch_webhook(self, hook_id: int, headers: dict) -> None:
        self._call(lambda: self._raw("PATCH", f"api/webhooks/{hook_id}/", json={"headers": headers}))

    # ---- plumbing

    def _raw(self, method: str, path: str, json=None, params=None, options: RequestOptions = ONCE) -> httpx.Response:
        """A call the SDK has no method for (model versions, webhooks), with the SDK's auth, on the shared pool."""
        timeout = options.get("timeout_in_seconds", self._timeout)
        resp = self._http.request(
            method, f"{self.url}/{path}", json=json, params=params, timeout=timeout, auth=self._auth
        )
        if resp.status_code >= 400:
            raise ApiError(status_code=resp.status_code, body=resp.text)
        return resp

    def _sized(self, rows: int) -> RequestOptions:
        return {**ONCE, "timeout_in_seconds": math.ceil(self._timeout + rows * SECONDS_PER_ROW)}

    def _call(self, fn: Callable[[], T]) -> T:
        for attempt in range(self._retries + 1):
            try:
                return fn()
            except LS_ERRORS as e:
                if attempt == self._retries or not _transient(e):
                    raise LabelStudioError(f"Label Studio at {self.url}: {_describe(e)}") from e
                self._sleep(attempt, e)
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, e: Exception) -> None:
        delay = self._backoff * 2**attempt
        log.warning("Label Studio call failed (%s); retry %d in %.1f s", _describe(e), attempt + 1, delay)
        time.sleep(delay)


def _pool(url: str) -> httpx.Client:
    """The connection pool to ``url``, one per process, shared by every client: a round, a rollback and /setup
    each make a client, and a pool each was opened per call and never closed. A forked process (an RQ work
    horse) opens its own; ``close_pools`` closes this process's at exit."""
    key = (os.getpid(), url)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None or pool.is_closed:
            pool = _POOLS[key] = httpx.Client(follow_redirects=True)
        return pool


@atexit.register
def close_pools() -> None:
    with _POOLS_LOCK:
        for key in [k for k in _POOLS if k[0] == os.getpid()]:
            _POOLS.pop(key).close()


def _transient(e: Exception) -> bool:
    if isinstance(e, httpx.TransportError):
        return True
    return isinstance(e, ApiError) and (e.status_code is None or e.status_code >= 500 or e.status_code == 429)


def _describe(e: Exception) -> str:
    """A status code and a short reason, never the answer's body: these messages reach /jobs and /status, and
    a body is whatever the host answered (the service log has it, ``_log_body``)."""
    if isinstance(e, ApiError):
        _log_body(e)
        try:
            reason = HTTPStatus(e.status_code or 0).phrase
        except ValueError:
            reason = "unknown status"
        return f"HTTP {e.status_code} {reason}"
    if isinstance(e, httpx.HTTPError):  # a network error: its message names the failure, not an answer
        return f"{type(e).__name__}: {e}"
    return f"{type(e).__name__}: the answer is not one Label Studio gives"  # a parse error may quote the body


def _log_body(e: ApiError) -> None:
    log.warning("Label Studio answered HTTP %s: %.300s", e.status_code, str(e.body))
