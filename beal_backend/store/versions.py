"""Everything written to disk: model directories and the per-project version registry.

A model directory holds ``model.safetensors`` (all weights, no pickle), ``encoder/config.json``,
``tokenizer/``, ``metadata.json`` (labels, encoder reference, hyper-parameters, metrics, sha256 of the
weights) and, for service versions, ``scores.json`` (the pool's cached scores).

Project layout: ``<root>/<project>/<version>/`` plus ``CURRENT`` (the serving version), ``SWITCHING``
(while Label Studio is being switched to another version: see ``worker/publishing.py``) and
``project.json`` (what /setup said). Versions are written under a temporary name and renamed, so a
crash never leaves a partial version visible; ``CURRENT`` is replaced atomically. A worker killed while
writing leaves its ``.tmp-*`` folder behind: opening a store removes those untouched for longer than the
lock TTL (a live writer holds the project lock and keeps touching its files), and the project's next job
removes them all (``remove_tmp``, with the project lock held: no one else may be writing there).
A version folder may also hold ``publish.json``: how far making it serve got (``note_publish``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

from beal_backend.engine.model import MultiLabelClassifier
from beal_backend.engine.training import TrainConfig, TrainedModel

WEIGHTS, METADATA, SCORES, CURRENT, PROJECT, SWITCHING, PUBLISH = (
    "model.safetensors",
    "metadata.json",
    "scores.json",
    "CURRENT",
    "project.json",
    "SWITCHING",
    "publish.json",
)
SERVED = "served"  # the publish state of a version that has been current
KEEP_REJECTED = 2  # rejected candidates kept for inspection (newest), apart from the KEEP_VERSIONS promoted ones
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PROJECT_DIR = re.compile(r"[1-9][0-9]*")  # canonical project ids only (service.project_id)


class StoreError(ValueError):
    """A bad project or version name, or a model directory that fails its checks."""


class IntegrityError(RuntimeError):
    """Stored weights differ from the sha256 recorded when they were written (corrupted or tampered with):
    the version is refused, never loaded. A server-side fault, not bad input, hence not a StoreError."""


# ---------------------------------------------------------------- one model directory


def save_model(trained: TrainedModel, path: Path, extra: dict | None = None) -> str:
    """Write a complete model directory at ``path`` (which must not exist). Returns the weights' sha256."""
    path = Path(path)
    path.mkdir(parents=True)
    state = {k: v.detach().contiguous().cpu() for k, v in trained.model.state_dict().items()}
    save_file(state, str(path / WEIGHTS))
    trained.model.encoder.config.save_pretrained(path / "encoder")
    trained.tokenizer.save_pretrained(path / "tokenizer")
    digest = _sha256(path / WEIGHTS)
    meta = {
        "labels": trained.labels,
        "encoder": trained.config.encoder,
        "hparams": trained.hparams(),
        "metrics": trained.metrics,
        "sha256": digest,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        **(extra or {}),
    }
    _write_json(path / METADATA, meta)
    return digest


def load_model(path: Path, device: str = "cpu") -> TrainedModel:
    """Rebuild a saved model: safetensors weights into an encoder built from the saved config."""
    path = Path(path)
    meta = read_json(path / METADATA)
    _verify_weights(path, meta)
    cfg = TrainConfig(**{**meta["hparams"], "device": device})
    enc_cfg = AutoConfig.from_pretrained(path / "encoder")
    try:
        encoder = AutoModel.from_config(enc_cfg, add_pooling_layer=False)
    except TypeError:
        encoder = AutoModel.from_config(enc_cfg)
    model = MultiLabelClassifier(
        encoder, len(meta["labels"]), cfg.hidden_size, cfg.dropout, single_label=cfg.single_label, pooling=cfg.pooling
    )
    model.load_state_dict(load_file(str(path / WEIGHTS)), strict=True)
    model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path / "tokenizer")
    return TrainedModel(model, tokenizer, list(meta["labels"]), cfg, meta.get("metrics", {}))


# ---------------------------------------------------------------- per-project registry


class ModelStore:
    """``device``: where ``load`` puts models (the configured DEVICE: scoring moves batches there).
    ``stale_after``: seconds after which an untouched ``.tmp-*`` folder is a dead writer's and is removed."""

    def __init__(self, root: Path | str, device: str = "cpu", stale_after: float = 60.0):
        self.root = Path(root)
        self.device = device
        self.remove_stale_tmp(stale_after)

    def project_dir(self, project: str) -> Path:
        return self.root / check_id(project, "project")

    def version_dir(self, project: str, version: str) -> Path:
        return self.project_dir(project) / check_id(version, "version")

    def publish(self, project: str, trained: TrainedModel, scores: dict, extra: dict | None = None) -> str:
        """Write a new version atomically (temp dir + rename); it does not become current here."""
        pdir = self.project_dir(project)
        pdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=pdir))
        try:
            digest = save_model(trained, tmp / "m", extra)
            _write_json(tmp / "m" / SCORES, scores)
            version = new_version_id(digest)
            os.rename(tmp / "m", pdir / version)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return version

    def versions(self, project: str) -> list[str]:
        pdir = self.project_dir(project)
        if not pdir.is_dir():
            return []
        return sorted(
            p.name for p in pdir.iterdir() if p.is_dir() and (p / METADATA).is_file() and _SAFE_ID.fullmatch(p.name)
        )

    def current(self, project: str) -> str | None:
        try:
            version = (self.project_dir(project) / CURRENT).read_text().strip()
        except FileNotFoundError:
            return None
        return version if (self.version_dir(project, version) / METADATA).is_file() else None

    def set_current(self, project: str, version: str) -> None:
        """Make ``version`` the serving one; this ends any switch in progress (``begin_switch``)."""
        if not (self.version_dir(project, version) / METADATA).is_file():
            raise StoreError(f"project {project} has no version {version}")
        _atomic_write(self.project_dir(project) / CURRENT, version + "\n")
        self.note_publish(project, version, SERVED)
        (self.project_dir(project) / SWITCHING).unlink(missing_ok=True)

    def begin_switch(self, project: str, version: str) -> None:
        """Record that Label Studio is about to be switched to ``version`` (CURRENT not written yet)."""
        info = {"to": version, "from": self.current(project)}
        _atomic_write(self.project_dir(project) / SWITCHING, json.dumps(info))

    def switching(self, project: str) -> dict | None:
        """The switch a job began and did not end (``{"to", "from"}``), or None."""
        path = self.project_dir(project) / SWITCHING
        return read_json(path) if path.is_file() else None

    def end_switch(self, project: str) -> None:
        (self.project_dir(project) / SWITCHING).unlink(missing_ok=True)

    def note_publish(self, project: str, version: str, state: str) -> None:
        """Record how far making ``version`` serve got ("pushing", "push failed: ...", ``SERVED``). A version
        that once served stays served (a failed rollback to it does not make it never-served)."""
        if self.publish_state(project, version) != SERVED:
            _atomic_write(self.version_dir(project, version) / PUBLISH, json.dumps({"state": state}))

    def publish_state(self, project: str, version: str) -> str | None:
        """None: no record (a version written before publish states were kept, or a rejected one)."""
        path = self.version_dir(project, version) / PUBLISH
        return read_json(path).get("state") if path.is_file() else None

    def metadata(self, project: str, version: str) -> dict:
        return read_json(self.version_dir(project, version) / METADATA)

    def scores(self, project: str, version: str) -> dict:
        return read_json(self.version_dir(project, version) / SCORES)

    def load(self, project: str, version: str, device: str | None = None) -> TrainedModel:
        return load_model(self.version_dir(project, version), device or self.device)

    def remove(self, project: str, version: str) -> None:
        if version == self.current(project):
            raise StoreError("the current version cannot be removed")
        shutil.rmtree(self.version_dir(project, version))

    def prune(self, project: str, keep: int) -> list[str]:
        """Delete old versions; kept: the current one, the ``keep`` newest promoted others (the rollback
        targets) and the ``min(keep, KEEP_REJECTED)`` newest rejected candidates. Rejections never count
        against promoted versions: a run of them must not delete every version a team could roll back to."""
        current = self.current(project)
        others = [v for v in self.versions(project) if v != current]
        rejected = [v for v in others if not (self.metadata(project, v).get("promotion") or {}).get("promoted", True)]
        promoted = [v for v in others if v not in rejected]
        doomed = promoted[: max(len(promoted) - keep, 0)] + rejected[: max(len(rejected) - min(keep, KEEP_REJECTED), 0)]
        for v in sorted(doomed):
            shutil.rmtree(self.version_dir(project, v))
        return sorted(doomed)

    def remove_tmp(self, project: str) -> list[Path]:
        """Delete every ``.tmp-*`` folder of ``project``: call it only with the project lock held (only a
        job holding it writes versions, so each such folder is a killed job's half-written version)."""
        doomed = sorted(self.project_dir(project).glob(".tmp-*"))
        for tmp in doomed:
            shutil.rmtree(tmp, ignore_errors=True)
        return doomed

    def remove_stale_tmp(self, older_than: float) -> list[Path]:
        """Delete ``<project>/.tmp-*`` folders in which nothing changed for ``older_than`` seconds."""
        now, removed = time.time(), []
        for tmp in self.root.glob("*/.tmp-*"):
            newest = _newest_mtime(tmp) if tmp.is_dir() else None
            if newest is not None and now - newest > older_than:
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp)
        return removed

    def read_project(self, project: str) -> dict | None:
        path = self.project_dir(project) / PROJECT
        return read_json(path) if path.is_file() else None

    def write_project(self, project: str, info: dict) -> None:
        self.project_dir(project).mkdir(parents=True, exist_ok=True)
        _atomic_write(self.project_dir(project) / PROJECT, json.dumps(info, indent=1))

    def projects(self) -> list[str]:
        """Label Studio project ids with a folder here (other folders in MODEL_DIR are not ours)."""
        if not self.root.is_dir():
            return []
        return sorted((p.name for p in self.root.iterdir() if p.is_dir() and _PROJECT_DIR.fullmatch(p.name)), key=int)


def new_version_id(digest: str) -> str:
    """Unique and sortable: ``beal-<UTC timestamp to the microsecond>-<weights hash prefix>``."""
    return f"beal-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%fZ}-{digest[:8]}"


def check_id(value: str, what: str) -> str:
    """Names that become path parts: letters, digits, '_' and '-' only (no traversal, no dots)."""
    if not isinstance(value, str) or not _SAFE_ID.fullmatch(value):
        raise StoreError(f"invalid {what} id {value!r}: use 1-64 letters, digits, '_' or '-'")
    return value


def read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_json(path: Path, data) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)


def _atomic_write(path: Path, text: str) -> None:
    """Write a temp file of its own (threads and processes may write the same path at once), then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _verify_weights(path: Path, meta: dict) -> None:
    recorded = meta.get("sha256")
    try:
        actual = _sha256(path / WEIGHTS)
    except FileNotFoundError:
        raise IntegrityError(f"model {path.name}: {WEIGHTS} is missing; the version is refused") from None
    if actual != recorded:
        raise IntegrityError(
            f"model {path.name}: the sha256 of {WEIGHTS} ({actual[:12]}...) differs from the one recorded at "
            f"save time ({str(recorded)[:12]}...); the weights are corrupted or were altered, so the version is refused"
        )


def _newest_mtime(path: Path) -> float | None:
    """Latest modification time of ``path`` or anything under it (None: it vanished meanwhile)."""
    try:
        return max(p.lstat().st_mtime for p in [path, *path.rglob("*")])
    except FileNotFoundError:  # a live publish renamed its folder away while we looked
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
