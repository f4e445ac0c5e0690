"""Label Studio credentials and who may point a project at a Label Studio (README, *Security*; issue #23 items
1, 6). URL and key are one pair, the first host that sets a project up is kept, and a host that is refused
receives no request. Two local listeners (``LabelStudioStub``) record every request they get."""

from __future__ import annotations

import json
import os
import stat

import pytest

from beal_backend.cli import main
from beal_backend.config import Settings, SettingsError
from beal_backend.labelstudio.client import LabelStudioError
from beal_backend.labelstudio.label_config import LabelConfigError
from beal_backend.store.versions import PROJECT
from beal_backend.wiring import NotConfiguredError
from beal_backend.worker import rounds as jobs

from ..ls_stub import LabelStudioStub
from .conftest import CONFIG

OPERATOR_KEY = "operator-secret-key"
OTHER = CONFIG.replace('"water"', '"fire"')


@pytest.fixture
def listeners():
    made = [LabelStudioStub(), LabelStudioStub()]
    yield made
    for lst in made:
        lst.close()


def _setup(app, stub, project="3.1", **body):
    return app.test_client().post("/setup", json={"project": project, "schema": CONFIG, **stub.link, **body})


def _setup_then_run(app_factory, stub, **settings):
    app, rt = app_factory(ls_retries=0, **settings)
    assert _setup(app, stub).status_code == 200
    with pytest.raises((LabelStudioError, LabelConfigError)):  # the stub's project has no <Choices>
        jobs.run_round("3", rt)
    return app, rt


def test_an_api_key_without_its_url_refuses_to_start():
    with pytest.raises(SettingsError, match="LABEL_STUDIO_API_KEY is set but LABEL_STUDIO_URL is empty"):
        Settings.from_env({"LABEL_STUDIO_API_KEY": OPERATOR_KEY})
    with pytest.raises(SettingsError, match="LABEL_STUDIO_URL is set but LABEL_STUDIO_API_KEY is empty"):
        Settings.from_env({"LABEL_STUDIO_URL": "http://ls:8080"})


def test_with_env_credentials_a_setup_hostname_is_never_called(app_factory):
    operator, attacker = LabelStudioStub(tokens=(OPERATOR_KEY,)), LabelStudioStub()
    try:
        _setup_then_run(app_factory, attacker, label_studio_url=operator.url, label_studio_api_key=OPERATOR_KEY)
        assert attacker.requests == []
        assert operator.requests and all(a == f"Token {OPERATOR_KEY}" for _, _, a in operator.requests)
        assert operator.requests[0][1] == "/api/projects/3/"  # /setup's check of the new project
    finally:
        operator.close()
        attacker.close()


def test_without_env_credentials_the_setup_pair_is_used(app_factory, listeners):
    ls = listeners[0]
    _setup_then_run(app_factory, ls)
    assert ls.requests and all(a == "Token ls-setup-token" for _, _, a in ls.requests)


def test_another_host_is_refused_and_receives_no_request(app_factory, listeners):
    """Trust on first use: the first host is kept; an unauthenticated /setup naming another changes nothing
    (address, token, label config, per-project settings), and the next round still calls the first."""
    first, second = listeners
    app, rt = _setup_then_run(app_factory, first)
    before, calls = rt.store.read_project("3"), len(first.requests)
    for body in (
        {**second.link, "schema": OTHER, "extra_params": {"train_every": 1}},
        {"hostname": None, "access_token": None, "extra_params": {"train_every": 1}},  # naming no host
    ):
        r = _setup(app, first, **body)
        assert r.status_code == 403 and "set up from another Label Studio" in r.get_json()["error"]
    assert second.requests == [] and len(first.requests) == calls
    assert rt.store.read_project("3") == before and rt.project_settings("3").train_every == 10
    with pytest.raises((LabelStudioError, LabelConfigError)):
        jobs.run_round("3", rt)
    assert second.requests == [] and len(first.requests) > calls


def test_an_authenticated_setup_may_move_the_project(app_factory, listeners):
    first, second = listeners
    app, rt = app_factory(basic_auth_user="ann", basic_auth_pass="pw")
    auth = {"Authorization": "Basic YW5uOnB3"}
    c = app.test_client()
    assert c.post("/setup", headers=auth, json={"project": "3.1", "schema": CONFIG, **first.link}).status_code == 200
    r = c.post("/setup", headers=auth, json={"project": "3.1", "schema": CONFIG, **second.link})
    assert r.status_code == 200 and rt.store.read_project("3")["hostname"] == second.url
    assert [p for _, p, _ in second.requests] == ["/api/projects/3/"]  # confirmed before it was stored


def test_label_studio_hosts_is_the_only_hosts_a_setup_may_name(app_factory, listeners):
    first, second = listeners
    app, rt = app_factory(label_studio_hosts=(first.url,), basic_auth_user="ann", basic_auth_pass="pw")
    auth = {"Authorization": "Basic YW5uOnB3"}  # even an authenticated caller
    r = app.test_client().post("/setup", headers=auth, json={"project": "3.1", "schema": CONFIG, **second.link})
    assert r.status_code == 403 and "not in LABEL_STUDIO_HOSTS" in r.get_json()["error"]
    assert second.requests == [] and rt.store.projects() == []
    r = app.test_client().post("/setup", headers=auth, json={"project": "3.1", "schema": CONFIG, **first.link})
    assert r.status_code == 200


def test_a_changed_token_from_the_trusted_host_is_used_once_label_studio_accepts_it(app_factory):
    """Label Studio sends the connecting user's token: another user's token is accepted after one check on the
    trusted host; a token that host refuses changes nothing."""
    ls = LabelStudioStub(tokens=("ls-setup-token", "second-user-token"))
    try:
        app, rt = app_factory()
        assert _setup(app, ls).status_code == 200
        assert _setup(app, ls).status_code == 200 and len(ls.requests) == 1  # the same pair: no request
        assert _setup(app, ls, access_token="second-user-token").status_code == 200
        assert rt.store.read_project("3")["access_token"] == "second-user-token"
        r = _setup(app, ls, access_token="made-up", extra_params={"train_every": 1})
        assert r.status_code == 403 and "refused the access_token" in r.get_json()["error"]
        assert rt.store.read_project("3")["access_token"] == "second-user-token"
        assert rt.project_settings("3").train_every == 10
    finally:
        ls.close()


@pytest.mark.parametrize("env", [False, True])
def test_a_project_label_studio_does_not_know_leaves_nothing(app_factory, env):
    ls = LabelStudioStub(projects={3})
    try:
        extra = {"label_studio_url": ls.url, "label_studio_api_key": ls.TOKEN} if env else {}
        app, rt = app_factory(**extra)
        r = _setup(app, ls, project="9.1")
        assert r.status_code == 404 and "project 9 does not exist in Label Studio" in r.get_json()["error"]
        assert rt.store.projects() == [] and not rt.store.project_dir("9").exists()
        assert _setup(app, ls, project="3.1").status_code == 200 and rt.store.projects() == ["3"]
    finally:
        ls.close()


def test_label_studio_error_bodies_reach_jobs_and_status_as_a_status_code(app_factory, listeners):
    ls = listeners[0]
    app, rt = app_factory(ls_retries=0)
    assert _setup(app, ls).status_code == 200
    rt.store.write_project("3", {**rt.store.read_project("3"), "hostname": ls.url + "/gone"})  # every call: 404
    with pytest.raises(LabelStudioError):
        jobs.run_round("3", rt)
    c = app.test_client()
    shown = json.dumps(c.get("/jobs").get_json()) + c.get("/status").get_data(as_text=True)
    assert "HTTP 404 Not Found" in shown and LabelStudioStub.SECRET not in shown


def test_relink_lets_the_next_setup_name_another_host(app_factory, listeners, monkeypatch, capsys):
    first, second = listeners
    app, rt = app_factory()
    assert _setup(app, first).status_code == 200
    monkeypatch.setenv("MODEL_DIR", rt.settings.model_dir)
    assert main(["relink", "3", second.url]) == 0
    assert _setup(app, first).status_code == 403  # only the named one now
    assert _setup(app, second).status_code == 200 and rt.store.read_project("3")["hostname"] == second.url
    assert main(["relink", "3"]) == 0 and "hostname" not in rt.store.read_project("3")
    assert main(["relink", "4"]) == 1 and "never set up" in capsys.readouterr().err


def test_the_stored_setup_token_is_private_to_the_service_user(app_factory, listeners):
    app, rt = app_factory()
    assert _setup(app, listeners[0]).status_code == 200
    path = rt.store.project_dir("3") / PROJECT
    assert json.loads(path.read_text())["access_token"] == "ls-setup-token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_without_env_credentials_setup_needs_both(app_factory, listeners):
    app, rt = app_factory()
    r = _setup(app, listeners[0], access_token=None)
    assert r.status_code == 400 and "needs a hostname and an access_token" in r.get_json()["error"]
    assert rt.store.projects() == [] and listeners[0].requests == []
    with pytest.raises(NotConfiguredError, match="LABEL_STUDIO_URL"):
        rt.client("3")
