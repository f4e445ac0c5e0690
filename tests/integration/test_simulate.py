"""``beal simulate`` end to end on a tiny synthetic dataset: frozen features of the tiny on-disk BERT, CPU, seconds."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from beal_backend.cli import main
from beal_backend.engine import learners
from beal_backend.simulation import analysis, runner
from beal_backend.simulation.config import SEED_MC
from benchmarks._common import simulate_config
from tests.conftest import LABELS, synthetic_texts

TIMING = ("select_seconds", "train_seconds")


def _write_dataset(root: Path, n_pool: int = 80, n_test: int = 40) -> Path:
    root.mkdir(parents=True)
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    for split, n, seed in (("train", n_pool, 0), ("test", n_test, 1)):
        texts, label_sets = synthetic_texts(n, seed)
        with (root / f"{split}.jsonl").open("w") as f:
            f.writelines(
                json.dumps({"id": f"{split}-{i}", "text": t, "labels": y}) + "\n"
                for i, (t, y) in enumerate(zip(texts, label_sets))
            )
    return root


def _argv(data: Path, out: Path, cache: Path, encoder: Path) -> list[str]:
    return [
        "simulate", "--data", str(data), "--out", str(out), "--cache-dir", str(cache), "--encoder", str(encoder),
        "--strategies", "random,beal", "--initial", "10", "--batch", "10", "--rounds", "2",
        "--repeats", "2", "--mc-passes", "4", "--epochs", "15", "--min-steps", "0", "--no-progress",
    ]  # fmt: skip


def _rows(out: Path) -> list[dict]:
    with (out / "results.csv").open() as f:
        return list(csv.DictReader(f))


def _keyed(rows: list[dict]) -> dict:
    """(strategy, repeat, round) -> the row without its timings; fails on a duplicated key."""
    keyed = {}
    for r in rows:
        key = (r["strategy"], r["repeat"], r["round"])
        assert key not in keyed, f"duplicated row {key}"
        keyed[key] = {k: v for k, v in r.items() if k not in TIMING}
    return keyed


@pytest.fixture(scope="module")
def env(tmp_path_factory, tiny_encoder_dir):
    """A finished run in ``env.out``: (random, beal) x 2 repeats x rounds 0-2 on 80 pool texts;
    ``env.argv(out)`` gives the same command line for another output folder."""
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("sim")
    data, cache = _write_dataset(root / "data"), root / "cache"
    env = SimpleNamespace(data=data, cache=cache, encoder=tiny_encoder_dir, out=root / "full")
    env.argv = lambda out: _argv(data, out, cache, tiny_encoder_dir)
    assert main(env.argv(env.out)) == 0
    return env


def test_outputs_have_the_promised_files_and_columns(env):
    out = env.out
    for name in ("results.csv", "summary.json", "summary.md", "curves.png", "selections.jsonl", "config.json"):
        assert (out / name).stat().st_size > 0, name
    rows = _rows(out)
    assert list(rows[0]) == list(runner.RESULT_FIELDS)
    keyed = _keyed(rows)
    assert len(keyed) == 2 * 2 * 3 + 2  # (random, beal) x 2 repeats x rounds 0..2 + one all-data run per repeat
    for strategy in ("random", "beal"):
        assert [int(keyed[(strategy, "0", str(r))]["n_labeled"]) for r in range(3)] == [10, 20, 30]
    assert keyed[("all-data", "0", "0")]["fraction_labeled"] == "1.000000"
    for r in rows:
        assert 0.0 <= float(r["micro_f1"]) <= 1.0 and 0.0 <= float(r["macro_f1"]) <= 1.0
    assert len(list(env.cache.glob("*.features"))) == 1  # pool + test features, cached once (feature_cache)

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["strategies"]) == {"random", "beal"}
    beal = summary["strategies"]["beal"]
    assert beal["repeats"] == 2
    for key in ("auc", *analysis.TARGETS):
        assert set(beal[key]) == {"micro_f1", "macro_f1"}, key
    assert (
        beal["vs_random"]["micro_f1"]["wins"]
        + beal["vs_random"]["micro_f1"]["losses"]
        + beal["vs_random"]["micro_f1"]["ties"]
        == 2
    )
    md = (out / "summary.md").read_text()
    assert "| data | micro-F1 |" in md and "| data | macro-F1 |" in md


def test_summary_lists_each_strategy_once_per_table_with_paired_intervals(env):
    """Two strategies (random, beal), two repeats: every table of summary.md has one row per strategy, and the
    paired differences against random carry a t-interval over the 2 repeats and a verdict sentence."""
    from tests.unit.test_simulation_stats import assert_rows_and_columns_unique

    md = (env.out / "summary.md").read_text()
    sections = md.split("\n## ")[1:]
    assert len(sections) == 4
    for section in sections:
        assert_rows_and_columns_unique(section)
    area, paired = sections[2], sections[3]
    assert [
        line.split(" | ")[0] for line in area.splitlines() if line.startswith("| ") and "-" not in line[:4]
    ][1:] == ["| random", "| beal"]  # fmt: skip
    assert sum(line.startswith("| beal |") for line in paired.splitlines()) == 1
    assert len([line for line in paired.splitlines() if line.startswith("- ")]) == 4
    vs = json.loads((env.out / "summary.json").read_text())["strategies"]["beal"]["vs_random"]["micro_f1"]
    assert vs["auc_diff"]["n"] == 2 and vs["auc_diff"]["mean"] == vs["mean_auc_diff"]
    assert vs["auc_diff"]["low"] <= vs["auc_diff"]["mean"] <= vs["auc_diff"]["high"]


def test_every_strategy_starts_from_the_same_labels_and_random_and_beal_pick_differently(env):
    out = env.out
    picks = {}
    for line in (out / "selections.jsonl").read_text().splitlines():
        rec = json.loads(line)
        picks[(rec["strategy"], rec["repeat"], rec["round"])] = rec["rows"]
    for repeat in (0, 1):
        assert set(picks[("random", repeat, 1)]) != set(picks[("beal", repeat, 1)])
    rows = _keyed(_rows(out))
    # same initial labels and same training seed: round 0 is the same model for both strategies
    assert rows[("random", "0", "0")]["micro_f1"] == rows[("beal", "0", "0")]["micro_f1"]


def test_beal_picks_the_lowest_expected_confidence(env):
    """Round 1 of BEAL re-derived by hand from the round-0 model: the picks are the 10 lowest EC."""
    out = env.out
    s = runner.Simulation(simulate_config(env.argv(out)))
    labeled = np.sort(s.initial_set(0))
    fit = s.learner.fit(labeled, s.train_seed(0))
    pool = np.setdiff1d(np.arange(s.n), labeled)
    got = [json.loads(line) for line in (out / "selections.jsonl").read_text().splitlines()]
    picked = next(r["rows"] for r in got if (r["strategy"], r["repeat"], r["round"]) == ("beal", 0, 1))
    mc_seed = int(runner._seed_seq(s.cfg.seed, SEED_MC, 0, 1, runner._name_key("beal")).generate_state(1)[0])
    ec = fit.moments(pool, 4, mc_seed, False).ec
    assert sorted(picked) == sorted(pool[np.argsort(ec, kind="stable")[:10]].tolist())


def test_resume_after_a_crash_gives_the_uninterrupted_results(env, tmp_path, monkeypatch):
    full, out = env.out, tmp_path / "resumed"
    real_train_head, calls = learners.train_head, {"n": 0}

    # trainings per repeat: all-data, random rounds 0-2, beal rounds 0-2; call 14 is beal's round 2 of repeat 1,
    # after its picks were logged: the crash leaves picks without a result row
    def crashing(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 14:
            raise KeyboardInterrupt
        return real_train_head(*args, **kw)

    monkeypatch.setattr(learners, "train_head", crashing)
    with pytest.raises(KeyboardInterrupt):
        main(env.argv(out))
    monkeypatch.setattr(learners, "train_head", real_train_head)
    partial = _keyed(_rows(out))
    assert 0 < len(partial) < len(_keyed(_rows(full)))

    # a torn last line (killed mid-write) and a lost finished round are both redone
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    (out / "results.csv").write_text("".join(lines[:-1]) + "beal,1,2,30,0.3")
    assert main(env.argv(out)) == 0
    assert _keyed(_rows(out)) == _keyed(_rows(full))
    # the crashed round's picks are logged once, as in the uninterrupted run (not once more on resume)
    picks = [json.loads(line) for line in (out / "selections.jsonl").read_text().splitlines()]
    full_picks = [json.loads(line) for line in (full / "selections.jsonl").read_text().splitlines()]
    key = lambda r: (r["strategy"], r["repeat"], r["round"])  # noqa: E731
    assert len(picks) == len({key(r) for r in picks}) == len(full_picks)
    assert sorted(picks, key=key) == sorted(full_picks, key=key)

    # a finished run is not redone
    before = (out / "results.csv").read_text()
    assert main(env.argv(out)) == 0
    assert (out / "results.csv").read_text() == before


def test_parallel_workers_give_the_serial_results(env, tmp_path):
    full, out = env.out, tmp_path / "parallel"
    assert main([*env.argv(out), "--workers", "2"]) == 0
    assert _keyed(_rows(out)) == _keyed(_rows(full))


def test_report_only_summarises_the_complete_repeats_and_runs_nothing(env, tmp_path):
    out = tmp_path / "stopped"
    assert main(env.argv(out)) == 0
    before = (out / "results.csv").read_text()
    argv = env.argv(out)
    argv[argv.index("--strategies") + 1] = "random,beal,badge"  # badge never ran here
    argv[argv.index("--repeats") + 1] = "3"  # nor did a third repeat
    assert main([*argv, "--report-only"]) == 0
    assert (out / "results.csv").read_text() == before
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["strategies"]) == {"random", "beal"}
    assert [summary["strategies"][s]["repeats"] for s in ("random", "beal")] == [2, 2]


def test_a_different_setting_is_refused_in_the_same_out(env, capsys):
    argv = env.argv(env.out)
    argv[argv.index("--batch") + 1] = "5"
    assert main(argv) == 2
    assert "other settings" in capsys.readouterr().err


def test_reach_fraction_interpolates_between_rounds():
    x = [0.05, 0.10, 0.15, 0.20]
    y = [0.40, 0.50, 0.60, 0.70]
    # 0.55 lies halfway between rounds 1 and 2: 0.10 + (0.55 - 0.50) / (0.60 - 0.50) * 0.05 = 0.125
    assert analysis.reach_fraction(x, y, 0.55) == pytest.approx(0.125)
    assert analysis.reach_fraction(x, y, 0.60) == pytest.approx(0.15)  # exactly on a round
    assert analysis.reach_fraction(x, y, 0.30) == pytest.approx(0.05)  # already there at the start
    # the first crossing counts, even when the curve dips afterwards: 0.05 + (0.45-0.40)/(0.60-0.40)*0.05
    assert analysis.reach_fraction(x, [0.40, 0.60, 0.30, 0.70], 0.45) == pytest.approx(0.0625)
    assert analysis.reach_fraction(x, y, 0.71) is None
    assert analysis._pct(None) == "not reached" and analysis._pct(0.125) == 12.5


def test_curve_area_is_the_mean_f1_over_the_labeled_range():
    # trapezoids: (0.4+0.5)/2*0.05 + (0.5+0.6)/2*0.05 + (0.6+0.7)/2*0.05 = 0.0825, over a width of 0.15
    assert analysis.curve_area([0.05, 0.10, 0.15, 0.20], [0.40, 0.50, 0.60, 0.70]) == pytest.approx(0.55)


def test_head_moments_match_independent_dropout_passes():
    """Consistent masks (one weight sample per pass) give each text the moments of nn.Dropout passes."""
    from beal_backend.acquisition import binary_entropy, expected_confidence, relevance
    from beal_backend.engine.features import head_moments, head_outputs
    from beal_backend.engine.mc_dropout import Scope, mc_dropout
    from beal_backend.engine.model import ClassifierHead

    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((5, 32)).astype(np.float32)
    head = ClassifierHead(32, 16, 4, dropout=0.3).eval()
    t = 20000
    m = head_moments(head, x, t, seed=1)
    with torch.inference_mode(), mc_dropout(head, Scope("full")) as sampled:
        p = torch.sigmoid(sampled(torch.from_numpy(x).repeat(t, 1))[0]).view(t, 5, 4).double().numpy()
    assert m.passes == t
    assert np.abs(m.mean_prob - p.mean(0)).max() < 0.01
    assert np.abs(m.mean_relevance - relevance(p).mean(0)).max() < 0.01
    assert np.abs(m.mean_entropy - binary_entropy(p).mean(0)).max() < 0.01
    assert np.abs(m.mean_prob - head_outputs(head, x)[0]).max() > 1e-3  # dropout really was on

    det = head_moments(head, x, t, deterministic=True)
    probs = head_outputs(head, x)[0]
    assert det.passes == 1
    np.testing.assert_allclose(det.mean_prob, probs, atol=1e-6)
    np.testing.assert_allclose(det.mean_entropy, binary_entropy(probs), atol=1e-5)
    np.testing.assert_allclose(det.ec, expected_confidence(probs[None]), atol=1e-5)


def test_a_simulated_round_trains_and_scores_as_a_service_round(env, tmp_path, monkeypatch):
    """The default protocol's round = a service round with the same settings: the learner ``worker.rounds``
    builds from Settings -> wiring, trained with the round's held-out slice (pool row r = task r), scored with
    the round's ScoringConfig. Same labeled texts and seeds: the same model, test outputs and EC."""
    from dataclasses import replace

    from beal_backend.config import Settings
    from beal_backend.engine import holdout
    from beal_backend.wiring import scoring_config, train_config
    from tests.unit.test_cli import _service_env

    _service_env(monkeypatch, ENCODER=str(env.encoder), MC_PASSES="4")
    data = _write_dataset(tmp_path / "data", n_pool=200)
    sim = runner.Simulation(simulate_config(["simulate", "--data", str(data), "--out", str(tmp_path / "o"),
                                     "--cache-dir", str(env.cache), "--no-progress"]))  # fmt: skip
    labeled, seed = np.arange(150), sim.train_seed(0)
    simulated = sim.learner.fit(labeled, seed)

    s = Settings.from_env()
    learner = learners.build(s.learner, replace(train_config(s), seed=seed), tmp_path / "round-cache")
    held = holdout.held_out_split(labeled.tolist(), s.val_fraction, s.min_val)  # what promotion.held_out splits
    rows, stop = held.training_rows(len(labeled))
    served = learner.fit(*sim.data.labeled(labeled[rows]), val_rows=stop)
    # as in the round: the gate half never reaches the head; the early-stopping half is trained on (no early stop)
    assert len(held.stop) >= 5 and simulated.trained.metrics["n_val"] == served.metrics["n_val"] == 0
    assert simulated.trained.metrics["n_train"] == served.metrics["n_train"] == len(labeled) - len(held.gate)
    assert simulated.trained.metrics["epochs_run"] == served.metrics["epochs_run"]
    test_x = learner.features(sim.data.test_texts)
    np.testing.assert_allclose(
        simulated.test_probs(),
        learners.pool_deterministic(served, scoring_config(s), features=test_x)[0],
        atol=1e-6,
    )
    pool = np.arange(150, 200)
    ec = learners.pool_moments(served, replace(scoring_config(s), seed=3), learner.features(sim.data.pool_texts[150:]))
    np.testing.assert_allclose(simulated.moments(pool, sim.cfg.mc_passes, 3, False).ec, ec.ec, atol=1e-6)


def test_test_f1_uses_the_engines_decision_rule(env, tmp_path, monkeypatch):
    """The recorded F1 decides labels with ``training.predicted``, the rule /predict and the gate use."""
    from beal_backend.engine import training

    calls, real = [], training.predicted
    monkeypatch.setattr(
        training, "predicted", lambda p, single_label: calls.append(single_label) or real(p, single_label)
    )
    argv = env.argv(tmp_path / "o")
    argv[argv.index("--rounds") + 1], argv[argv.index("--repeats") + 1] = "0", "1"
    assert main(argv) == 0
    assert calls == [False, False, False]  # all-data, random and beal at round 0
