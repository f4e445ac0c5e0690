"""Scoped MC dropout that is safe under concurrent requests: a shared model is never switched.

Scopes (``Scope.parse``):
- ``full``   every dropout of encoder and head (the paper's setting);
- ``last-k`` the last k encoder layers + the head (the first layers run once and are reused);
- ``head``   the head only (the encoder runs once).

``mc_dropout`` yields a *view* of the model: a private copy of its module tree that holds the model's own
parameter and buffer tensors (nothing is copied but the module objects), so its ``training`` flags are its
own. gunicorn's threads share one cached model; flipping flags on it let one request switch dropout off
halfway through another's T passes.

Why flags on parents too: in transformers 5.x BERT's attention-probability dropout is applied
functionally with ``dropout=self.dropout.p if self.training`` of the *attention module*, so turning on
``nn.Dropout`` modules alone leaves it off. In the view, every module is in eval, then every dropout module
in scope and, non-recursively, the module that owns it, are in train mode.

Randomness: the view's dropout draws its masks from a ``torch.Generator`` of its own (seeded per call), never
from the process-wide RNG, which an in-process training job is using: a thread-local ``TorchFunctionMode``
reroutes ``F.dropout`` (dropout modules, eager attention) and the dropout of ``F.scaled_dot_product_attention``
to that generator while the view is in use.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.dropout import _DropoutNd
from torch.overrides import TorchFunctionMode

from beal_backend.engine.model import MultiLabelClassifier

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class Scope:
    kind: str  # "full" | "last" | "head"
    k: int = 0

    @classmethod
    def parse(cls, text: str) -> Scope:
        if text in ("full", "head"):
            return cls(text)
        m = re.fullmatch(r"last-(\d+)", text)
        if m and int(m.group(1)) >= 1:
            return cls("last", int(m.group(1)))
        raise ValueError(f"unknown MC-dropout scope {text!r}: use full, head or last-<k> with k >= 1")

    def __str__(self) -> str:
        return f"last-{self.k}" if self.kind == "last" else self.kind

    def split(self, model: MultiLabelClassifier) -> int:
        """Index of the first encoder layer that is sampled (0 for full; the layer count for head)."""
        if self.kind == "full":
            return 0
        n = len(model.layers())
        if self.kind == "head":
            return n
        if self.k > n:
            raise ValueError(f"scope {self} asks for more layers than the encoder has ({n})")
        return n - self.k

    def roots(self, model: MultiLabelClassifier) -> list[nn.Module]:
        if self.kind == "full":
            return [model]
        if self.kind == "head":
            return [model.head]
        return [*model.layers()[self.split(model) :], model.head]


def stochastic_modules(model: MultiLabelClassifier, scope: Scope) -> list[nn.Module]:
    """The modules whose ``training`` flag ``scope`` switches on: dropouts in scope and their owners."""
    found: dict[int, nn.Module] = {}
    for root in scope.roots(model):
        for owner in root.modules():
            for child in owner.children():
                if isinstance(child, _DropoutNd):
                    found[id(owner)] = owner
                    found[id(child)] = child
    return list(found.values())


@contextmanager
def mc_dropout(model: M, scope: Scope | None, seed: int = 0) -> Iterator[M]:
    """A view of ``model`` in eval with dropout on in ``scope`` (None: deterministic), its masks drawn from a
    generator seeded with ``seed``. Run the forwards on the view, inside the ``with``; ``model`` is untouched."""
    view = model_view(model)
    view.eval()
    if scope is None:
        yield view
        return
    for m in stochastic_modules(view, scope):  # type: ignore[arg-type]  # a scope needs a classifier
        m.training = True  # flag only: never recurse into modules outside the scope
    with SeededDropout(torch.Generator(device=_device(model)).manual_seed(seed)):
        yield view


def model_view(model: M) -> M:
    """A copy of the module tree sharing every parameter and buffer with ``model``: its flags and its
    containers (parameter dicts, hooks) are its own, so nothing done to the view reaches the model."""
    view = copy.copy(model)  # a new __dict__ holding the same tensors
    for name, value in vars(model).items():
        if isinstance(value, dict):
            view.__dict__[name] = copy.copy(value)
    view._modules = {name: None if child is None else model_view(child) for name, child in model._modules.items()}
    return view


class SeededDropout(TorchFunctionMode):
    """While active in this thread: dropout (``F.dropout``, SDPA's ``dropout_p``) draws from ``generator``.
    Other random dropout variants would silently use the global RNG, so they are refused."""

    def __init__(self, generator: torch.Generator):
        super().__init__()
        self.generator = generator

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.dropout:
            return _dropout(self.generator, *args, **kwargs)
        if func is F.scaled_dot_product_attention:
            return _attention(self.generator, *args, **kwargs)
        if func in _UNSUPPORTED and _training(func, args, kwargs):
            raise NotImplementedError(f"MC dropout does not support {func.__name__} (only plain dropout)")
        return func(*args, **kwargs)


_UNSUPPORTED = (F.alpha_dropout, F.feature_alpha_dropout, F.dropout1d, F.dropout2d, F.dropout3d)


def _training(func, args, kwargs) -> bool:
    return bool(kwargs.get("training", args[2] if len(args) > 2 else func.__defaults__[1]))


def _dropout(gen: torch.Generator, input: torch.Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    if not training or p == 0.0:
        return input
    if p >= 1.0:  # as F.dropout: everything dropped (1 / (1 - p) is undefined)
        return torch.zeros_like(input)
    keep = torch.empty_like(input).bernoulli_(1.0 - p, generator=gen)
    return input * keep * (1.0 / (1.0 - p))


def _attention(gen, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    """SDPA; with dropout, its math (softmax(QK^T * scale + mask) V) with the probabilities dropped by ``gen``."""
    if dropout_p == 0.0:
        return F.scaled_dot_product_attention(
            query, key, value, attn_mask=attn_mask, is_causal=is_causal, scale=scale, enable_gqa=enable_gqa
        )
    if enable_gqa:  # grouped-query attention: each key/value head serves several query heads
        group = query.size(-3) // key.size(-3)
        key, value = key.repeat_interleave(group, -3), value.repeat_interleave(group, -3)
    scores = query @ key.transpose(-2, -1) * (scale if scale is not None else 1.0 / math.sqrt(query.size(-1)))
    if is_causal:
        causal = torch.ones(query.size(-2), key.size(-2), dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
    return _dropout(gen, scores.softmax(-1), dropout_p) @ value


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.empty(0)).device
