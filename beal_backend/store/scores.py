"""Cached scores (a version's ``scores.json`` ``tasks``, and what /predict adds in memory): keyed by task id,
each entry carrying the hash of the text it was computed on.

A task id alone is not enough: /predict may be called with any text for a task id that does not exist yet
(or whose text was edited since), and a score cached under the id alone would later be served for the real
task. An entry is served only for the very text it was computed on; entries written before the hash existed
have none and are never served (they are recomputed once: their text cannot be checked).
"""

from __future__ import annotations

import hashlib

# The entry's field: sha256 (UTF-8) of the text the model was given (LabelSchema.text_of's, as a round or
# /predict read it). Hashed before the tokenizer's own cut: texts that differ only past it are scored again
# (same score, a little work), never the reverse.
TEXT_HASH = "text_sha256"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()  # never raises


def entry(score: float, ec: float, choices: list[str], text: str) -> dict:
    return {"score": score, "ec": ec, "choices": choices, TEXT_HASH: text_hash(text)}


def cached(tasks: dict, task_id, text: str) -> dict | None:
    """The cached entry of ``task_id`` if it was computed on ``text``; None otherwise (score it again)."""
    hit = tasks.get(str(task_id))
    if hit is None or hit.get(TEXT_HASH) != text_hash(text):
        return None
    return hit
