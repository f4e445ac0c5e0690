"""Scoped MC dropout: switch on exactly the dropout of the modules a scope names, everything else in eval.

Scopes (``Scope.parse``):
- ``full``   every dropout of encoder and head (the paper's setting);
- ``last-k`` the last k encoder layers + the head (the first layers run once and are reused);
- ``head``   the head only (the encoder runs once).

Why flags on parents too: in transformers 5.x BERT's attention-probability dropout is applied
functionally with ``dropout=self.dropout.p if self.training`` of the *attention module*, so turning on
``nn.Dropout`` modules alone leaves it off. We set ``training`` on every dropout module in scope and,
non-recursively, on the module that owns it; the previous flags are restored on exit.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from torch import nn
from torch.nn.modules.dropout import _DropoutNd

from .model import MultiLabelClassifier


@dataclass(frozen=True)
class Scope:
    kind: str  # "full" | "last" | "head"
    k: int = 0

    @classmethod
    def parse(cls, text: str) -> "Scope":
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


def stochastic_modules(model: nn.Module, scope: Scope) -> list[nn.Module]:
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
def mc_dropout(model: nn.Module, scope: Scope | None) -> Iterator[list[nn.Module]]:
    """Eval mode everywhere, then dropout on in ``scope`` (None: deterministic). Restores all flags."""
    saved = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        switched = stochastic_modules(model, scope) if scope is not None else []
        for m in switched:
            m.training = True  # flag only: never recurse into modules outside the scope
        yield switched
    finally:
        for m, flag in saved:
            m.training = flag
