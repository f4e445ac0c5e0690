"""HTTP: JSON in and out, the only module that sees requests. Every error is a JSON body with a 4xx/5xx
status naming the problem; no stack trace ever reaches a client.

Why Flask 3 and not label-studio-ml: its latest release (1.0.9, 2023) pins Flask 1.1.2 / Werkzeug 2.0.2;
we implement its small protocol (/health, /setup, /predict, /webhook, /metrics) directly.
"""

from __future__ import annotations

import hmac
import logging
import sys
import time

import redis
from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException

from beal_backend.config import Settings, SettingsError, configure_logging
from beal_backend.labelstudio.client import LabelStudioError
from beal_backend.labelstudio.label_config import LabelConfigError
from beal_backend.service import startup, statuspage
from beal_backend.service.host_trust import SetupRefused
from beal_backend.service.metrics import Metrics
from beal_backend.service.model import (
    UNTRAINED,
    BadRequest,
    BealModel,
    NotFound,
    project_id,
)
from beal_backend.store.versions import IntegrityError, StoreError
from beal_backend.wiring import NotConfiguredError, Runtime, build_runtime
from beal_backend.worker import recovery
from beal_backend.worker.locks import ProjectLocked
from beal_backend.worker.promotion import PromotionError

log = logging.getLogger(__name__)
OPEN_PATHS = {"/health"}  # Label Studio probes it without credentials
REFUSALS_LOGGED = {"/setup", "/predict", "/webhook"}  # Label Studio's calls: why one was refused goes to the log


def make_app(settings: Settings | None = None) -> Flask:
    """The service on ``settings`` (default: the environment's), with the queue they ask for: what gunicorn
    (``_wsgi:make_app()``) and ``beal serve`` both run."""
    settings = settings or _settings_or_exit()
    configure_logging(settings.log_level)
    rt = build_runtime(settings)
    startup.log_summary(rt)
    app = create_app(rt)
    if not settings.redis_url:  # embedded: what a previous run owed lived in its memory
        recovery.resume_in_background(rt)
    return app


def _settings_or_exit() -> Settings:
    """A bad setting stops the server with one line naming it. Under gunicorn an AppImportError prints just
    its message and halts the master instead of re-spawning workers."""
    try:
        return Settings.from_env()
    except SettingsError as e:
        if "gunicorn" in sys.modules:
            from gunicorn.errors import AppImportError

            raise AppImportError(f"beal-backend: {e}") from None
        sys.exit(f"beal-backend: {e}")


def create_app(rt: Runtime, model: BealModel | None = None) -> Flask:
    app = Flask("beal_backend")
    app.config["MAX_CONTENT_LENGTH"] = rt.settings.max_request_bytes
    model = model or BealModel(rt)
    metrics = Metrics(rt)
    app.extensions["beal"] = {"runtime": rt, "model": model, "metrics": metrics}

    @app.before_request
    def _auth():
        user, password = rt.settings.basic_auth_user, rt.settings.basic_auth_pass
        if not user or request.path in OPEN_PATHS:
            return None
        auth = request.authorization
        ok = (
            auth is not None
            and hmac.compare_digest((auth.username or "").encode(), user.encode())
            and hmac.compare_digest((auth.password or "").encode(), (password or "").encode())
        )
        if not ok and request.path == "/webhook" and auth is not None and auth.type == "bearer":
            # the webhook token authorises webhook delivery and nothing else (README, *Security*)
            ok = hmac.compare_digest(f"Bearer {auth.token or ''}".encode(), rt.webhook_authorization.encode())
        if not ok:
            resp = jsonify(error="authentication required")
            resp.status_code = 401
            resp.headers["WWW-Authenticate"] = 'Basic realm="beal-backend"'
            return resp
        return None

    @app.after_request
    def _count(resp):
        metrics.requests.labels(request.url_rule.rule if request.url_rule else "unknown", str(resp.status_code)).inc()
        if request.path in REFUSALS_LOGGED and resp.status_code >= 400 and resp.status_code != 500:  # 500: logged
            _log_refusal(resp)
        return resp

    @app.get("/")
    @app.get("/health")
    def health():
        redis_ok = rt.coordinator.ping()
        body = {
            "status": "UP",
            "model_class": BealModel.model_class,
            "queue": "redis" if rt.settings.redis_url else "embedded",
            "redis": redis_ok,
        }
        return jsonify(body)

    @app.post("/setup")
    def setup():
        body = _json_body()
        return jsonify(
            model.setup(
                _field(body, "project"),
                _field(body, "schema", str),
                body.get("hostname"),
                body.get("access_token"),
                body.get("extra_params"),
            )
        )

    @app.post("/predict")
    def predict():
        body = _json_body()
        t0 = time.perf_counter()
        answer = model.predict(
            _field(body, "tasks"), project=_field(body, "project"), label_config=body.get("label_config")
        )
        metrics.predict_seconds.observe(time.perf_counter() - t0)
        results = answer["results"]
        metrics.predictions.inc(sum(1 for r in results if r))
        if answer["model_version"] != UNTRAINED:
            metrics.skipped_tasks.inc(sum(1 for r in results if not r))
        return jsonify({"results": results, "model_version": answer["model_version"]})

    @app.post("/webhook")
    def webhook():
        body = _json_body()
        action = _field(body, "action", str)
        return jsonify(model.fit(action, body)), 200

    @app.get("/status")
    def status_page():
        resp = Response(statuspage.render(model.status_projects()), mimetype="text/html")
        resp.headers["Content-Security-Policy"] = statuspage.CONTENT_SECURITY_POLICY
        return resp

    @app.get("/jobs")
    def jobs():
        return jsonify(model.jobs())

    @app.get("/projects/<project>/versions")
    def versions(project):
        return jsonify(project=project_id(project), versions=model.versions(project))

    @app.post("/projects/<project>/rollback")
    def rollback(project):
        return jsonify(model.rollback(project, _field(_json_body(), "version", str)))

    @app.get("/metrics")
    def prometheus():
        return Response(generate_latest(metrics.registry), mimetype=CONTENT_TYPE_LATEST)

    _register_errors(app)
    return app


def _log_refusal(resp: Response) -> None:
    """Label Studio shows a refused call as "400 Client Error ... check the ML backend server console logs":
    the reason is here, once, at WARNING."""
    body = resp.get_json(silent=True) if resp.is_json else None
    reason = body.get("error") if isinstance(body, dict) else None
    log.warning("%s %s answered %d: %s", request.method, request.path, resp.status_code, reason or resp.status)


MAX_JSON_DEPTH = 64  # Label Studio's payloads nest < 10 deep; deeper bodies would recurse in our code


def _json_body() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the json parser recursed past Python's limit (~1000 levels)
        raise BadRequest(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object (Content-Type: application/json)")
    if _depth_exceeds(body, MAX_JSON_DEPTH):
        raise BadRequest(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    return body


def _depth_exceeds(value, limit: int) -> bool:
    """Iterative (a recursive walk would itself hit the recursion limit)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > limit:
                return True
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False


def _field(body: dict, name: str, kind: type | None = None):
    value = body.get(name)
    if value is None or value == "":
        raise BadRequest(f"missing field '{name}'")
    if kind is not None and not isinstance(value, kind):
        raise BadRequest(f"field '{name}' must be a {kind.__name__}")
    return value


def _register_errors(app: Flask) -> None:
    def error(status: int, message: str):
        resp = jsonify(error=message)
        resp.status_code = status
        return resp

    def _integrity(e):  # our own files are damaged: a server fault; the version stays unloaded
        log.error("refusing a stored model: %s", e)
        return error(500, "a stored model's weights fail their sha256 check; it was not loaded (see the service log)")

    app.register_error_handler(BadRequest, lambda e: error(400, str(e)))
    app.register_error_handler(SetupRefused, lambda e: error(e.status, str(e)))
    app.register_error_handler(LabelConfigError, lambda e: error(400, str(e)))
    app.register_error_handler(StoreError, lambda e: error(400, str(e)))
    app.register_error_handler(NotFound, lambda e: error(404, str(e)))
    app.register_error_handler(NotConfiguredError, lambda e: error(409, str(e)))
    app.register_error_handler(PromotionError, lambda e: error(409, str(e)))
    app.register_error_handler(ProjectLocked, lambda e: error(409, f"a training job holds the project: {e}"))
    app.register_error_handler(IntegrityError, _integrity)
    app.register_error_handler(LabelStudioError, lambda e: error(502, str(e)))
    app.register_error_handler(
        redis.exceptions.RedisError, lambda e: error(503, "the job queue (Redis) is unavailable; retry later")
    )
    app.register_error_handler(HTTPException, lambda e: error(e.code or 500, e.description or e.name))

    @app.errorhandler(Exception)
    def _unexpected(e):
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error(500, f"internal error ({type(e).__name__}); see the service log")
