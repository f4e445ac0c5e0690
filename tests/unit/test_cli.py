"""Operator mistakes on the command line get a one-line message and exit status 1, not a traceback."""

from __future__ import annotations

from beal_backend.cli import main


def test_versions_of_an_unknown_project(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    assert main(["versions", "5"]) == 1
    assert capsys.readouterr().err.strip() == "beal versions: project 5 has no model store"


def test_rollback_rejects_path_traversal(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODEL_DIR", str(tmp_path))
    assert main(["rollback", "../x", "v1"]) == 1
    assert "invalid project '../x'" in capsys.readouterr().err


def test_worker_needs_redis(monkeypatch, capsys):
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["worker"]) == 2
    assert "needs REDIS_URL" in capsys.readouterr().err


SERVICE_ENV = ("LEARNER", "POOLING", "MC_PASSES", "MC_SCOPE", "SEED", "DEVICE", "ENCODER", "EPOCHS", "BATCH_SIZE",
               "LEARNING_RATE", "VAL_FRACTION", "MIN_VAL")  # fmt: skip


def _service_env(monkeypatch, **env) -> None:
    """The service's training and scoring settings: all unset (their defaults) but ``env``, on a CPU."""
    for name in SERVICE_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in {"DEVICE": "cpu", **env}.items():
        monkeypatch.setenv(name, value)


def test_simulate_takes_learner_and_the_old_mode_name(monkeypatch):
    import pytest

    _service_env(monkeypatch)
    seen = _capture_config(monkeypatch)
    base = ["simulate", "--data", "d", "--out", "o"]
    assert main([*base, "--learner", "finetune", "--pooling", "mean"]) == 2
    assert main([*base, "--mode", "finetune"]) == 2
    assert main(base) == 2
    assert main([*base, "--protocol", "paper"]) == 2
    # the service's POOLING=auto and LEARNER=auto (frozen on a CPU); the paper's [CLS]
    assert [(c.mode, c.pooling) for c in seen] == [("finetune", "mean"), ("finetune", "auto"), ("frozen", "auto"),
                                                   ("frozen", "cls")]  # fmt: skip
    with pytest.raises(SystemExit):
        main([*base, "--learner", "gpu"])


def _capture_config(monkeypatch) -> list:
    from beal_backend.simulation import runner

    seen = []

    def fake(cfg, report_only=False):
        seen.append(cfg)
        raise ValueError("stop here")

    monkeypatch.setattr(runner, "simulate", fake)
    return seen


def test_simulate_defaults_are_the_services_settings(monkeypatch, tmp_path):
    """``beal simulate`` with no options trains and scores as a service round would with the same environment:
    learner, pooling, T, scope and training from Settings -> wiring, the head the round's learner builds, the
    held-out slice on; the schedule is the service protocol's (resolved once the pool is known)."""
    from beal_backend.config import Settings
    from beal_backend.engine import learners
    from beal_backend.wiring import scoring_config, train_config

    _service_env(monkeypatch, MC_PASSES="7", MC_SCOPE="last-3", POOLING="mean", EPOCHS="3", VAL_FRACTION="0.2")
    seen = _capture_config(monkeypatch)
    assert main(["simulate", "--data", "d", "--out", "o"]) == 2
    cfg, s = seen[-1], Settings.from_env()
    assert (cfg.protocol, cfg.mc_passes, cfg.scope, cfg.pooling, cfg.mode) == ("service", 7, "last-3", "mean", "frozen")
    assert cfg.train == train_config(s) and cfg.train.epochs == 3
    assert cfg.mc_passes == scoring_config(s).passes and cfg.held_out
    round_learner = learners.build(s.learner, train_config(s), tmp_path)  # what worker.rounds builds
    assert cfg.head == round_learner.head_cfg
    assert (cfg.head.val_fraction, cfg.head.min_val) == (0.2, 10)  # the paper's head holds nothing out (0.0)
    assert (cfg.initial, cfg.batch, cfg.rounds, cfg.repeats) == (None, None, None, None)  # the protocol's

    _service_env(monkeypatch, LEARNER="finetune", MC_SCOPE="head")
    assert main(["simulate", "--data", "d", "--out", "o"]) == 2
    assert (seen[-1].mode, seen[-1].scope, seen[-1].train) == ("finetune", "head", train_config(Settings.from_env()))


def test_simulate_paper_protocol_keeps_the_papers_setting(monkeypatch):
    from beal_backend.engine.features import HeadConfig
    from beal_backend.engine.training import TrainConfig

    _service_env(monkeypatch, MC_PASSES="7", POOLING="mean")
    seen = _capture_config(monkeypatch)
    assert main(["simulate", "--data", "d", "--out", "o", "--protocol", "paper"]) == 2
    cfg = seen[-1]
    assert (cfg.protocol, cfg.mc_passes, cfg.scope, cfg.pooling, cfg.held_out) == ("paper", 100, "full", "cls", False)
    assert (cfg.head, cfg.train) == (HeadConfig(), TrainConfig(min_steps=0))  # fine-tuning: fixed epochs only


def test_simulate_given_options_win_and_reach_both_learners(monkeypatch):
    _service_env(monkeypatch)
    seen = _capture_config(monkeypatch)
    argv = ["simulate", "--data", "d", "--out", "o", "--initial", "20", "--epochs", "4", "--lr", "0.01",
            "--strategies", "random, beal", "--pool-size", "100", "--no-progress", "--mc-passes", "9"]  # fmt: skip
    assert main(argv) == 2
    cfg = seen[-1]
    assert (cfg.initial, cfg.strategies, cfg.pool_size, cfg.progress) == (20, ("random", "beal"), 100, False)
    assert (cfg.head.epochs, cfg.head.lr, cfg.train.epochs, cfg.train.lr_head, cfg.mc_passes) == (4, 0.01, 4, 0.01, 9)
    assert cfg.train.lr_encoder == 5e-5 and cfg.head.val_fraction == 0.1  # options not given keep the service's


def test_simulate_help_reads_the_defaults_from_where_they_come_from(monkeypatch, capsys):
    import pytest

    _service_env(monkeypatch, MC_PASSES="42", EPOCHS="3")
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "texts acquired per round (default: service 20, paper 5% of the pool)" in out
    assert "passes per text (default: service MC_PASSES = 42, paper 100)" in out
    assert "(default: service: frozen 15, finetune 3; paper: frozen 15, finetune 8)" in out  # --epochs
    assert "used as the pool (default: all)" in out
