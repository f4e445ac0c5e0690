"""Micro/macro-F1 against hand-computed values (scikit-learn's definitions, zero_division=0)."""

from __future__ import annotations

import numpy as np
import pytest

from beal_backend.engine import evaluation

Y_TRUE = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
Y_PRED = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])


def test_macro_f1_counts_labels_that_are_only_predicted():
    # label 0: tp 1, true 2, pred 1 -> 2/3;  label 1: tp 2, true 2, pred 2 -> 1
    # label 2: never true, predicted twice -> 0 (the old definition dropped it: 5/6)
    # label 3: neither true nor predicted -> no F1, left out
    assert evaluation.macro_f1(Y_TRUE, Y_PRED) == pytest.approx((2 / 3 + 1 + 0) / 3)  # 5/9
    # micro: tp 3, true 4, pred 5 -> 6/9
    assert evaluation.micro_f1(Y_TRUE, Y_PRED) == pytest.approx(2 / 3)


def test_macro_f1_edge_cases():
    assert evaluation.macro_f1([[0, 0]], [[0, 1]]) == 0.0  # only a false positive
    assert evaluation.macro_f1([[0, 1]], [[0, 0]]) == 0.0  # only a false negative
    assert evaluation.macro_f1([[0, 1], [0, 0]], [[0, 1], [0, 0]]) == 1.0  # label 0 absent everywhere
    # nothing true, nothing predicted: scikit-learn's f1_score(average="macro"/"micro", zero_division=0) is 0.0
    assert evaluation.macro_f1(np.zeros((3, 2)), np.zeros((3, 2))) == 0.0
    assert evaluation.micro_f1(np.zeros((3, 2)), np.zeros((3, 2))) == 0.0
    # symmetric in truth and prediction, like F1 itself
    assert evaluation.macro_f1(Y_PRED, Y_TRUE) == pytest.approx(evaluation.macro_f1(Y_TRUE, Y_PRED))
