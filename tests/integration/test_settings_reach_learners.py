"""Issue 21 item 8: every training setting the README documents reaches the code of each learner it names,
from the environment through ``wiring.train_config``; the frozen head's own schedule is what the README says."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from beal_backend.config import Settings
from beal_backend.engine import learners
from beal_backend.engine.features import HeadConfig
from beal_backend.engine.training import TrainConfig
from beal_backend.wiring import train_config
from tests.conftest import LABELS, synthetic_texts

README = Path(__file__).resolve().parents[2] / "README.md"
ENV = {"DEVICE": "cpu", "POOLING": "cls", "EPOCHS": "3", "BATCH_SIZE": "4", "LEARNING_RATE": "0.0007", "SEED": "5"}


def _config(encoder, **env) -> TrainConfig:
    s = Settings.from_env({**ENV, "ENCODER": str(encoder), **env})
    return replace(train_config(s), hidden_size=16)  # a small head: only the settings under test matter


def test_epochs_min_steps_batch_size_learning_rate_and_seed_reach_the_finetune_learner(tiny_encoder_dir, monkeypatch):
    groups, steps, real_adamw = [], [], torch.optim.AdamW
    monkeypatch.setattr(
        torch.optim,
        "AdamW",
        lambda params, **kw: (groups.append([g["lr"] for g in params]), real_adamw(params, **kw))[1],
    )
    texts, label_sets = synthetic_texts(10, seed=0)
    learner = learners.build("finetune", _config(tiny_encoder_dir, MIN_STEPS="0"))
    trained = learner.fit(texts, label_sets, LABELS, on_progress=steps.append, val_rows=[0, 1])
    assert trained.metrics["epochs_run"] == 3  # EPOCHS (no early stopping: every epoch runs)
    assert len(steps) == steps[-1].steps == 3 * 3  # BATCH_SIZE 4: ceil(10 / 4) = 3 steps an epoch, every text
    assert groups == [[0.0007, TrainConfig().lr_head]]  # LEARNING_RATE: the encoder's rate; the new head's own
    steps.clear()
    longer = learners.build("finetune", _config(tiny_encoder_dir, MIN_STEPS="10"))
    longer.fit(texts, label_sets, LABELS, on_progress=steps.append)
    assert (len(steps), steps[-1].epochs) == (12, 4)  # MIN_STEPS 10: ceil(10 / 3) = 4 epochs of 3 steps
    assert trained.config.seed == 5  # SEED


def test_seed_and_held_out_settings_reach_the_frozen_head_and_its_schedule_is_its_own(tiny_encoder_dir, monkeypatch):
    seen, real_train_head = [], learners.train_head
    monkeypatch.setattr(
        learners, "train_head", lambda x, y, cfg, **kw: (seen.append(cfg), real_train_head(x, y, cfg, **kw))[1]
    )
    texts, label_sets = synthetic_texts(12, seed=0)
    learners.build("frozen", _config(tiny_encoder_dir, VAL_FRACTION="0.3", MIN_VAL="2")).fit(texts, label_sets, LABELS)
    (cfg,) = seen
    assert (cfg.seed, cfg.val_fraction, cfg.min_val) == (5, 0.3, 2)  # SEED, VAL_FRACTION, MIN_VAL reach the head
    # EPOCHS, BATCH_SIZE and LEARNING_RATE are the finetune learner's: the head keeps its fixed schedule
    head = HeadConfig()
    assert (cfg.epochs, cfg.min_steps, cfg.batch_size, cfg.lr, cfg.patience) == (
        head.epochs,
        head.min_steps,
        head.batch_size,
        head.lr,
        head.patience,
    )


def test_readme_names_the_learner_of_each_training_setting_and_how_each_stops():
    row = next(line for line in README.read_text().splitlines() if line.startswith("| `EPOCHS`"))
    head = HeadConfig()
    assert "`finetune` learner" in row and "`frozen` learner ignores them" in row
    assert not head.early_stopping and not TrainConfig().early_stopping and row.count("no early stopping") == 2
    train = TrainConfig()
    assert f"| {train.epochs}, {train.min_steps}, {train.batch_size}, " in row  # the finetune learner's defaults
    assert f"batch {head.batch_size}" in row and f"AdamW {head.lr:g}" in row
    assert f"{head.epochs} epochs or {head.min_steps:,} steps" in row
