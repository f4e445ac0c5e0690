"""``bench_scoring.py``'s baseline and check: the naive MC loop most code runs today (``model.train()``, a Python
loop of T identical passes over batches padded to the pool's maximum length; written for the benchmark, not in the
engine), and the like-for-like check that ours and the naive loop give the same EC with dropout disabled."""

from __future__ import annotations

import numpy as np
import torch
from _common import timed
from torch import nn

from beal_backend import acquisition
from beal_backend.engine.batching import Encoded
from beal_backend.engine.model import MultiLabelClassifier
from beal_backend.engine.scoring import ScoringConfig, mc_moments

# ------------------------------------------------------------------ the naive baseline


def pad_to_max(enc: Encoded, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every text padded to ``width`` (what ``tokenizer(..., padding="max_length")`` gives)."""
    ids = torch.full((len(enc), width), enc.pad_id, dtype=torch.long)
    mask = torch.zeros((len(enc), width), dtype=torch.long)
    for r, s in enumerate(enc.ids):
        ids[r, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    return ids, mask


def naive_mc(model: MultiLabelClassifier, enc: Encoded, passes: int, batch: int, width: int, dropout: bool = True):
    """T passes of ``model.train()`` (or eval) forwards -> (probs [T, N, J], EC [N], per-pass timings)."""
    ids, mask = pad_to_max(enc, width)
    n = len(enc)
    probs = np.empty((passes, n, model.num_labels), dtype=np.float32)
    per_pass = []
    model.train(dropout)
    try:
        with torch.no_grad():
            for t in range(passes):
                with timed() as tm:
                    for s in range(0, n, batch):
                        probs[t, s : s + batch] = torch.sigmoid(model(ids[s : s + batch], mask[s : s + batch])).numpy()
                per_pass.append(tm)
        ec = acquisition.expected_confidence(probs)
    finally:
        model.eval()
    return probs, ec, per_pass


# ------------------------------------------------------------------ like-for-like check


def set_dropout_p(model: nn.Module, p: float | None, saved: dict | None = None) -> dict:
    """Set every dropout probability to ``p`` (returns the old ones), or restore ``saved`` when p is None."""
    old = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            old[name] = m.p
            m.p = saved[name] if p is None else p
    return old


def like_for_like(model, enc: Encoded, width: int, cfg: ScoringConfig, scopes: list[str], batch: int) -> dict:
    """EC with dropout disabled: naive loop (eval, padded to the pool max) vs ours (deterministic, and every
    scope's MC code path with p=0 in every dropout module, i.e. prefix cache + replication exercised)."""
    _, ec_naive, _ = naive_mc(model, enc, 1, batch, width, dropout=False)
    diffs = {"deterministic": float(np.abs(mc_moments(model, enc, cfg, deterministic=True).ec - ec_naive).max())}
    saved = set_dropout_p(model, 0.0)
    try:
        for scope in scopes:
            m = mc_moments(model, enc, ScoringConfig(**{**cfg.__dict__, "passes": 3, "scope": scope}))
            diffs[f"{scope} (p=0, T=3)"] = float(np.abs(m.ec - ec_naive).max())
    finally:
        set_dropout_p(model, None, saved)
    return diffs
