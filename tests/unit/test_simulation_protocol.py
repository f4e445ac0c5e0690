"""``beal simulate --protocol``: the schedules (hand-computed), the held-out rule shared with the service, and the
published runs under docs/results/, whose recorded settings must still be what their commands give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beal_backend.cli import main
from beal_backend.engine import holdout
from beal_backend.simulation import protocol, runner
from tests.unit.test_cli import _capture_config, _service_env

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"


def test_service_schedule_is_a_round_every_20_labels_to_75_percent_of_the_pool():
    # 5 % of 2,000 = 100 at random, then (0.75 x 2,000 - 100) / 20 = 70 rounds: 100 + 70 x 20 = 1,500 labels
    assert protocol.schedule("service", 2000, None, None, None) == (100, 20, 70)
    # AAPD's 1,000: 50 + (750 - 50) / 20 = 35 rounds
    assert protocol.schedule("service", 1000, None, None, None) == (50, 20, 35)
    # given values win; the rounds still stop at 75 %: (1,500 - 10) // 10 = 149
    assert protocol.schedule("service", 2000, 10, 10, None) == (10, 10, 149)
    assert protocol.schedule("service", 2000, 10, 10, 3) == (10, 10, 3)


def test_paper_schedule_is_5_percent_and_19_rounds_of_5_percent():
    assert protocol.schedule("paper", 10000, None, None, None) == (500, 500, 19)
    assert protocol.schedule("paper", 1000, None, None, None) == (50, 50, 19)
    with pytest.raises(ValueError, match="protocol must be one of service, paper"):
        protocol.schedule("fast", 1000, None, None, None)


def test_the_held_out_rows_are_the_service_rounds():
    """Pool row r plays task r: the simulation trains on the rows a round would give its learner (all but the
    gate half) and early-stops on the same early-stopping half."""
    labeled = list(range(3, 400, 3))
    rows, stop = protocol.service_rows(labeled, 0.1, 10)
    held = holdout.held_out_split(labeled, 0.1, 10)
    assert held.stop and held.gate and (rows, stop) == held.training_rows(len(labeled))
    assert not set(rows) & set(held.gate) and len(rows) == len(labeled) - len(held.gate)
    assert [rows[k] for k in stop] == held.stop
    assert protocol.service_rows(labeled[:20], 0.1, 10) == (list(range(20)), [])  # too few held out: no slice


# the published runs and the flags of their commands (docs/results/README.md, finetune-cpu.md, gpu_evidence.sh)
V02 = ["--strategies", "random,coreset,bald,badge,entropy,beal-deterministic,beal-diverse,beal"]
BIG = ["--pool-size", "10000", "--test-size", "2000"]
MEAN = ["--learner", "frozen", "--pooling", "auto"]
FINETUNE = ["--learner", "finetune", "--scope", "head", "--mc-passes", "100", "--val-fraction", "0", "--encoder",
            "/tmp/minilm", "--pool-size", "1000", "--test-size", "1000", "--initial", "50", "--batch", "50",
            "--repeats", "3", "--epochs", "15"]  # fmt: skip
PUBLISHED = {
    "aapd": [*V02, "--initial", "50", "--batch", "50"],
    "goemotions": [*V02, *BIG],
    "stackoverflow_titles": [*V02, *BIG, "--repeats", "3"],
    "aapd-mean": [*MEAN, "--initial", "50", "--batch", "50"],
    "goemotions-mean": [*MEAN, *BIG],
    "stackoverflow_titles-mean": [*MEAN, *BIG, "--repeats", "3"],
    "aapd-finetune": FINETUNE,
    "goemotions-finetune": FINETUNE,
}


@pytest.mark.parametrize("folder", sorted(PUBLISHED))
def test_published_runs_keep_their_identity_under_the_paper_protocol(folder, monkeypatch):
    """A rerun of a published command with ``--protocol paper`` must match its config.json (else it would refuse
    to resume); without ``--protocol paper`` it is another run."""
    _service_env(monkeypatch)
    recorded = json.loads((RESULTS / folder / "config.json").read_text())
    pool = json.loads((RESULTS / folder / "summary.json").read_text())["settings"]["pool"]
    seen = _capture_config(monkeypatch)
    argv = ["simulate", "--data", recorded["data"], "--out", "o", *PUBLISHED[folder]]
    assert main([*argv, "--protocol", "paper"]) == 2
    assert seen[-1].resolve(pool).identity() == recorded
    assert main(argv) == 2
    assert seen[-1].resolve(pool).identity() != recorded


def test_a_published_run_resumes_and_summarizes_under_the_paper_protocol(tmp_path, monkeypatch):
    """aapd-mean, copied: nothing left to run, so no encoder is loaded; the summary is the committed one."""
    recorded = json.loads((RESULTS / "aapd-mean" / "config.json").read_text())
    if not Path(recorded["data"], "train.jsonl").exists():
        pytest.skip(f"the shared dataset {recorded['data']} is not on this machine")
    _service_env(monkeypatch)
    out = tmp_path / "aapd-mean"
    for name in ("config.json", "results.csv", "selections.jsonl"):
        (out / name).parent.mkdir(exist_ok=True)
        (out / name).write_bytes((RESULTS / "aapd-mean" / name).read_bytes())
    strategies = "random,coreset,bald,badge,entropy,beal-deterministic,beal-diverse,beal,beal-stochastic"
    argv = ["simulate", "--data", recorded["data"], "--out", str(out), *MEAN, "--initial", "50", "--batch", "50",
            "--strategies", strategies, "--protocol", "paper", "--no-progress"]  # fmt: skip
    calls = []
    monkeypatch.setattr(runner.Simulation, "run_job", lambda self, *a: calls.append(a))
    assert main(argv) == 0
    assert calls == []
    got = json.loads((out / "summary.json").read_text())
    want = json.loads((RESULTS / "aapd-mean" / "summary.json").read_text())
    assert got["strategies"] == want["strategies"] and got["all_data"] == want["all_data"]
