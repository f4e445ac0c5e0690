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


def test_simulate_takes_learner_and_the_old_mode_name(monkeypatch, capsys):
    import pytest

    from beal_backend.simulation import runner as simulate

    seen = []

    def fake(cfg):
        seen.append((cfg.mode, cfg.pooling))
        raise ValueError("stop here")

    monkeypatch.setattr(simulate, "simulate", fake)
    base = ["simulate", "--data", "d", "--out", "o"]
    assert main([*base, "--learner", "finetune", "--pooling", "mean"]) == 2
    assert main([*base, "--mode", "finetune"]) == 2
    assert main(base) == 2
    assert seen == [("finetune", "mean"), ("finetune", "cls"), ("frozen", "cls")]
    with pytest.raises(SystemExit):
        main([*base, "--learner", "gpu"])


def _capture_config(monkeypatch) -> list:
    from beal_backend.simulation import runner

    seen = []

    def fake(cfg):
        seen.append(cfg)
        raise ValueError("stop here")

    monkeypatch.setattr(runner, "simulate", fake)
    return seen


def test_simulate_defaults_are_the_dataclasses(monkeypatch):
    """An omitted option keeps the configuration's default: the CLI holds no numbers of its own that could drift."""
    from dataclasses import dataclass

    from beal_backend.engine import features
    from beal_backend.simulation import config

    seen = _capture_config(monkeypatch)
    assert main(["simulate", "--data", "d", "--out", "o"]) == 2
    assert seen[-1] == config.SimulationConfig(data="d", out="o")

    @dataclass(frozen=True)
    class Changed(config.SimulationConfig):
        initial: int = 7

    @dataclass(frozen=True)
    class ChangedHead(features.HeadConfig):
        epochs: int = 3

    monkeypatch.setattr(config, "SimulationConfig", Changed)
    monkeypatch.setattr(features, "HeadConfig", ChangedHead)
    assert main(["simulate", "--data", "d", "--out", "o"]) == 2
    assert (seen[-1].initial, seen[-1].head.epochs, seen[-1].batch) == (7, 3, 500)


def test_simulate_given_options_win_and_reach_both_learners(monkeypatch):
    seen = _capture_config(monkeypatch)
    argv = ["simulate", "--data", "d", "--out", "o", "--initial", "20", "--epochs", "4", "--lr", "0.01",
            "--strategies", "random, beal", "--pool-size", "100", "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    cfg = seen[-1]
    assert (cfg.initial, cfg.strategies, cfg.pool_size, cfg.progress) == (20, ("random", "beal"), 100, False)
    assert (cfg.head.epochs, cfg.head.lr, cfg.train.epochs, cfg.train.lr_head) == (4, 0.01, 4, 0.01)
    assert cfg.train.lr_encoder == 5e-5  # an option given for neither learner keeps its default


def test_simulate_help_reads_the_defaults_from_the_dataclasses(monkeypatch, capsys):
    from dataclasses import dataclass

    import pytest

    from beal_backend.simulation import config

    @dataclass(frozen=True)
    class Changed(config.SimulationConfig):
        batch: int = 9

    monkeypatch.setattr(config, "SimulationConfig", Changed)
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "texts acquired per round (default: 9)" in out and "before the first round (default: 500)" in out
    assert "(default: frozen 15, finetune 8)" in out  # --epochs: HeadConfig.epochs, TrainConfig.epochs
    assert "used as the pool (default: all)" in out
