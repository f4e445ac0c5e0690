"""Label Studio credentials: URL and key are one pair, so the operator's key never reaches a host that an
unauthenticated /setup names. A local HTTP listener records the Authorization header of every request."""

from __future__ import annotations

import json
import os
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from beal_backend.config import Settings, SettingsError
from beal_backend.labelstudio.client import LabelStudioError
from beal_backend.store.versions import PROJECT
from beal_backend.wiring import NotConfiguredError
from beal_backend.worker import rounds as jobs

from .conftest import CONFIG

OPERATOR_KEY = "operator-secret-key"


class Listener:
    """A tiny Label Studio stand-in on 127.0.0.1 that answers 404 to everything and records who called."""

    def __init__(self):
        seen = self.auth = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                seen.append(self.headers.get("Authorization"))
                body = json.dumps({"detail": "not found"}).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listeners():
    made = [Listener(), Listener()]
    yield made
    for lst in made:
        lst.close()


def _setup_then_run(app_factory, hostname, access_token="ls-setup-token", **settings):
    app, rt = app_factory(ls_retries=0, **settings)
    body = {"project": "3.1", "schema": CONFIG, "hostname": hostname}
    if access_token:
        body["access_token"] = access_token
    assert app.test_client().post("/setup", json=body).status_code == 200
    return rt


def test_an_api_key_without_its_url_refuses_to_start():
    with pytest.raises(SettingsError, match="LABEL_STUDIO_API_KEY is set but LABEL_STUDIO_URL is empty"):
        Settings.from_env({"LABEL_STUDIO_API_KEY": OPERATOR_KEY})
    with pytest.raises(SettingsError, match="LABEL_STUDIO_URL is set but LABEL_STUDIO_API_KEY is empty"):
        Settings.from_env({"LABEL_STUDIO_URL": "http://ls:8080"})


def test_with_env_credentials_a_setup_hostname_is_never_called(app_factory, listeners):
    operator, attacker = listeners
    rt = _setup_then_run(app_factory, attacker.url, label_studio_url=operator.url, label_studio_api_key=OPERATOR_KEY)
    with pytest.raises(LabelStudioError):
        jobs.run_round("3", rt)
    assert attacker.auth == []
    assert operator.auth and all(OPERATOR_KEY in a for a in operator.auth)
    assert "access_token" not in (rt.store.read_project("3") or {})  # an unused credential is not kept


def test_without_env_credentials_the_setup_pair_is_used(app_factory, listeners):
    ls = listeners[0]
    rt = _setup_then_run(app_factory, ls.url)
    with pytest.raises(LabelStudioError):
        jobs.run_round("3", rt)
    assert ls.auth and all(a == "Token ls-setup-token" for a in ls.auth)


def test_a_new_setup_host_never_inherits_the_old_token(app_factory, listeners):
    first, second = listeners
    rt = _setup_then_run(app_factory, first.url)
    app, _ = app_factory(rt=rt)
    app.test_client().post("/setup", json={"project": "3.1", "schema": CONFIG, "hostname": second.url})
    with pytest.raises(NotConfiguredError, match="LABEL_STUDIO_URL"):
        jobs.run_round("3", rt)
    assert first.auth == [] and second.auth == []


def test_the_stored_setup_token_is_private_to_the_service_user(app_factory, listeners):
    rt = _setup_then_run(app_factory, listeners[0].url)
    path = rt.store.project_dir("3") / PROJECT
    assert json.loads(path.read_text())["access_token"] == "ls-setup-token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
