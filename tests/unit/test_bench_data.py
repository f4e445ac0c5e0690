"""Benchmarks find their data without a hard-coded path: --data / BEAL_DATASETS, ../shared/datasets, or the
repository's sample."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import _common  # noqa: E402


def test_env_var_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("BEAL_DATASETS", str(tmp_path))
    assert _common.default_datasets() == tmp_path


def test_shared_beside_the_repo_else_the_fixture_sample(monkeypatch, tmp_path):
    monkeypatch.delenv("BEAL_DATASETS", raising=False)
    repo = tmp_path / "beal-backend"
    monkeypatch.setattr(_common, "ROOT", repo)
    assert _common.default_datasets() == repo / "tests" / "fixtures"
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    assert _common.default_datasets() == tmp_path / "shared" / "datasets"


def test_the_fixture_sample_loads_as_a_dataset():
    texts, label_sets, labels = _common.load_dataset("goemotions", 50, data=ROOT / "tests" / "fixtures")
    assert len(texts) == len(label_sets) == 50 and len(labels) == 28
    assert all(set(ls) <= set(labels) and ls for ls in label_sets)


def test_benchmarks_read_data_with_the_simulation_loader(tmp_path):
    """One loader: a benchmark's sample of n texts is the pool ``beal simulate --pool-size n`` draws."""
    from beal_backend.simulation.datasets import load_dataset

    folder = ROOT / "tests" / "fixtures" / "goemotions"
    texts, label_sets, labels = _common.load_dataset("goemotions", 50, seed=3, data=folder.parent)
    dataset = tmp_path / "goemotions"  # the sample has no test split: the simulation needs one
    dataset.mkdir()
    for name in ("train.jsonl", "labels.txt"):
        (dataset / name).symlink_to(folder / name)
    (dataset / "test.jsonl").write_text('{"id": "t", "text": "fine", "labels": ["joy"]}\n')
    pool = load_dataset(dataset, pool_size=50, seed=3)
    assert (texts, label_sets, labels) == (pool.pool_texts, pool.pool_labels, pool.labels)
    assert texts != _common.load_dataset("goemotions", 50, seed=4, data=folder.parent)[0]
