"""Pool scoring: T MC-dropout passes, batched and streamed into O(N*J) moments; one deterministic pass.

The T passes are replicated inside the batch (``state.repeat(r, ...)``, pass-major), with r chosen so a
forward holds at most ``token_budget`` padded tokens. Only per-text running sums are kept, never a
[T, N, J] tensor. With a ``last-k`` or ``head`` scope the deterministic prefix runs once per batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from beal_backend import acquisition
from beal_backend.engine.batching import Encoded, collate, sorted_batches
from beal_backend.engine.mc_dropout import Scope, mc_dropout
from beal_backend.engine.model import MultiLabelClassifier

Progress = Callable[[int, int], None]  # (texts done, texts total)

# Padded tokens per forward when ScoringConfig.token_budget is None. On CPU small forwards are faster:
# with 16384, long texts build [B, heads, L, L] attention temporaries of hundreds of MB that are
# page-faulted in on every op (benchmarks/bench_scoring.py: 2048 is 25-40% faster on AAPD, neutral
# on GoEmotions). Accelerators want big forwards.
CPU_TOKEN_BUDGET = 2048
ACCELERATOR_TOKEN_BUDGET = 16384


@dataclass(frozen=True)
class ScoringConfig:
    passes: int = 100  # T; the paper's value
    scope: str = "full"  # the paper's setting; "last-2" is ~an order of magnitude cheaper on CPU
    token_budget: int | None = None  # padded tokens per forward (bounds replicate-in-batch); None: by device
    max_batch: int = 64  # texts per batch before replication
    seed: int = 0  # MC dropout is seeded so that a pool's scores are reproducible
    device: str = "cpu"

    @property
    def budget(self) -> int:
        """The token budget in force: ``token_budget``, or the device's default when it is None."""
        if self.token_budget is not None:
            return self.token_budget
        return CPU_TOKEN_BUDGET if str(self.device).startswith("cpu") else ACCELERATOR_TOKEN_BUDGET


@dataclass
class Moments:
    """Per-text moments over T passes, each [N, J]: mean R(Y), mean Y, mean binary entropy H(Y)."""

    mean_relevance: np.ndarray
    mean_prob: np.ndarray
    mean_entropy: np.ndarray
    passes: int

    @property
    def ec(self) -> np.ndarray:
        return acquisition.ec_from_mean_relevance(self.mean_relevance)


@dataclass
class Deterministic:
    """One eval pass: probabilities [N, J], head hidden layer [N, Hh], sentence feature C [N, H]."""

    probs: np.ndarray
    hidden: np.ndarray
    features: np.ndarray


def mc_moments(
    model: MultiLabelClassifier,
    enc: Encoded,
    cfg: ScoringConfig,
    deterministic: bool = False,
    on_progress: Progress | None = None,
) -> Moments:
    """T stochastic passes under ``cfg.scope`` (or one pass with dropout off when ``deterministic``)."""
    scope = None if deterministic else Scope.parse(cfg.scope)
    passes = 1 if deterministic else cfg.passes
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    split = scope.split(model) if scope else 0
    n, j = len(enc), model.num_labels
    sums = np.zeros((3, n, j))
    done = 0
    # a private view with its own flags and dropout generator: concurrent calls never disturb each other
    with torch.inference_mode(), mc_dropout(model, scope, cfg.seed) as view, autocast(cfg.device):
        for rows in sorted_batches(enc.lengths, cfg.budget, cfg.max_batch):
            ids, mask = collate(enc, rows, cfg.device)
            state, suffix, width = _prefix(view, ids, mask, split)
            reps = max(1, cfg.budget // (len(rows) * width))
            for start in range(0, passes, reps):
                r = min(reps, passes - start)
                p = model.probabilities(suffix(*(_repeat(s, r) for s in state)).float()).double()
                sums[:, rows] += moment_sums(p.view(r, len(rows), j)).cpu().numpy()
            done += len(rows)
            if on_progress:
                on_progress(done, n)
    sums /= passes
    return Moments(sums[0], sums[1], sums[2], passes)


def deterministic_outputs(model: MultiLabelClassifier, enc: Encoded, cfg: ScoringConfig) -> Deterministic:
    """Probabilities and features from one pass with dropout off (predictions, BADGE, Core-Set)."""
    n = len(enc)
    probs = np.zeros((n, model.num_labels), dtype=np.float32)
    hidden = np.zeros((n, model.head.hidden.out_features), dtype=np.float32)
    feats = np.zeros((n, model.head.hidden.in_features), dtype=np.float32)
    with torch.inference_mode(), mc_dropout(model, None) as view, autocast(cfg.device):
        for rows in sorted_batches(enc.lengths, cfg.budget, cfg.max_batch):
            ids, mask = collate(enc, rows, cfg.device)
            c = view.features(ids, mask)
            logits, h = view.head(c)
            probs[rows] = model.probabilities(logits.float()).cpu().numpy()
            hidden[rows] = h.float().cpu().numpy()
            feats[rows] = c.float().cpu().numpy()
    return Deterministic(probs, hidden, feats)


def _prefix(model: MultiLabelClassifier, ids: torch.Tensor, mask: torch.Tensor, split: int):
    """Run the deterministic part once -> (state tensors, sampled suffix fn, tokens per replicated row)."""
    if split == 0:  # full: every module is sampled, nothing to cache
        return (ids, mask), model, ids.shape[1]
    if split >= len(model.layers()):  # head only: cache the sentence feature
        return (model.features(ids, mask),), (lambda c: model.head(c)[0]), 1
    hidden = model.encode_prefix(ids, mask, split)
    return (hidden, mask), (lambda h, m: model.encode_suffix(h, m, split)), ids.shape[1]


def _repeat(t: torch.Tensor, r: int) -> torch.Tensor:
    return t if r == 1 else t.repeat(r, *([1] * (t.dim() - 1)))


def moment_sums(p: torch.Tensor) -> torch.Tensor:
    """[3, B, J] sums over the passes (axis 0) of a [T, B, J] chunk of probabilities: R(p) = 2^p - 1, p and
    the binary entropy H(p) (``acquisition.relevance`` / ``binary_entropy`` in torch; xlogy makes 0 log 0 = 0,
    so p = 0 or 1 needs no clipping). The one reduction behind every MC path (full model and head only)."""
    entropy = -(torch.xlogy(p, p) + torch.xlogy(1.0 - p, 1.0 - p))
    return torch.stack(((torch.exp2(p) - 1.0).sum(0), p.sum(0), entropy.sum(0)))


def autocast(device: str):
    """bf16 autocast on CUDA (AMP); plain fp32 on CPU."""
    if str(device).startswith("cuda"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
