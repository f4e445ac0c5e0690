"""Frozen-encoder pieces: the head trained on fixed sentence features, and MC dropout on the head alone.

The encoder's sentence feature does not change while the encoder is frozen, so ``learners.FrozenLearner``
computes it once per text (``feature_cache.py``). Each active-learning round then trains a fresh
``ClassifierHead`` on the cached features (seconds on CPU) and samples it with MC dropout on the head
(``head_moments``): T weight samples of the head applied to a chunk of texts at once and reduced to
per-text moments, never a [T, N, J] array.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from beal_backend.engine import evaluation
from beal_backend.engine.mc_dropout import mc_dropout
from beal_backend.engine.model import ClassifierHead, probabilities
from beal_backend.engine.scoring import Moments, moment_sums
from beal_backend.engine.training import epochs_for, fit_epochs, objective, predicted, split_rows

DEFAULT_CACHE_DIR = Path("~/.cache/beal-backend/features")
PASS_ROWS = 65536  # rows (texts x passes) per sampled forward: bounds memory (~70 MB at hidden 256)


# ---------------------------------------------------------------- head-only training


@dataclass(frozen=True)
class HeadConfig:
    """Head-only training on frozen features: AdamW on minibatches for a fixed number of epochs, as in the
    paper, but at least ``min_steps`` steps (a few hundred labeled texts make few steps per epoch and were
    under-trained by a fixed epoch count). The head trains on every row it is given: ``early_stopping`` (on
    ``val_rows``, else a ``val_fraction`` slice, stopping after ``patience`` epochs without a better micro-F1)
    is off because it measured worse at every label count (``docs/results/head-stopping.md``): on 5-50
    held-out texts the first epoch's chance micro-F1 was not beaten for three epochs while the loss still
    fell, so training stopped and the first epoch's head was kept (StackOverflow titles, 100-400 labels:
    test micro-F1 0.10-0.13 against 0.41-0.54)."""

    hidden_size: int = 256  # as TrainConfig: the hidden layer between C and the sigmoids
    dropout: float = 0.1
    epochs: int = 15
    min_steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    val_fraction: float = 0.0  # held-out share of the labeled texts: the round's gate slice (holdout.py)
    min_val: int = 10  # below this many held-out texts, nothing is held out
    early_stopping: bool = False  # on: stop on the early-stopping rows' micro-F1 (off: see above)
    patience: int = 3  # early stopping: epochs without a better validation score
    seed: int = 0
    device: str = "cpu"


def train_head(
    features: np.ndarray,
    targets: np.ndarray,
    cfg: HeadConfig = HeadConfig(),
    val_rows: Sequence[int] | None = None,
    single_label: bool = False,
) -> tuple[ClassifierHead, dict]:
    """A fresh head trained on ``features[N, H]`` -> multi-hot ``targets[N, J]``; returns (head in eval, metrics).
    With ``cfg.early_stopping``, ``val_rows`` fixes the early-stopping rows (the service's stable held-out
    slice; default: a seeded split); without, they are trained on like the rest.
    ``single_label``: one-hot targets, softmax cross-entropy (a single-choice project)."""
    if len(features) == 0:
        raise ValueError("no labeled texts to train on")
    torch.manual_seed(cfg.seed)
    x = torch.as_tensor(features, dtype=torch.float32, device=cfg.device)
    y = torch.as_tensor(targets, dtype=torch.float32)
    loss_fn, target = objective(y, single_label)
    y, target = y.to(cfg.device), target.to(cfg.device)
    head = ClassifierHead(x.shape[1], cfg.hidden_size, y.shape[1], cfg.dropout).to(cfg.device)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    split = split_rows(len(x), cfg, val_rows)
    tr, va = (torch.as_tensor(a, device=cfg.device) for a in split)
    gen = torch.Generator().manual_seed(cfg.seed)

    with _cpu_threads(1 if cfg.device == "cpu" else None):
        val_f1, epoch = _fit(head, opt, x, y, (loss_fn, target, single_label), tr, va, gen, cfg)
    return head, {
        "n_train": len(tr),
        "n_val": len(va),
        "epochs_run": epoch,
        "val_micro_f1": val_f1 if len(va) else None,
    }


def _fit(head, opt, x, y, loss, tr, va, gen, cfg: HeadConfig) -> tuple[float | None, int]:
    """Minibatch epochs (at least ``min_steps`` steps) through ``training.fit_epochs``: the best epoch has
    the highest validation micro-F1, the lower loss breaking ties -> (its micro-F1, epochs run)."""
    loss_fn, target, single = loss  # (loss function, its targets, single-label)
    steps_per_epoch = -(-len(tr) // cfg.batch_size)
    epochs = epochs_for(cfg, steps_per_epoch)

    def run_epoch(_epoch: int) -> None:
        head.train()
        order = tr[torch.randperm(len(tr), generator=gen).to(cfg.device)]
        for batch in order.split(cfg.batch_size):
            loss = loss_fn(head(x[batch])[0], target[batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def validate() -> dict:
        with torch.inference_mode():
            logits = head(x[va])[0]
            pred = predicted(probabilities(logits, single).cpu().numpy(), single)
            return {
                "val_micro_f1": evaluation.micro_f1(y[va].cpu().numpy(), pred),
                "val_loss": float(loss_fn(logits, target[va])),
            }

    best, _, epoch = fit_epochs(head, epochs, run_epoch, validate if len(va) else None, cfg.patience)
    return (best["val_micro_f1"] if best else None), epoch


@contextmanager
def _cpu_threads(n: int | None):
    """Run with ``n`` intra-op threads, then restore. Minibatches of a small head are too small to share out:
    with 2 threads on 2 busy cores each step waited on OpenMP barriers, 10-20x slower than 1 thread."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ---------------------------------------------------------------- scoring the head


def head_outputs(
    head: ClassifierHead, features: np.ndarray, device: str = "cpu", single_label: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """One pass with dropout off -> (probabilities [N, J], hidden layer [N, hidden]) as float32."""
    with torch.inference_mode(), mc_dropout(head, None) as view:
        logits, hidden = view(torch.as_tensor(features, dtype=torch.float32, device=device))
        return probabilities(logits, single_label).cpu().numpy(), hidden.cpu().numpy()


def head_moments(
    head: ClassifierHead,
    features: np.ndarray,
    passes: int,
    seed: int = 0,
    deterministic: bool = False,
    device: str = "cpu",
    single_label: bool = False,
) -> Moments:
    """Moments over T MC-dropout passes of the head (or one pass, dropout off, when ``deterministic``).

    Same contract as ``scoring.mc_moments``: mean R(Y), mean Y and mean binary entropy H(Y), each [N, J].

    Consistent MC dropout: pass t draws one mask per dropout layer of the head and applies it to every
    text, i.e. pass t is one weight sample W1 diag(m1_t), W2 diag(m2_t) (dropout before a linear layer
    zeroes rows of its transposed weight; Gal & Ghahramani's weight-space view, the "consistent dropout" of
    BatchBALD). Each text's T outputs have exactly the distribution of T ``nn.Dropout`` passes; only the
    errors of different texts are correlated (common random numbers, which steady their ranking). No
    per-element masks are drawn, and the first layer of all T passes is one [B, H] x [H, T * hidden] matmul:
    ~2.4x less CPU than replicating the features T times.
    """
    passes = 1 if deterministic else passes
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    n, j = len(features), head.out.out_features
    w1, b1, w2 = _weight_samples(head, passes, seed, deterministic)
    hid = head.hidden.out_features
    sums = np.zeros((3, n, j))
    x = torch.as_tensor(features, dtype=torch.float32, device=device)
    chunk = max(1, PASS_ROWS // passes)  # texts per forward; each forward holds chunk x passes rows
    with torch.inference_mode():
        w1, b1, w2, b2 = w1.to(device), b1.to(device), w2.to(device), head.out.bias
        for start in range(0, n, chunk):
            xb = x[start : start + chunk]
            h = head.act(torch.addmm(b1, xb, w1)).view(len(xb), passes, hid).transpose(0, 1)  # [T, B, hidden]
            logits = torch.baddbmm(b2, h, w2)  # [T, B, J]
            p = probabilities(logits, single_label).double()
            sums[:, start : start + len(xb)] = moment_sums(p).cpu().numpy()
    sums /= passes
    return Moments(sums[0], sums[1], sums[2], passes)


def _weight_samples(head: ClassifierHead, passes: int, seed: int, deterministic: bool):
    """-> (W1 samples [H, T * hidden] pass-major, b1 repeated [T * hidden], W2 samples [T, hidden, J]).

    ClassifierHead is dropout -> Linear -> act -> dropout -> Linear; ``x m / (1 - p)`` times W^T equals x
    times W^T with row k scaled by m_k / (1 - p).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        w1t, w2t = head.hidden.weight.detach().t().cpu(), head.out.weight.detach().t().cpu()  # [H, hid], [hid, J]
        keep1 = _keep(passes, w1t.shape[0], head.dropout_in.p, gen, deterministic)  # [T, H]
        keep2 = _keep(passes, w2t.shape[0], head.dropout_out.p, gen, deterministic)  # [T, hid]
        w1 = (w1t[None] * keep1[:, :, None]).permute(1, 0, 2).reshape(w1t.shape[0], -1)
        w2 = w2t[None] * keep2[:, :, None]
        return w1, head.hidden.bias.detach().cpu().repeat(passes), w2


def _keep(passes: int, width: int, p: float, gen: torch.Generator, deterministic: bool) -> torch.Tensor:
    """Scaled dropout keep-masks [T, width]: 1/(1-p) with probability 1-p, else 0 (all ones when off)."""
    if deterministic or p == 0.0:
        return torch.ones(passes, width)
    return (torch.rand(passes, width, generator=gen) >= p).float() / (1.0 - p)
