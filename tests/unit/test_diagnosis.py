"""The metrics of experiments/diagnose_acquisition.py (issue #13) on tiny arrays with hand-computed answers;
they are pure NumPy, so importing them pulls in no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))

import _diagnosis_metrics as dm  # noqa: E402


def test_mean_pairwise_cosine_leaves_the_diagonal_out():
    # cos(e1, e2) = 0, cos(e1, e1 + e2) = cos(e2, e1 + e2) = 1/sqrt 2; mean over the 3 pairs
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert dm.mean_pairwise_cosine(x) == pytest.approx(np.sqrt(2) / 3)
    assert dm.mean_pairwise_cosine(3 * x) == pytest.approx(np.sqrt(2) / 3)  # scale-free
    assert dm.mean_pairwise_cosine(np.ones((4, 3))) == pytest.approx(1.0)
    assert np.isnan(dm.mean_pairwise_cosine(x[:1]))


def test_near_duplicate_share_counts_rows_with_a_close_neighbour():
    # rows 0 and 1: cos = 1 / sqrt(1.01) = 0.995 > 0.9; row 2's nearest neighbour has cos 0.0995
    x = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]])
    assert dm.near_duplicate_share(x, 0.9) == pytest.approx(2 / 3)
    assert dm.near_duplicate_share(x, 0.999) == 0.0
    assert dm.near_duplicate_share(np.eye(3), 0.9) == 0.0  # a row is never its own neighbour


def test_knn_cosine_distance_skips_the_row_itself():
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    assert dm.knn_cosine_distance(x, k=1).tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert dm.knn_cosine_distance(x, k=2, chunk=2).tolist() == pytest.approx([0.5, 0.5, 1.0])


def test_rankdata_averages_ties():
    assert dm.rankdata(np.array([10, 20, 20, 30])).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert dm.rankdata(np.array([3.0, 1.0, 2.0])).tolist() == [3.0, 1.0, 2.0]


def test_auroc_is_the_share_of_correctly_ordered_pairs():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered right
    assert dm.auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert dm.auroc(np.array([1.0, 1.0]), np.array([True, False])) == pytest.approx(0.5)  # a tie counts half
    assert dm.auroc(np.array([2.0, 1.0]), np.array([False, True])) == 0.0
    assert np.isnan(dm.auroc(np.array([1.0, 2.0]), np.array([True, True])))


def test_spearman_from_rank_differences():
    # d = (0, 1, 1, 0): rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert dm.spearman(np.array([1, 2, 3, 4]), np.array([1, 3, 2, 4])) == pytest.approx(0.8)
    assert dm.spearman(np.array([1, 2, 3]), np.array([10, 20, 90])) == pytest.approx(1.0)
    assert dm.spearman(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    assert np.isnan(dm.spearman(np.array([1, 2, 3]), np.array([5, 5, 5])))


def test_set_f1_and_label_profile():
    gold = np.array([[1, 0, 1], [0, 0, 0], [1, 0, 0]])
    pred = np.array([[1, 0, 0], [0, 0, 0], [0, 1, 0]])
    assert dm.set_f1(gold, pred).tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    y = np.array([[1, 0], [1, 1]])
    prof = dm.label_profile(y, freq=np.array([1.0, 0.5]), rare=np.array([False, True]))
    assert prof == pytest.approx({"label_freq": 2.5 / 3, "rare_share": 0.5, "labels_per_text": 1.5})


def test_bootstrap_interval_of_a_perfect_against_a_useless_score():
    pos = np.array([True, False] * 20)
    perfect, useless = pos.astype(float), np.zeros(len(pos))
    low, high = dm.bootstrap_auroc_diff(useless, pos, perfect, pos, resamples=50)
    assert low == pytest.approx(0.5) and high == pytest.approx(0.5)


def test_the_metrics_import_without_torch():
    code = "import sys; sys.path.insert(0, 'experiments'); import _diagnosis_metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
