"""Sentence features of a frozen encoder, cached per project and encoder, keyed by the text's hash.

One append-only file per (encoder, pooling, truncation): ``<folder>/<encoder id>.features``. A header (magic,
then a JSON object naming the encoder and the feature width) is followed by fixed-size records: the sha256 of
the text (32 bytes), its float32 features, and a blake2b checksum of both (8 bytes). No pickle. A round
appends only the texts it embedded, so its write costs what is new, not the whole cache.

Damage costs only what it touched: a torn last record (a crash mid-append) or a record whose checksum fails is
left out and its text embedded again; the readable records are kept, and the file is rewritten without the
damage (temporary file renamed over it). A file whose header does not parse or names another encoder is
started afresh. Rows of texts no longer in the project are dropped (the same rewrite) when a round passes
``keep``. Every access holds an advisory file lock, so the import-time embedding job and a round never lose
each other's rows. A changed text has another hash, so it can never get a stale feature.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beal_backend.engine import legacy_feature_cache

log = logging.getLogger(__name__)
Embed = Callable[[list[str]], np.ndarray]  # texts -> float32 [n, H]
MAGIC = b"BEAL-FEATURES-1\n"
KEY, CHECK = 32, 8  # bytes of a record's text hash and checksum


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def encoder_id(encoder_ref: str, pooling: str, max_wordpieces: int) -> str:
    """Everything that changes a feature besides the text; names the cache file."""
    return hashlib.sha256(json.dumps([encoder_ref, pooling, max_wordpieces]).encode()).hexdigest()[:24]


@dataclass
class Contents:
    keys: list[bytes]
    feats: np.ndarray | None  # float32 [N, H]; None: no file (or none worth keeping)
    sound: bool = True  # False: records were dropped as damaged, so the file must be rewritten before appending


class EmbeddingCache:
    def __init__(self, folder: str | os.PathLike, encoder_ref: str, pooling: str, max_wordpieces: int):
        self.folder = Path(folder).expanduser()
        self.encoder = json.dumps([encoder_ref, pooling, max_wordpieces])
        self.path = self.folder / f"{encoder_id(encoder_ref, pooling, max_wordpieces)}.features"
        self.rebuilt = 0  # unreadable files started afresh (tests, logs)
        self.dropped = 0  # damaged records left out

    def features(self, texts: Sequence[str], embed: Embed, keep: Iterable[str] | None = None) -> np.ndarray:
        """Features [len(texts), H] in order; only texts missing from the cache are embedded (one call).
        ``keep``: texts still in the project; rows of any other text are dropped from the file."""
        keys = [text_key(t) for t in texts]
        with self._locked():
            have = self._read()
            index = {k: i for i, k in enumerate(have.keys)}
            missing = list({k: t for k, t in zip(keys, texts) if k not in index}.items())
            new = self._embed(embed, [t for _, t in missing], have.feats)
            stored = have.keys + [k for k, _ in missing]
            feats = have.feats if new is None else new if have.feats is None else np.concatenate([have.feats, new])
            index = {k: i for i, k in enumerate(stored)}
            wanted = None if keep is None else set(keys) | {text_key(t) for t in keep}
            if not have.sound or (wanted is not None and any(k not in wanted for k in stored)):
                rows = [i for i, k in enumerate(stored) if wanted is None or k in wanted]
                self._rewrite([stored[i] for i in rows], None if feats is None else feats[rows])
            elif new is not None:
                self._append([k for k, _ in missing], new)
        if not keys:
            return np.zeros((0, 0 if feats is None else feats.shape[1]), dtype=np.float32)
        assert feats is not None  # every key is stored or was just embedded
        return feats[[index[k] for k in keys]]

    def size(self) -> int:
        with self._locked():
            return len(self._read().keys)

    @staticmethod
    def _embed(embed: Embed, texts: list[str], feats: np.ndarray | None) -> np.ndarray | None:
        if not texts:
            return None
        new = np.asarray(embed(texts), dtype=np.float32)
        if new.ndim != 2 or len(new) != len(texts) or (feats is not None and new.shape[1] != feats.shape[1]):
            raise ValueError(f"embed returned shape {new.shape} for {len(texts)} texts")
        return new

    # ---- file format

    def _read(self) -> Contents:
        if not self.path.exists():
            return self._migrate()
        data = self.path.read_bytes()
        try:
            dim, start = self._header(data)
        except ValueError as e:  # nothing can be trusted without the header: start afresh
            log.warning("feature cache %s is unreadable (%s); starting it afresh", self.path, e)
            self.rebuilt += 1
            return Contents([], None, sound=False)
        size = KEY + 4 * dim + CHECK
        n = (len(data) - start) // size
        records = np.frombuffer(data, dtype=np.uint8, count=n * size, offset=start).reshape(n, size)
        bad = [i for i, r in enumerate(records) if _check(r[:-CHECK].tobytes()) != r[-CHECK:].tobytes()]
        torn = (len(data) - start) % size > 0
        if torn or bad:
            self.dropped += len(bad) + torn
            log.warning(
                "feature cache %s: %d damaged records left out, %d kept", self.path, len(bad) + torn, n - len(bad)
            )
        good = np.delete(records, bad, axis=0)
        keys = [r[:KEY].tobytes() for r in good]
        feats = np.ascontiguousarray(good[:, KEY:-CHECK]).view("<f4").reshape(len(good), dim).astype(np.float32)
        return Contents(keys, feats, sound=not torn and not bad)

    def _header(self, data: bytes) -> tuple[int, int]:
        """-> (feature width, offset of the first record); ValueError when it is not this encoder's file."""
        if not data.startswith(MAGIC):
            raise ValueError("not a feature cache file")
        end = data.find(b"\n", len(MAGIC))
        try:
            header = json.loads(data[len(MAGIC) : end])
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"bad header: {e}") from None
        if end < 0 or not isinstance(header, dict) or header.get("encoder") != self.encoder:
            raise ValueError(f"written for encoder {header.get('encoder') if isinstance(header, dict) else None}")
        if not isinstance(header.get("dim"), int) or header["dim"] < 1:
            raise ValueError(f"bad feature width {header.get('dim')!r}")
        return header["dim"], end + 1

    def _records(self, keys: list[bytes], feats: np.ndarray) -> bytes:
        f = np.ascontiguousarray(feats, dtype="<f4")
        out = bytearray()
        for k, row in zip(keys, f):
            body = k + row.tobytes()
            out += body + _check(body)
        return bytes(out)

    def _append(self, keys: list[bytes], feats: np.ndarray) -> None:
        if not self.path.exists():
            return self._rewrite(keys, feats)
        with open(self.path, "ab") as f:
            f.write(self._records(keys, feats))
            f.flush()
            os.fsync(f.fileno())

    def _rewrite(self, keys: list[bytes], feats: np.ndarray | None) -> None:
        if feats is None:
            self.path.unlink(missing_ok=True)
            return
        header = MAGIC + json.dumps({"encoder": self.encoder, "dim": int(feats.shape[1])}).encode() + b"\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(header + self._records(keys, feats))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _migrate(self) -> Contents:
        """The rows of the safetensors file earlier versions wrote (read once, verified, then removed): an
        upgrade must not re-embed a whole project."""
        legacy = self.path.with_suffix(".safetensors")
        if not legacy.exists():
            return Contents([], None)
        rows = legacy_feature_cache.read(legacy, self.encoder)  # None: unreadable, so nothing worth keeping
        if rows is not None:
            self._rewrite(*rows)
        legacy.unlink(missing_ok=True)
        return Contents(*rows) if rows is not None else Contents([], None)

    @contextmanager
    def _locked(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / f"{self.path.stem}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _check(body: bytes) -> bytes:
    """A record's checksum: it tells a damaged record from a sound one (not an adversary's)."""
    return hashlib.blake2b(body, digest_size=CHECK).digest()
