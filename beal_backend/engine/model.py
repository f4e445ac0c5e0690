"""The classifier of the paper's Fig. 1: BERT encoder -> [CLS] feature C -> hidden layer -> J sigmoids.

Forward computation only: no file or network I/O (loading and saving live in ``store.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask


class ClassifierHead(nn.Module):
    """dropout -> Linear(H, hidden) -> GELU -> dropout -> Linear(hidden, J). Returns (logits, hidden)."""

    def __init__(self, feature_size: int, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dropout_in = nn.Dropout(dropout)
        self.hidden = nn.Linear(feature_size, hidden_size)
        self.act = nn.GELU()
        self.dropout_out = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_labels)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.act(self.hidden(self.dropout_in(features)))
        return self.out(self.dropout_out(h)), h


POOLINGS = ("cls", "mean")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str = "cls") -> torch.Tensor:
    """Sentence feature from token states [B, L, H]: ``cls`` = the [CLS] state (the paper's C), ``mean`` =
    the mean over real tokens (what sentence-embedding checkpoints were trained to produce)."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        m = attention_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")


def probabilities(logits: torch.Tensor, single_label: bool) -> torch.Tensor:
    """Per-label probabilities: independent sigmoids, or one softmax vector when single-label."""
    return torch.softmax(logits, dim=-1) if single_label else torch.sigmoid(logits)


class MultiLabelClassifier(nn.Module):
    """Encoder + head. ``forward`` returns logits [B, J]; sigmoid > 0.5 predicts a label.

    ``single_label`` (single-choice projects): the same network, read through a softmax over the J labels
    (trained with cross-entropy, exactly one label predicted)."""

    def __init__(
        self,
        encoder: PreTrainedModel,
        num_labels: int,
        hidden_size: int = 256,
        dropout: float = 0.1,
        single_label: bool = False,
        pooling: str = "cls",
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.encoder: Any = encoder  # BERT-style: .embeddings, .encoder.layer, .config
        self.pooling = pooling
        self.head = ClassifierHead(encoder.config.hidden_size, hidden_size, num_labels, dropout)
        self.single_label = single_label

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        return probabilities(logits, self.single_label)

    @property
    def num_labels(self) -> int:
        return self.head.out.out_features

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Sentence feature C: the final hidden state of [CLS] (or the masked mean with ``pooling="mean"``)."""
        return pool(
            self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state,
            attention_mask,
            self.pooling,
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(input_ids, attention_mask))[0]

    # -- prefix caching for last-k MC dropout: split the encoder at layer L - k

    def layers(self) -> nn.ModuleList:
        """The encoder's transformer layers (BERT-style models: ``.embeddings`` + ``.encoder.layer``)."""
        layers = getattr(getattr(self.encoder, "encoder", None), "layer", None)
        if not isinstance(layers, nn.ModuleList):
            raise TypeError(
                f"{type(self.encoder).__name__} has no .encoder.layer: the last-k scope needs a BERT-style encoder"
            )
        return layers

    def encode_prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, upto: int) -> torch.Tensor:
        """Hidden states after the embeddings and the first ``upto`` layers."""
        h = self.encoder.embeddings(input_ids=input_ids)
        mask = self._layer_mask(h, attention_mask)
        for layer in self.layers()[:upto]:
            h = layer(h, mask)
        return h

    def encode_suffix(self, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int) -> torch.Tensor:
        """Logits from hidden states entering layer ``start``: the remaining layers, then the head."""
        mask = self._layer_mask(hidden, attention_mask)
        for layer in self.layers()[start:]:
            hidden = layer(hidden, mask)
        return self.head(pool(hidden, attention_mask, self.pooling))[0]

    def _layer_mask(self, hidden: torch.Tensor, attention_mask: torch.Tensor):
        # The same mask BertModel builds for its layers (eager/sdpa aware); None when nothing is padded.
        return create_bidirectional_mask(
            config=self.encoder.config, inputs_embeds=hidden, attention_mask=attention_mask
        )
