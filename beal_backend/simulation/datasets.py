"""Labeled datasets on disk: ``labels.txt`` + ``train.jsonl`` (the pool) + ``test.jsonl``, one JSON line per text
``{"id", "text", "labels": [names]}``; seeded subsamples. The simulation and the benchmarks read data here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beal_backend.engine import evaluation
from beal_backend.simulation.config import SEED_POOL, SEED_TEST


@dataclass(frozen=True)
class Dataset:
    """A pool (train.jsonl, possibly subsampled) and a test set, with gold label names and multi-hot targets."""

    name: str
    labels: list[str]
    pool_texts: list[str]
    pool_labels: list[list[str]]
    test_texts: list[str]
    test_y: np.ndarray

    @property
    def pool_y(self) -> np.ndarray:
        return evaluation.multi_hot(self.pool_labels, self.labels)

    def labeled(self, rows) -> tuple[list[str], list[list[str]], list[str]]:
        """(texts, label sets, labels) of the pool rows ``rows``: what a learner's ``fit`` takes."""
        return [self.pool_texts[i] for i in rows], [self.pool_labels[i] for i in rows], self.labels


def load_dataset(
    path: str | Path, pool_size: int | None = None, test_size: int | None = None, seed: int = 0
) -> Dataset:
    """The dataset in folder ``path``. ``pool_size``/``test_size`` draw a seeded random subset (kept in file
    order). ``val.jsonl`` is not read: early stopping uses a slice of the labeled texts, as a real annotation
    loop would have to."""
    root = Path(path)
    labels = read_labels(root)
    pool = read_pool(root, pool_size, seed)
    test = _subsample(_read_jsonl(root / "test.jsonl"), test_size, seed, SEED_TEST)
    return Dataset(
        name=root.resolve().name,
        labels=labels,
        pool_texts=[r["text"] for r in pool],
        pool_labels=[list(r["labels"]) for r in pool],
        test_texts=[r["text"] for r in test],
        test_y=evaluation.multi_hot([r["labels"] for r in test], labels),
    )


def read_labels(root: Path) -> list[str]:
    """The label names of ``labels.txt``, one a line (blank lines skipped)."""
    lines = (Path(root) / "labels.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def read_pool(root: Path, size: int | None = None, seed: int = 0) -> list[dict]:
    """The records of ``train.jsonl``: all, or the seeded sample of ``size`` that ``load_dataset`` takes as the pool."""
    return _subsample(_read_jsonl(Path(root) / "train.jsonl"), size, seed, SEED_POOL)


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _subsample(records: list[dict], size: int | None, seed: int, tag: int) -> list[dict]:
    if size is None or size >= len(records):
        return records
    keep = np.sort(np.random.default_rng([seed, tag]).choice(len(records), size=size, replace=False))
    return [records[i] for i in keep]
