"""Across-run comparison: paired areas, leave-one-dataset-out, and issue #13's default rule, on hand-made summaries."""

from __future__ import annotations

import math

import pytest

from beal_backend.simulation import comparison as cmp


def _summary(areas: dict[str, list[float]]) -> dict:
    """Per strategy the per-repeat area, the same for micro and macro F1."""
    return {"strategies": {name: {"auc": {m: {"per_repeat": per} for m in cmp.METRICS}} for name, per in areas.items()}}


def test_paired_auc_is_the_t_interval_of_per_repeat_differences():
    s = _summary({"a": [0.5, 0.6, 0.7], "random": [0.4, 0.4, 0.4]})
    ci = cmp.paired_auc(s, "a", "random", "micro_f1")
    # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t(0.975, 2) = 4.302653 -> half width 0.248414
    assert ci["mean"] == pytest.approx(0.2)
    assert ci["low"] == pytest.approx(0.2 - 4.302653 * 0.1 / math.sqrt(3), abs=1e-6)
    assert ci["excludes_zero"] is False


def test_the_default_rule_needs_a_sure_win_over_random_and_no_sure_loss_to_beal():
    steady = _summary({"v": [0.52, 0.53, 0.54], "beal": [0.52, 0.53, 0.54], "random": [0.50, 0.50, 0.50]})
    below_beal = _summary({"v": [0.531, 0.532, 0.533], "beal": [0.541, 0.542, 0.543], "random": [0.5, 0.5, 0.5]})
    noisy = _summary({"v": [0.56, 0.48, 0.53], "beal": [0.56, 0.48, 0.53], "random": [0.50, 0.50, 0.50]})
    assert cmp.beats_random(steady, "v") and cmp.not_worse_than_beal(steady, "v")
    assert cmp.beats_random(below_beal, "v") and not cmp.not_worse_than_beal(below_beal, "v")  # 0.01 below, every time
    assert not cmp.beats_random(noisy, "v")  # mean +0.023 but the interval crosses zero
    assert cmp.may_be_default({"x": steady, "y": steady}, "v")
    assert not cmp.may_be_default({"x": steady, "y": below_beal}, "v")


def test_leave_one_dataset_out_chooses_on_the_other_datasets_only():
    """On A and B "u" gains most; on C "w" does. Held-out C gets "u" (chosen on A, B) even though "w" wins there."""
    rnd = [0.5, 0.5, 0.5]

    def s(u, w):
        return _summary({"u": u, "w": w, "beal": [0.5, 0.5, 0.5], "random": rnd})

    runs = {
        "A": s([0.60, 0.61, 0.62], [0.52, 0.53, 0.54]),
        "B": s([0.58, 0.59, 0.60], [0.52, 0.53, 0.54]),
        "C": s([0.51, 0.52, 0.53], [0.70, 0.71, 0.72]),
    }
    out = cmp.leave_one_dataset_out(runs, ["u", "w"])
    # choosing for A: mean gain of u over B, C = (0.09 + 0.02) / 2 = 0.055; of w = (0.03 + 0.21) / 2 = 0.12 -> w
    assert out["A"]["chosen"] == "w"
    assert out["B"]["chosen"] == "w"  # (0.11 + 0.02) / 2 = 0.065 for u vs (0.03 + 0.21) / 2 = 0.12 for w
    assert out["C"]["chosen"] == "u"  # (0.11 + 0.09) / 2 = 0.10 for u vs 0.03 for w
    assert out["C"]["vs_random"]["micro_f1"]["mean"] == pytest.approx(0.02)


def test_the_service_default_rule_needs_no_sure_loss_and_one_sure_win_over_beal():
    """Issue 20: never worse than random or BEAL beyond the noise, better than BEAL beyond it somewhere."""
    rnd, beal = [0.50, 0.50, 0.50], [0.52, 0.53, 0.54]
    level = _summary({"v": [0.52, 0.53, 0.54], "beal": beal, "random": rnd})  # differences to BEAL all 0
    ahead = _summary({"v": [0.54, 0.55, 0.56], "beal": beal, "random": rnd})  # +0.02 every repeat: interval > 0
    # 0.01 below random every repeat: worse beyond the noise, although level with BEAL
    below_random = _summary({"v": [0.49, 0.49, 0.49], "beal": [0.49, 0.49, 0.49], "random": rnd})
    assert not cmp.may_be_service_default({"x": level, "y": level}, "v")  # no sure win over BEAL anywhere
    assert cmp.may_be_service_default({"x": level, "y": ahead}, "v")  # level on one, ahead on the other
    assert not cmp.may_be_service_default({"x": ahead, "y": below_random}, "v")
    # the #13 rule wanted a sure win over random everywhere: "level" (+0.03 over random) passes it, "ahead" too
    assert cmp.may_be_default({"x": level, "y": ahead}, "v")
