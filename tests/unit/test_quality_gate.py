"""The quality gate (issue 21 item 5): early stopping and the gate on disjoint, stable halves of the held-out
slice, and a paired bootstrap whose margin grows as the gate slice shrinks. Hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from beal_backend.engine import evaluation
from beal_backend.engine.holdout import HeldOut, held_out_rows, held_out_split, paired_bootstrap
from beal_backend.worker import promotion


def test_halves_are_disjoint_cover_the_slice_and_keep_their_role_as_the_project_grows():
    ids = list(range(1, 801))
    split = held_out_split(ids, 0.1, 10)
    assert not set(split.stop) & set(split.gate)
    assert sorted(split.stop + split.gate) == held_out_rows(ids, 0.1, 10)
    assert 0.3 < len(split.gate) / (len(split.stop) + len(split.gate)) < 0.7  # a second hash: about half each
    grown = list(range(1, 1601))
    later = held_out_split(grown, 0.1, 10)
    assert {ids[r] for r in split.gate} <= {grown[r] for r in later.gate}
    assert {ids[r] for r in split.stop} <= {grown[r] for r in later.stop}
    assert held_out_split([1, 2, 3], 0.1, 10) == HeldOut(stop=[], gate=[])  # no slice: no halves


def test_training_rows_leave_the_gate_half_out_and_point_at_the_early_stopping_half():
    # 6 texts, early stopping on row 1, gate on rows 3 and 4: the learner gets rows 0 1 2 5, row 1 at position 1
    assert HeldOut(stop=[1], gate=[3, 4]).training_rows(6) == ([0, 1, 2, 5], [1])
    assert HeldOut(stop=[], gate=[]).training_rows(3) == ([0, 1, 2], [])


def _rows(n_right: int, n_wrong: int):
    """Truth [1, 0] on every text; the current version right everywhere, the candidate [0, 1] on n_wrong."""
    n = n_right + n_wrong
    y = np.tile([True, False], (n, 1))
    cand = y.copy()
    cand[n_right:] = [False, True]
    return y, cand, y.copy()


def test_bootstrap_point_values_are_the_f1_of_the_whole_slice():
    y, cand, cur = _rows(3, 1)
    out = paired_bootstrap(y, cand, cur)
    # candidate: tp 3, 4 true + 4 predicted -> micro 6/8; label 0 F1 6/7, label 1 F1 0 -> macro 3/7
    assert out["micro_f1"]["candidate"] == pytest.approx(0.75) == evaluation.micro_f1(y, cand)
    assert out["macro_f1"]["candidate"] == pytest.approx(3 / 7) == evaluation.macro_f1(y, cand)
    assert out["micro_f1"]["current"] == 1.0 and out["macro_f1"]["current"] == 1.0  # label 1 absent: left out
    assert out["micro_f1"]["difference"] == pytest.approx(-0.25)


def test_same_predictions_differ_by_exactly_zero():
    y, cand, _ = _rows(5, 3)
    out = paired_bootstrap(y, cand, cand)
    assert all(out[k]["difference"] == 0.0 and out[k]["upper"] == 0.0 for k in ("micro_f1", "macro_f1"))


def test_the_same_quarter_worse_passes_on_4_texts_and_fails_on_40():
    """Candidate wrong on a quarter of the texts the current version gets right: point difference -0.25 in
    micro-F1 both times. A resample without a wrong text gives difference 0: with 4 texts that happens with
    probability (3/4)^4 = 0.32 > 5 %, so the 95 % upper bound is 0: not worse beyond the noise. With 40 texts,
    (3/4)^40 = 1e-5 and the difference is (right share - 1) ~ -0.25 +- 0.07: upper bound about -0.14 < -0.02."""
    small = paired_bootstrap(*_rows(3, 1))
    assert small["micro_f1"]["difference"] == pytest.approx(-0.25) and small["micro_f1"]["upper"] == 0.0
    large = paired_bootstrap(*_rows(30, 10))
    assert large["micro_f1"]["difference"] == pytest.approx(-0.25)
    assert -0.2 < large["micro_f1"]["upper"] < -0.08
    assert _decide(small)["promoted"] and not _decide(large)["promoted"]


def test_two_texts_one_wrong_upper_bound_is_zero():
    # resample = 2 draws; both the right text with probability 1/4 > 5 %, and no resample beats the current
    out = paired_bootstrap(*_rows(1, 1))
    assert out["micro_f1"]["upper"] == 0.0 and out["macro_f1"]["upper"] == 0.0


def test_a_better_candidate_is_promoted_and_a_negative_margin_asks_for_a_plausible_gain():
    y, worse, right = _rows(30, 10)
    out = paired_bootstrap(y, right, worse)  # the candidate is now the one right everywhere
    assert out["micro_f1"]["difference"] == pytest.approx(0.25) and out["micro_f1"]["upper"] > 0.25
    assert _decide(out)["promoted"]
    assert not _decide(out, margin=-0.5)["promoted"]  # must be better by 0.5: not even the upper bound is


def _decide(boot: dict, margin: float = 0.02, n_gate: int = 40) -> dict:
    cand = {"micro_f1": boot["micro_f1"]["candidate"], "macro_f1": boot["macro_f1"]["candidate"]}
    current = {"version": "v1", "bootstrap": boot}
    return promotion.decide({**cand, "n_held_out": 2 * n_gate, "n_gate": n_gate}, current, margin)


def test_rejection_reason_names_the_metric_the_bound_and_the_slice():
    d = _decide(paired_bootstrap(*_rows(30, 10)))
    assert not d["promoted"]
    assert d["reason"].startswith("worse than v1 beyond the noise of 40 gate texts and margin 0.02: micro_f1 0.750 vs")


def test_without_a_comparable_current_version_the_candidate_is_promoted():
    cand = {"micro_f1": 0.1, "macro_f1": 0.1, "n_held_out": 12, "n_gate": 6}
    assert promotion.decide(cand, None, 0.02)["reason"] == "first model of the project"
    assert "label set changed" in promotion.decide(cand, {"version": "v1", "labels_changed": True}, 0.02)["reason"]
    saw = promotion.decide(cand, {"version": "v1", "saw_the_slice": True}, 0.02)
    assert saw["promoted"] and "not comparable" in saw["reason"]
    none = promotion.decide({**cand, "n_gate": 0}, {"version": "v1"}, 0.02)
    assert none["promoted"] and none["reason"].startswith("no gate slice yet")


def test_bootstrap_is_seeded_and_refuses_mismatched_arrays():
    rows = _rows(7, 5)
    assert paired_bootstrap(*rows, seed=3) == paired_bootstrap(*rows, seed=3)
    with pytest.raises(ValueError):
        paired_bootstrap(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)))


def test_a_large_slice_is_resampled_in_chunks_and_gives_a_tight_bound():
    # 5,000 texts (resampled 800 + 200 at a time), a quarter wrong: difference -0.25, upper bound about
    # -0.25 + 1.645 * sqrt(0.75 * 0.25 / 5000) = -0.240
    out = paired_bootstrap(*_rows(3750, 1250))
    assert out["micro_f1"]["difference"] == pytest.approx(-0.25)
    assert -0.245 < out["micro_f1"]["upper"] < -0.235
