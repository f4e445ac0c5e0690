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
    assert main(base + ["--learner", "finetune", "--pooling", "mean"]) == 2
    assert main(base + ["--mode", "finetune"]) == 2
    assert main(base) == 2
    assert seen == [("finetune", "mean"), ("finetune", "cls"), ("frozen", "cls")]
    with pytest.raises(SystemExit):
        main(base + ["--learner", "gpu"])
