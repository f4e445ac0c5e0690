"""Sentence features of a frozen encoder, cached per project and encoder, keyed by the text's hash.

One file per (encoder, pooling, truncation): ``<folder>/<encoder id>.safetensors`` holding ``keys``
(uint8 [N, 32], sha256 of each text) and ``features`` (float32 [N, H]), with the encoder reference and
a sha256 of both arrays in the safetensors metadata. No pickle. Writes go to a temporary file that is
renamed over the old one, under an advisory file lock, so readers never see half a file and two writers
(the import-time embedding job and a round) merge instead of losing rows.

A changed text has another hash, so it can never get a stale feature; rows of texts no longer in the
project are dropped when a round passes ``keep``. A file that fails to parse or to match its checksum is
deleted and rebuilt, never trusted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

log = logging.getLogger(__name__)
Embed = Callable[[list[str]], np.ndarray]  # texts -> float32 [n, H]


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def encoder_id(encoder_ref: str, pooling: str, max_wordpieces: int) -> str:
    """Everything that changes a feature besides the text; names the cache file."""
    return hashlib.sha256(json.dumps([encoder_ref, pooling, max_wordpieces]).encode()).hexdigest()[:24]


class EmbeddingCache:
    def __init__(self, folder: str | os.PathLike, encoder_ref: str, pooling: str, max_wordpieces: int):
        self.folder = Path(folder).expanduser()
        self.encoder = json.dumps([encoder_ref, pooling, max_wordpieces])
        self.path = self.folder / f"{encoder_id(encoder_ref, pooling, max_wordpieces)}.safetensors"
        self.rebuilt = 0  # corrupt files discarded (tests, logs)

    def features(self, texts: Sequence[str], embed: Embed, keep: Iterable[str] | None = None) -> np.ndarray:
        """Features [len(texts), H] in order; only texts missing from the cache are embedded (one call).
        ``keep``: texts still in the project; rows of any other text are dropped from the file."""
        keys = [text_key(t) for t in texts]
        with self._locked():
            stored, feats = self._read()
            index = {k: i for i, k in enumerate(stored)}
            missing = list({k: t for k, t in zip(keys, texts) if k not in index}.items())
            if missing:
                new = np.asarray(embed([t for _, t in missing]), dtype=np.float32)
                if new.ndim != 2 or len(new) != len(missing) or (feats is not None and new.shape[1] != feats.shape[1]):
                    raise ValueError(f"embed returned shape {new.shape} for {len(missing)} texts")
                stored = stored + [k for k, _ in missing]
                feats = new if feats is None else np.concatenate([feats, new])
                index = {k: i for i, k in enumerate(stored)}
            if missing or keep is not None:
                self._write(stored, feats, index, None if keep is None else set(keys) | {text_key(t) for t in keep})
        if not keys:
            return np.zeros((0, 0 if feats is None else feats.shape[1]), dtype=np.float32)
        assert feats is not None  # written above whenever a key was missing
        return feats[[index[k] for k in keys]]

    def size(self) -> int:
        with self._locked():
            return len(self._read()[0])

    # ---- file format

    def _read(self) -> tuple[list[bytes], np.ndarray | None]:
        if not self.path.exists():
            return [], None
        try:
            with safe_open(str(self.path), framework="np") as f:
                meta = f.metadata() or {}
                keys, feats = f.get_tensor("keys"), f.get_tensor("features")
            if meta.get("encoder") != self.encoder:
                raise ValueError(f"written for encoder {meta.get('encoder')}")
            if (
                keys.dtype != np.uint8
                or keys.ndim != 2
                or keys.shape[1] != 32
                or feats.ndim != 2
                or len(feats) != len(keys)
            ):
                raise ValueError(f"bad shapes keys {keys.shape} features {feats.shape}")
            if meta.get("sha256") != _digest(keys, feats):
                raise ValueError("checksum mismatch")
            return [bytes(k) for k in keys], feats.astype(np.float32, copy=False)
        except Exception as e:  # any damage: rebuild from the encoder rather than trust the file
            log.warning("embedding cache %s is corrupt (%s); rebuilding it", self.path, e)
            self.rebuilt += 1
            self.path.unlink(missing_ok=True)
            return [], None

    def _write(self, stored: list[bytes], feats: np.ndarray | None, index: dict, keep: set | None) -> None:
        if feats is None:
            return
        rows = [index[k] for k in stored if keep is None or k in keep]
        keys = np.frombuffer(b"".join(stored[i] for i in rows), dtype=np.uint8).reshape(len(rows), 32)
        feats = np.ascontiguousarray(feats[rows])
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".tmp", dir=self.folder)
        os.close(fd)
        try:
            save_file(
                {"keys": keys, "features": feats},
                tmp,
                metadata={"encoder": self.encoder, "sha256": _digest(keys, feats)},
            )
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{self.path.stem}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _digest(keys: np.ndarray, feats: np.ndarray) -> str:
    h = hashlib.sha256(np.ascontiguousarray(keys).tobytes())
    h.update(np.ascontiguousarray(feats, dtype=np.float32).tobytes())
    return h.hexdigest()
