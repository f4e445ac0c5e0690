"""Settings are checked when the process starts: a bad one stops it with one line naming the variable and
what it accepts, and reading them imports no torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from beal_backend.cli import main
from beal_backend.config import Settings, SettingsError, project_params
from beal_backend.wiring import scoring_config, train_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "env, message",
    [
        ({"EPOCHS": "0"}, "EPOCHS=0 is invalid: use an integer >= 1"),
        ({"EPOCHS": "two"}, "EPOCHS='two' is invalid: use an integer >= 1"),
        ({"MC_SCOPE": "last2"}, "MC_SCOPE='last2' is invalid: use full, head or last-<k> with k >= 1"),
        ({"MC_SCOPE": "last-0"}, "MC_SCOPE='last-0' is invalid"),
        ({"MC_PASSES": "0"}, "MC_PASSES=0 is invalid: use an integer >= 1"),
        ({"VAL_FRACTION": "1"}, "VAL_FRACTION=1.0 is invalid: use a number >= 0 and < 1"),
        ({"PROMOTION_MARGIN": "2"}, "PROMOTION_MARGIN=2.0 is invalid: use a number >= -1 and <= 1"),
        ({"LEARNING_RATE": "0"}, "LEARNING_RATE=0.0 is invalid: use a number > 0 and <= 1"),
        ({"PORT": "70000"}, "PORT=70000 is invalid: use an integer from 1 to 65535"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL='VERBOSE' is invalid: use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ({"DEVICE": "gpu"}, "DEVICE='gpu' is invalid: use auto, cpu, cuda, cuda:<n> or mps"),
        (
            {"REDIS_URL": "localhost:6379"},
            "REDIS_URL='localhost:6379' is invalid: use a redis://, rediss:// or unix:// URL",
        ),
        ({"TRAIN_EVERY": "-1"}, "TRAIN_EVERY=-1 is invalid: use an integer >= 1"),
        ({"TRAIN_IDLE_SECONDS": "-5"}, "TRAIN_IDLE_SECONDS=-5 is invalid: use an integer from 0 to 604800"),
        ({"KEEP_VERSIONS": "1.5"}, "KEEP_VERSIONS='1.5' is invalid: use an integer >= 0"),
        ({"LOCK_TTL": "0"}, "LOCK_TTL=0 is invalid: use an integer >= 1"),
        ({"LS_TIMEOUT": "0.5"}, "LS_TIMEOUT=0.5 is invalid: use a number >= 1 and <= 3600"),
        (
            {"BASIC_AUTH_PASS": "s3cret"},
            (
                "BASIC_AUTH_PASS is set but BASIC_AUTH_USER is empty: "
                "set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither"
            ),
        ),
        (
            {"BASIC_AUTH_USER": "ann", "BASIC_AUTH_PASS": ""},
            (
                "BASIC_AUTH_USER is set but BASIC_AUTH_PASS is empty: "
                "set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither"
            ),
        ),
        ({"BASIC_AUTH_USER": "ann"}, "BASIC_AUTH_USER is set but BASIC_AUTH_PASS is empty"),
        (
            {"LABEL_STUDIO_HOSTS": "http://ls:8080, ls2:8080"},
            "LABEL_STUDIO_HOSTS='http://ls:8080, ls2:8080' is invalid: use comma-separated http:// or https:// URLs",
        ),
        (
            {"WEBHOOK_TOKEN": "too-short"},
            "WEBHOOK_TOKEN=<hidden> is invalid: use 16 or more letters, digits or ._~+/=-",
        ),
    ],
)
def test_a_bad_setting_is_refused_naming_it(env, message):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_good_settings_are_typed_and_unset_ones_keep_their_defaults():
    s = Settings.from_env(
        {
            "EPOCHS": "3",
            "MC_SCOPE": "head",
            "LEARNING_RATE": "1e-4",
            "LOG_LEVEL": "debug",
            "BASIC_AUTH_USER": "ann",
            "BASIC_AUTH_PASS": "pw",
            "DEVICE": "cpu",
            "PORT": " 8080 ",
            "SEED": "",
        }
    )
    assert (s.epochs, s.mc_scope, s.learning_rate, s.log_level, s.port, s.seed) == (3, "head", 1e-4, "DEBUG", 8080, 0)
    assert (
        train_config(s).epochs,
        train_config(s).lr_encoder,
        train_config(s).device,
        scoring_config(s).scope,
        scoring_config(s).passes,
    ) == (3, 1e-4, "cpu", "head", 100)
    assert Settings.from_env({}) == Settings()
    # edge values the e2e tests rely on: a strict gate and a short lock
    assert Settings.from_env({"PROMOTION_MARGIN": "-1", "LOCK_TTL": "2"}).promotion_margin == -1.0
    assert Settings.from_env({"TRAIN_IDLE_SECONDS": "0"}).train_idle_seconds == 0  # 0 = idle checks off


def test_reading_settings_imports_no_torch():
    code = (
        "import sys; from beal_backend.config import Settings; s = Settings.from_env({'EPOCHS': '3'}); "
        "assert s.epochs == 3; assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_the_cli_refuses_a_bad_setting_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("MC_SCOPE", "everything")
    assert main(["versions", "5"]) == 2
    assert capsys.readouterr().err == "beal: MC_SCOPE='everything' is invalid: use full, head or last-<k> with k >= 1\n"


def test_gunicorn_stops_on_a_bad_setting_with_one_line(tmp_path):
    env = {**os.environ, "EPOCHS": "0", "MODEL_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.run(
        [str(gunicorn), "--bind", "127.0.0.1:0", "_wsgi:make_app()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "beal-backend: EPOCHS=0 is invalid: use an integer >= 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_strategy_names_match_the_registry():
    """STRATEGY accepts the registry's names, no other list."""
    from beal_backend import acquisition, config

    assert tuple(acquisition.STRATEGIES) == config.STRATEGIES


def test_ls_timeout_reaches_the_label_studio_client(tmp_path):
    from beal_backend.wiring import Runtime

    env = {
        "LS_TIMEOUT": "120",
        "LABEL_STUDIO_URL": "http://ls:8080",
        "LABEL_STUDIO_API_KEY": "k",
        "MODEL_DIR": str(tmp_path),
    }
    client = Runtime.build(Settings.from_env(env)).client("1")
    assert client._ls._client_wrapper.get_timeout() == 120.0


def test_settings_defaults_are_the_engine_defaults():
    """Settings spells the training and scoring defaults out (reading settings imports no torch); an unset
    variable must give exactly what the engine's own configuration would."""
    from beal_backend.engine.scoring import ScoringConfig
    from beal_backend.engine.training import TrainConfig
    from beal_backend.wiring import scoring_config, train_config

    s = Settings.from_env({"DEVICE": "cpu", "POOLING": "cls"})  # the two settings the engine has no "auto" for
    assert train_config(s) == TrainConfig(device="cpu")
    assert scoring_config(s).passes == ScoringConfig().passes


@pytest.mark.parametrize(
    "raw, params",
    [
        (None, {}),
        ("", {}),
        ({}, {}),
        ({"train_every": 20}, {"train_every": 20}),
        ({"train_every": "20", "train_idle_seconds": 0}, {"train_every": 20, "train_idle_seconds": 0}),
        ('{"train_idle_seconds": 600}', {"train_idle_seconds": 600}),  # the connection form may send a string
    ],
)
def test_a_projects_own_settings_come_from_extra_params(raw, params):
    assert project_params(raw) == params


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"epochs": 3}, "extra_params 'epochs' is not a per-project setting: use train_every, train_idle_seconds"),
        ({"train_every": 0}, "extra_params train_every='0' is invalid: use an integer >= 1"),
        ({"train_every": 2.5}, "extra_params train_every='2.5' is invalid: use an integer >= 1"),
        ({"train_every": True}, "extra_params train_every='True' is invalid: use an integer >= 1"),
        ({"train_idle_seconds": 10**7}, "extra_params train_idle_seconds='10000000' is invalid: use an integer from 0"),
        ("train_every=5", 'extra_params is not JSON: use an object such as {"train_every": 20}'),
        ([5], 'extra_params must be a JSON object such as {"train_every": 20}'),
    ],
)
def test_bad_extra_params_are_refused_naming_them(raw, message):
    with pytest.raises(SettingsError) as info:
        project_params(raw)
    assert str(info.value).startswith(message)


def test_label_studio_hosts_are_compared_in_one_spelling():
    s = Settings.from_env({"LABEL_STUDIO_HOSTS": "HTTP://LS.example:8080/, https://x.example/ls/"})
    assert s.label_studio_hosts == ("http://ls.example:8080", "https://x.example/ls")
    assert Settings.from_env({"LABEL_STUDIO_HOSTS": " , "}).label_studio_hosts == ()
