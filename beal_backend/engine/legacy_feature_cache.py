"""Reads the feature cache file of earlier versions (one safetensors file, rewritten whole every round) so that
``feature_cache`` can carry its rows over once instead of re-embedding a project."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
from safetensors import safe_open

log = logging.getLogger(__name__)


def read(path: Path, encoder: str) -> tuple[list[bytes], np.ndarray] | None:
    """(text hashes, float32 features [N, H]) of a sound file written for ``encoder``; None (logged) otherwise."""
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            keys, feats = f.get_tensor("keys"), f.get_tensor("features")
    except Exception as e:  # safetensors raises its own error types for a damaged file
        log.warning("old feature cache %s is unreadable (%s): its texts are embedded again", path, e)
        return None
    if meta.get("encoder") != encoder or meta.get("sha256") != _digest(keys, feats):
        log.warning("old feature cache %s is for another encoder or damaged: its texts are embedded again", path)
        return None
    if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != 32 or feats.ndim != 2 or len(feats) != len(keys):
        return None
    return [bytes(k) for k in keys], feats.astype(np.float32)


def _digest(keys: np.ndarray, feats: np.ndarray) -> str:
    h = hashlib.sha256(np.ascontiguousarray(keys).tobytes())
    h.update(np.ascontiguousarray(feats, dtype=np.float32).tobytes())
    return h.hexdigest()
