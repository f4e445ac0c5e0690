"""Tokenisation and length-bucketed batches with dynamic padding (never pad to the dataset maximum)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

MAX_WORDPIECES = 510  # the paper truncates from the right to 510 word-pieces, + [CLS] and [SEP]
CHARS_PER_WORDPIECE = 100  # BERT's WordPiece max_input_chars_per_word
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Encoded:
    """Token ids per text (special tokens included), in the caller's order."""

    ids: list[list[int]]
    pad_id: int

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows) -> Encoded:
        return Encoded(ids=[self.ids[i] for i in rows], pad_id=self.pad_id)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


def encode(tokenizer, texts: Sequence[str], max_wordpieces: int = MAX_WORDPIECES) -> Encoded:
    """Tokenise without padding; truncation keeps the first ``max_wordpieces`` word-pieces. Texts are
    clipped first, so a 1-MB text costs what its first word-pieces cost."""
    out = tokenizer(
        [clip_text(t, max_wordpieces) for t in texts], truncation=True, max_length=max_wordpieces + 2, padding=False
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return Encoded(ids=out["input_ids"], pad_id=pad_id)


def clip_text(text: str, max_wordpieces: int = MAX_WORDPIECES) -> str:
    """A prefix that tokenises to the same first ``max_wordpieces`` word-pieces as ``text``.

    A BERT word-piece covers at most ``CHARS_PER_WORDPIECE`` non-space characters (WordPiece turns a longer
    word into one [UNK]), and whitespace runs make no word-pieces, so the words up to that many characters
    per word-piece are enough. Whitespace between the kept words is collapsed to one space, which BERT's
    tokenizer cannot tell apart. (Characters the tokenizer drops, e.g. control characters, count too.)
    """
    bound = (max_wordpieces + 1) * (CHARS_PER_WORDPIECE + 1)  # + 1: the space after each kept word
    if len(text) <= bound:
        return text
    words, total = [], 0
    for match in _WORD.finditer(text):  # lazy: stops long before the end of a huge text
        words.append(match.group())
        total += len(words[-1]) + 1
        if total >= bound:
            break
    return " ".join(words)


def collate(enc: Encoded, rows: np.ndarray, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Pad the selected rows to their own maximum length -> (input_ids, attention_mask)."""
    seqs = [enc.ids[i] for i in rows]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), enc.pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    return ids.to(device), mask.to(device)


def sorted_batches(lengths: np.ndarray, token_budget: int, max_batch: int) -> list[np.ndarray]:
    """Inference batches: rows sorted by length, each batch at most ``token_budget`` padded tokens."""
    order = np.argsort(lengths, kind="stable")
    return _pack(order, lengths, token_budget, max_batch)


def bucketed_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, bucket_factor: int = 50
) -> Iterator[np.ndarray]:
    """Training batches: shuffle, sort within buckets of ``bucket_factor`` batches, shuffle the batches.

    Batches stay random across epochs but hold texts of similar length, so little padding is done.
    """
    perm = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    span = batch_size * bucket_factor
    for s in range(0, len(perm), span):
        bucket = perm[s : s + span]
        bucket = bucket[np.argsort(lengths[bucket], kind="stable")]
        batches.extend(bucket[i : i + batch_size] for i in range(0, len(bucket), batch_size))
    for i in rng.permutation(len(batches)):
        yield batches[i]


def _pack(order: np.ndarray, lengths: np.ndarray, token_budget: int, max_batch: int) -> list[np.ndarray]:
    batches, start = [], 0
    while start < len(order):
        end = start + 1
        # sorted ascending, so the last row's length is the padded width of the batch
        while end < len(order) and end - start < max_batch and (end - start + 1) * lengths[order[end]] <= token_budget:
            end += 1
        batches.append(order[start:end])
        start = end
    return batches
