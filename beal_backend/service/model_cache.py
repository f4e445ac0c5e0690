"""The API process's versions in memory: each (project, version)'s metadata and cached scores, and its
model, least recently used dropped first (versions never change once written).

Locks are per version and held only while that version is read: a model being read and hashed for one
project never delays /predict for another project, nor the cached answers of its own version (those need
only ``scores.json``, not the model). ``preload`` lets a round in this process load a version before Label
Studio is switched to it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

log = logging.getLogger(__name__)


class _Version:
    def __init__(self):
        self.read_lock = threading.Lock()  # metadata + scores: small files, read once
        self.load_lock = threading.Lock()  # the model: read and hashed once
        self.meta: dict | None = None
        self.scores: dict | None = None
        self.model = None


class ModelCache:
    def __init__(self, store, size: int = 4):
        self._store, self._size = store, size
        self._mu = threading.Lock()  # guards the dict only; never held while a file is read
        self._versions: OrderedDict[tuple[str, str], _Version] = OrderedDict()

    def _get(self, pid: str, version: str) -> _Version:
        key = (pid, version)
        with self._mu:
            v = self._versions.get(key)
            if v is not None:
                self._versions.move_to_end(key)
                return v
            v = self._versions[key] = _Version()
            while len(self._versions) > self._size:
                self._versions.popitem(last=False)
            return v

    def scored(self, pid: str, version: str) -> tuple[dict, dict]:
        """(metadata, cached scores by task id) of a version: all a cached answer needs. The model is loaded
        only when a task needs it: a load in the background would slow every request of this process."""
        v = self._get(pid, version)
        with v.read_lock:
            if v.scores is None:
                v.meta = self._store.metadata(pid, version)
                v.scores = self._store.scores(pid, version)["tasks"]
        assert v.meta is not None
        return v.meta, v.scores

    def model(self, pid: str, version: str):
        """The loaded model; waits only for a load of this very version."""
        return self._load(pid, version, self._get(pid, version))

    def loaded(self, pid: str, version: str) -> bool:
        with self._mu:
            v = self._versions.get((pid, version))
        return v is not None and v.model is not None

    def preload(self, pid: str, version: str) -> None:
        """Load now (a round in this process, before it switches Label Studio to ``version``); never raises:
        a failure is logged and the first request that needs the model loads it again."""
        try:
            self._load(pid, version, self._get(pid, version))
        except Exception:
            log.exception("project %s: preloading version %s failed", pid, version)

    def _load(self, pid: str, version: str, v: _Version):
        with v.load_lock:
            if v.model is None:
                v.model = self._store.load(pid, version)
            return v.model
