"""Paired statistics of the simulation report, on hand-made learning curves with hand-computed answers."""

from __future__ import annotations

import pytest

from beal_backend.simulation.analysis import paired_interval, summarize
from beal_backend.simulation.config import ALL_DATA, SimulationConfig
from beal_backend.simulation.report import summary_markdown

T_975_2 = 4.302653  # Student t quantile 0.975 with 2 degrees of freedom (tables)


def test_t_interval_of_paired_differences():
    # [1, 2, 3]: mean 2, sample sd 1, half width t_{0.975,2} * 1 / sqrt(3) = 4.302653 / 1.732051 = 2.484138
    ci = paired_interval([1.0, 2.0, 3.0])
    assert ci["n"] == 3 and ci["mean"] == 2.0 and ci["confidence"] == 0.95
    assert ci["low"] == pytest.approx(2 - 2.484138, abs=1e-5) and ci["high"] == pytest.approx(2 + 2.484138, abs=1e-5)
    assert ci["excludes_zero"] is False
    shifted = paired_interval([3.0, 4.0, 5.0])  # the same width around 4: [1.516, 6.484] lies above zero
    assert shifted["low"] == pytest.approx(4 - 2.484138, abs=1e-5) and shifted["excludes_zero"] is True
    assert paired_interval([-3.0, -4.0, -5.0])["excludes_zero"] is True
    # two differences: t_{0.975,1} = 12.706205, sd of [1, 3] = 1.414214, half = 12.706205 * 1.414214 / 1.414214
    assert paired_interval([1.0, 3.0])["high"] == pytest.approx(2 + 12.706205, abs=1e-5)


def test_no_interval_from_fewer_than_two_repeats():
    assert paired_interval([0.5]) == {"n": 1, "mean": 0.5, "low": None, "high": None, "excludes_zero": None,
                                      "confidence": 0.95}  # fmt: skip
    assert paired_interval([])["mean"] is None


def _rows(curves: dict[str, list[list[float]]]) -> list[dict]:
    """results.csv rows: a pool of 100 texts, rounds at 10/20/30 labeled, all-data F1 1.0 in every repeat."""
    rows = []
    for rep in range(3):
        rows.append(_row(ALL_DATA, rep, 0, 100, 1.0))
        for name, per_repeat in curves.items():
            rows += [_row(name, rep, r, 10 * (r + 1), f1) for r, f1 in enumerate(per_repeat[rep])]
    return rows


def _row(name, rep, rnd, n, f1) -> dict:
    return {"strategy": name, "repeat": rep, "round": rnd, "n_labeled": n, "fraction_labeled": n / 100,
            "micro_f1": f1, "macro_f1": f1, "select_seconds": 0, "train_seconds": 0}  # fmt: skip


CURVES = {
    "random": [[0.5, 0.75, 1.0]] * 3,  # area (0.625 + 0.875) * 0.1 / 0.2 = 0.75; reaches 0.98 at 0.292
    "beal": [[0.5, 1.0, 1.0], [0.98, 1.0, 1.0], [0.5, 0.75, 1.0]],  # areas 0.875, 0.995, 0.75; reach 0.196, 0.1, 0.292
    "entropy": [[0.6, 0.8, 1.0], [0.62, 0.8, 1.0], [0.64, 0.8, 1.0]],  # areas 0.8, 0.805, 0.81
}
CFG = SimulationConfig(data="x", out="y", strategies=tuple(CURVES), initial=10, batch=10, rounds=2, repeats=3)


def test_area_difference_and_labels_saved_against_random():
    vs = summarize(_rows(CURVES), CFG)["strategies"]["beal"]["vs_random"]["micro_f1"]
    # area differences 0.125, 0.245, 0: mean 0.123333, sample sd 0.122509,
    # half width 4.302653 * 0.122509 / sqrt 3 = 0.304328
    assert vs["auc_diff"]["n"] == 3 and vs["auc_diff"]["mean"] == pytest.approx(0.123333, abs=1e-6)
    assert vs["auc_diff"]["high"] == pytest.approx(0.123333 + 0.304328, abs=1e-5)
    assert vs["mean_auc_diff"] == vs["auc_diff"]["mean"] and (vs["wins"], vs["losses"], vs["ties"]) == (2, 0, 1)
    # labels saved to reach 0.98: random at 0.2 + 0.23 / 0.25 * 0.1 = 0.292, beal at 0.196, 0.1, 0.292;
    # times the 100-text pool: 9.6, 19.2, 0 -> mean 9.6, sd 9.6, half width 4.302653 * 9.6 / sqrt 3 = 23.847
    saved = vs["labels_saved_98pct"]
    assert saved["per_repeat"] == [9.6, 19.2, 0.0]
    assert saved["mean"] == pytest.approx(9.6) and saved["low"] == pytest.approx(9.6 - 23.847, abs=1e-3)
    assert saved["excludes_zero"] is False


def test_a_curve_that_never_reaches_the_target_leaves_its_repeat_out_of_labels_saved():
    curves = {"random": CURVES["random"], "beal": [[0.5, 1.0, 1.0], [0.5, 0.6, 0.7], [0.98, 1.0, 1.0]]}
    cfg = SimulationConfig(data="x", out="y", strategies=("random", "beal"), initial=10, batch=10, rounds=2, repeats=3)
    saved = summarize(_rows(curves), cfg)["strategies"]["beal"]["vs_random"]["micro_f1"]["labels_saved_98pct"]
    assert saved["n"] == 2 and saved["per_repeat"] == [9.6, 19.2]


def test_markdown_gives_the_intervals_and_one_verdict_per_metric():
    md = summary_markdown(summarize(_rows(CURVES), CFG))
    section = md[md.index("## Paired differences against random (95% t-interval") :]
    assert "| beal | +0.1233 [-0.1810, +0.4277] (n=3) |" in section
    # entropy: area differences 0.05, 0.055, 0.06 -> mean 0.055, sd 0.005, half width 0.012421: above zero
    assert "| entropy | +0.0550 [+0.0426, +0.0674] (n=3) |" in section
    verdicts = [line for line in section.splitlines() if line.startswith("- ")]
    assert len(verdicts) == 4  # area and labels saved, micro and macro
    assert verdicts[0] == (
        "- Area under the micro-F1 curve, strategy minus random: the interval lies above zero (better than random) "
        "for entropy; the interval contains zero (not distinguishable from random) for beal."
    )
    assert "| random |" not in section  # random against itself says nothing


def test_each_strategy_once_in_every_table_even_when_named_twice():
    cfg = SimulationConfig(data="x", out="y", strategies=("random", "beal", "random"), initial=10, batch=10, rounds=2,
                           repeats=3)  # fmt: skip
    assert cfg.strategies == ("random", "beal")
    md = summary_markdown(summarize(_rows({k: CURVES[k] for k in ("random", "beal")}), cfg))
    for section in md.split("\n## ")[1:]:
        assert_rows_and_columns_unique(section)


def assert_rows_and_columns_unique(section: str) -> None:
    """Each row of a table (its first two cells: strategy, or dataset and metric) and each column, once."""
    table = [line.split(" | ") for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    keys = [tuple(cells[:2]) for cells in table[1:]]
    assert len(keys) == len(set(keys)) and len(table[0]) == len(set(table[0])), section


def test_labels_saved_against_another_strategy_pairs_the_repeats_that_both_reached_it():
    from beal_backend.simulation.comparison import labels_saved

    summary = summarize(_rows(CURVES), CFG)
    # entropy reaches 0.98 at 0.2 + 0.18 / 0.2 * 0.1 = 0.29 in every repeat; beal at 0.196, 0.1, 0.292:
    # x 100 texts -> 9.4, 19.0, -0.2 labels saved, mean 9.4
    saved = labels_saved(summary, "beal", "micro_f1", base="entropy")
    assert saved["n"] == 3 and saved["mean"] == pytest.approx(9.4)
    assert (
        labels_saved(summary, "beal", "micro_f1")
        == summary["strategies"]["beal"]["vs_random"]["micro_f1"]["labels_saved_98pct"]
    )
