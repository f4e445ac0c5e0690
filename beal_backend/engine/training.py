"""Train the classifier from scratch on all labeled texts (Algorithm 1 retrains every round).

Speed: length-bucketed batches with dynamic padding, bf16 autocast on CUDA, no autograd in evaluation.
Reproducible: one seed drives the split, the batch order, the head's init and dropout.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from beal_backend.engine import encoders, evaluation
from beal_backend.engine.batching import (
    MAX_WORDPIECES,
    bucketed_batches,
    collate,
    encode,
)
from beal_backend.engine.model import MultiLabelClassifier
from beal_backend.engine.scoring import ScoringConfig, autocast, deterministic_outputs


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters. The paper gives none beyond "a fixed number of epochs"; these are the usual BERT
    fine-tuning values (small encoder lr, larger head lr), run for ``epochs`` epochs but at least ``min_steps``
    optimizer steps on every text given. Early stopping is off, as for the frozen head: on the 5-50 texts of a
    round's early-stopping half it kept the first epoch's chance predictions or stopped while the model still
    predicted nothing, and a few hundred texts make too few steps an epoch to learn rare labels
    (``benchmarks/bench_finetune_stopping.py``, ``docs/results/finetune-stopping.md``)."""

    encoder: str = encoders.DEFAULT_ENCODER  # HF path or name; "minilm" = packaged MiniLM BERT
    hidden_size: int = 256  # the hidden layer between C and the sigmoids (Fig. 1)
    dropout: float = 0.1  # BERT's own rate; also the head's, so MC dropout samples both alike
    pooling: str = "cls"  # sentence feature: cls (the paper's C), mean, or auto (encoders.pooling_for)
    learner: str = "finetune"  # which learner made the model: finetune (whole encoder) or frozen (head only)
    max_wordpieces: int = MAX_WORDPIECES
    epochs: int = 8
    min_steps: int = 1000  # at least this many optimizer steps: more epochs when the labeled texts are few
    early_stopping: bool = False  # on: stop on the early-stopping rows (val_rows); off: train on them too
    patience: int = 2  # early stopping: epochs without a better validation score (micro-F1, then loss)
    batch_size: int = 16
    lr_encoder: float = 5e-5
    lr_head: float = 1e-3  # the head starts from random weights, so it gets a larger step
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    val_fraction: float = 0.1  # share held out: a round's held-out slice (holdout.py); early stopping's rows if on
    min_val: int = 10  # below this many held-out texts, train all epochs on everything
    seed: int = 0
    device: str = "cpu"
    single_label: bool = False  # single-choice project: softmax + cross-entropy, argmax predicts one label


@dataclass
class Progress:
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float


@dataclass
class TrainedModel:
    model: MultiLabelClassifier
    tokenizer: Any  # a Hugging Face tokenizer
    labels: list[str]
    config: TrainConfig
    metrics: dict = field(default_factory=dict)

    def hparams(self) -> dict:
        return asdict(self.config)


def split_validation(n: int, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, val) positions; val is empty when it would hold fewer than ``min_val`` texts."""
    perm = np.random.default_rng(cfg.seed).permutation(n)
    n_val = round(n * cfg.val_fraction)
    if n_val < cfg.min_val or n - n_val < 1:
        return np.sort(perm), np.array([], dtype=np.int64)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def train(
    texts: Sequence[str],
    label_sets: Sequence[Sequence[str]],
    labels: list[str],
    cfg: TrainConfig = TrainConfig(),
    on_progress: Callable[[Progress], None] | None = None,
    val_rows: Sequence[int] | None = None,
) -> TrainedModel:
    """Train from scratch. With ``cfg.early_stopping``, ``val_rows`` fixes the early-stopping rows (the service
    keeps the same tasks held out across rounds so versions compare fairly; by default a seeded
    ``val_fraction`` is drawn); without, every text given is trained on."""
    if not texts:
        raise ValueError("no labeled texts to train on")
    if not labels:
        raise ValueError("the label list is empty")
    torch.manual_seed(cfg.seed)
    cfg = replace(cfg, pooling=encoders.pooling_for(cfg.encoder, cfg.pooling))  # saved resolved, never "auto"
    encoder, tokenizer = encoders.load_pretrained(cfg.encoder)
    model = MultiLabelClassifier(
        encoder, len(labels), cfg.hidden_size, cfg.dropout, single_label=cfg.single_label, pooling=cfg.pooling
    ).to(cfg.device)
    enc = encode(tokenizer, texts, cfg.max_wordpieces)
    y = torch.from_numpy(evaluation.multi_hot(label_sets, labels))
    loss_fn, target = objective(y, cfg.single_label)
    tr, va = split_rows(len(texts), cfg, val_rows)

    steps_per_epoch = -(-len(tr) // cfg.batch_size)
    epochs = epochs_for(cfg, steps_per_epoch)
    total = steps_per_epoch * epochs
    opt = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": cfg.lr_encoder},
            {"params": model.head.parameters(), "lr": cfg.lr_head},
        ],
        weight_decay=cfg.weight_decay,
    )
    sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup_ratio * total), total)
    rng = np.random.default_rng(cfg.seed)
    lengths = enc.lengths[tr]

    t0, seen, step = time.perf_counter(), 0, 0

    def run_epoch(epoch: int) -> None:
        nonlocal seen, step
        model.train()
        for batch in bucketed_batches(lengths, cfg.batch_size, rng):
            rows = tr[batch]
            ids, mask = collate(enc, rows, cfg.device)
            with autocast(cfg.device):
                logits = model(ids, mask)
            loss = loss_fn(logits.float(), target[rows].to(cfg.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            seen, step = seen + len(rows), step + 1
            if on_progress:
                on_progress(Progress(epoch, epochs, step, total, loss.item()))

    validate = (lambda: _evaluate(model, enc, va, y.numpy(), cfg)) if len(va) else None
    best, history, epoch = fit_epochs(model, epochs, run_epoch, validate, cfg.patience)
    seconds = time.perf_counter() - t0
    metrics = {
        "n_train": len(tr),
        "n_val": len(va),
        "epochs_run": epoch,
        "train_seconds": round(seconds, 3),
        "train_samples_per_second": round(seen / max(seconds, 1e-9), 2),
        "val_history": history,
        **({"best_epoch": best["epoch"], **{k: v for k, v in best.items() if k != "epoch"}} if best else {}),
    }
    return TrainedModel(model, tokenizer, list(labels), cfg, metrics)


def objective(y: torch.Tensor, single_label: bool):
    """(loss, targets): BCE on the multi-hot rows, or cross-entropy on the class index of one-hot rows."""
    if not single_label:
        return torch.nn.BCEWithLogitsLoss(), y
    bad = np.flatnonzero(y.sum(1).numpy() != 1)
    if len(bad):
        raise ValueError(
            f"single-label training needs exactly one label per text; row {int(bad[0])} has {int(y[bad[0]].sum())}"
        )
    return torch.nn.CrossEntropyLoss(), y.argmax(1)


def predicted(probs: np.ndarray, single_label: bool) -> np.ndarray:
    """Boolean [N, J] predictions: the argmax (single-label) or every probability > 0.5."""
    if not single_label:
        return probs > 0.5
    out = np.zeros(probs.shape, dtype=bool)
    out[np.arange(len(probs)), probs.argmax(1)] = True
    return out


def evaluate(trained: TrainedModel, texts: Sequence[str], label_sets: Sequence[Sequence[str]]) -> dict:
    """Held-out micro/macro-F1 of a trained model (deterministic pass; > 0.5, or the argmax if single-label)."""
    y, pred = evaluation.multi_hot(label_sets, trained.labels), predictions(trained, texts)
    return {"micro_f1": evaluation.micro_f1(y, pred), "macro_f1": evaluation.macro_f1(y, pred)}


def predictions(trained: TrainedModel, texts: Sequence[str]) -> np.ndarray:
    """Boolean [N, J] predictions of the whole model (what /predict serves), one deterministic pass."""
    enc = encode(trained.tokenizer, texts, trained.config.max_wordpieces)
    probs = deterministic_outputs(trained.model, enc, ScoringConfig(device=trained.config.device)).probs
    return predicted(probs, trained.config.single_label)


def split_rows(n: int, cfg, val_rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) rows of both trainers: every row trains and none validates unless ``cfg.early_stopping``;
    then ``val_rows`` when given (the service's stable held-out slice), else a seeded ``split_validation``.
    ``cfg`` needs ``early_stopping``, ``seed``, ``val_fraction`` and ``min_val``."""
    if not cfg.early_stopping:
        return np.arange(n), np.array([], dtype=np.int64)
    if val_rows is None:
        return split_validation(n, cfg)
    va = np.unique(np.asarray(val_rows, dtype=np.int64))
    if len(va) and (va[0] < 0 or va[-1] >= n):
        raise ValueError(f"val_rows must index the {n} texts")
    tr = np.setdiff1d(np.arange(n), va)
    if len(tr) == 0:
        raise ValueError("every labeled text is held out: nothing left to train on")
    return tr, va


def epochs_for(cfg, steps_per_epoch: int) -> int:
    """Both trainers' schedule: ``cfg.epochs``, or more while they make fewer than ``cfg.min_steps`` steps."""
    return max(cfg.epochs, -(-cfg.min_steps // steps_per_epoch))


def fit_epochs(
    module: torch.nn.Module,
    epochs: int,
    run_epoch: Callable[[int], None],
    validate: Callable[[], dict] | None,
    patience: int,
) -> tuple[dict | None, list[dict], int]:
    """The epoch loop of both trainers (the fine-tuned model and the frozen learner's head): ``run_epoch(e)``
    trains one epoch; with ``validate`` (-> ``val_micro_f1``, ``val_loss``, ...) training stops after
    ``patience`` epochs without a better score and the best epoch's weights are restored in ``module``,
    which is left in eval mode. Returns (best scores or None, every epoch's scores, epochs run)."""
    best, best_state, stale, history, epoch = None, None, 0, [], 0
    for epoch in range(1, epochs + 1):
        run_epoch(epoch)
        if validate is None:
            continue
        module.eval()
        scores = {"epoch": epoch, **validate()}
        history.append(scores)
        if best is None or _better(scores, best):
            best, best_state, stale = scores, copy.deepcopy(module.state_dict()), 0
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    module.eval()
    return best, history, epoch


def _better(scores: dict, best: dict) -> bool:
    """Higher validation micro-F1 wins; equal F1 is broken by lower validation loss. While no probability
    passes 0.5 yet (F1 = 0, common with a few hundred texts) the falling loss is the only sign of progress:
    F1 alone stopped training after 1 + patience epochs and kept the epoch-1 model, which predicts nothing
    (both trainers share this rule through ``fit_epochs``)."""
    return (scores["val_micro_f1"], -scores["val_loss"]) > (best["val_micro_f1"], -best["val_loss"])


def _evaluate(model: MultiLabelClassifier, enc, rows: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> dict:
    probs = deterministic_outputs(model, enc.subset(rows), ScoringConfig(device=cfg.device)).probs
    pred = predicted(probs, cfg.single_label)
    return {
        "val_micro_f1": evaluation.micro_f1(y[rows], pred),
        "val_macro_f1": evaluation.macro_f1(y[rows], pred),
        "val_loss": _bce(y[rows], probs),
    }


def _bce(y: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy, the training loss, from probabilities (clipped: float32 sigmoid saturates)."""
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
