"""Model directories and the per-project version registry, with a tiny trained model."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from beal_backend.config import Settings
from beal_backend.engine.batching import encode
from beal_backend.engine.scoring import ScoringConfig, deterministic_outputs
from beal_backend.service.model import BealModel
from beal_backend.store import versions as store
from beal_backend.store.versions import (
    IntegrityError,
    ModelStore,
    StoreError,
    check_id,
    load_model,
    save_model,
)
from beal_backend.wiring import Runtime
from tests.conftest import LABELS


def outputs(trained, texts):
    return deterministic_outputs(trained.model, encode(trained.tokenizer, texts), ScoringConfig())


def test_round_trip_is_bit_identical(tiny_bert_trained, probe_texts, tmp_path):
    digest = save_model(tiny_bert_trained, tmp_path / "m")
    loaded = load_model(tmp_path / "m")

    assert loaded.labels == LABELS
    assert loaded.config == tiny_bert_trained.config
    assert loaded.metrics == json.loads(json.dumps(tiny_bert_trained.metrics))
    assert not loaded.model.training
    # same tokenizer, same ids
    assert encode(loaded.tokenizer, probe_texts).ids == encode(tiny_bert_trained.tokenizer, probe_texts).ids
    before, after = tiny_bert_trained.model.state_dict(), loaded.model.state_dict()
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name
    a, b = outputs(tiny_bert_trained, probe_texts), outputs(loaded, probe_texts)
    np.testing.assert_array_equal(a.probs, b.probs)
    np.testing.assert_array_equal(a.hidden, b.hidden)
    assert digest == hashlib.sha256((tmp_path / "m" / store.WEIGHTS).read_bytes()).hexdigest()


def test_metadata_contents(tiny_bert_trained, tmp_path):
    digest = save_model(tiny_bert_trained, tmp_path / "m", extra={"round": 3})
    meta = json.loads((tmp_path / "m" / store.METADATA).read_text())
    assert meta["labels"] == LABELS
    assert meta["sha256"] == digest and len(digest) == 64
    assert meta["hparams"] == json.loads(json.dumps(asdict(tiny_bert_trained.config)))
    assert meta["encoder"] == tiny_bert_trained.config.encoder
    assert meta["round"] == 3
    assert "created_at" in meta and "metrics" in meta
    assert (tmp_path / "m" / "encoder" / "config.json").is_file()
    assert (tmp_path / "m" / "tokenizer").is_dir()


def test_save_refuses_existing_directory(tiny_bert_trained, tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(FileExistsError):
        save_model(tiny_bert_trained, tmp_path / "m")


def test_tampered_weights_raise(tiny_bert_trained, tmp_path):
    save_model(tiny_bert_trained, tmp_path / "m")
    weights = tmp_path / "m" / store.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor: still a loadable file, but not the recorded one
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"sha256 of model\.safetensors .* differs .* refused"):
        load_model(tmp_path / "m")
    assert not issubclass(IntegrityError, StoreError)  # a server-side fault, not a 400-style bad name


def test_store_refuses_a_version_with_corrupted_or_missing_weights(tiny_bert_trained, tmp_path):
    models = ModelStore(tmp_path)
    version = models.publish("p", tiny_bert_trained, scores={})
    weights = models.version_dir("p", version) / store.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))  # the last 8 bytes zeroed, same size
    with pytest.raises(IntegrityError, match=f"model {version}: the sha256"):
        models.load("p", version)
    weights.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        models.load("p", version)


def _age(path: Path, seconds: float) -> None:
    """Set the mtime of ``path`` and everything under it ``seconds`` into the past."""
    then = time.time() - seconds
    for p in [path, *path.rglob("*")]:
        os.utime(p, (then, then))


def test_opening_a_store_removes_stale_temporary_versions(tiny_bert_trained, tmp_path):
    """A SIGKILLed publish leaves ``.tmp-*/m/...``; the next store opened removes it once nothing in it
    changed for the lock TTL, but keeps one a live writer is still filling."""
    version = ModelStore(tmp_path).publish("3", tiny_bert_trained, scores={})
    for name in ("dead", "fresh", "busy"):
        (tmp_path / "3" / f".tmp-{name}" / "m").mkdir(parents=True)
        (tmp_path / "3" / f".tmp-{name}" / "m" / store.WEIGHTS).write_bytes(b"half")
    _age(tmp_path / "3" / ".tmp-dead", 120)
    _age(tmp_path / "3" / ".tmp-busy", 120)
    os.utime(tmp_path / "3" / ".tmp-busy" / "m" / store.WEIGHTS)  # still being written: touched just now

    ModelStore(tmp_path, stale_after=60)
    assert sorted(p.name for p in (tmp_path / "3").iterdir()) == [".tmp-busy", ".tmp-fresh", version]

    _age(tmp_path / "3" / ".tmp-fresh", 45)  # Runtime.build opens the store with LOCK_TTL as the limit
    Runtime.build(Settings(model_dir=str(tmp_path), lock_ttl=30))
    assert sorted(p.name for p in (tmp_path / "3").iterdir()) == [".tmp-busy", version]


def test_models_load_onto_the_configured_device(tiny_bert_trained, tmp_path, monkeypatch):
    """DEVICE reaches every load: the runtime's store, hence /predict's model cache, rollback and the
    worker. The "meta" device stands in for CUDA: nothing here may leave a model on the CPU."""
    monkeypatch.setattr(Settings, "torch_device", property(lambda self: "meta"))  # DEVICE accepts no "meta"
    settings = Settings(model_dir=str(tmp_path))
    rt = Runtime.build(settings)
    version = rt.store.publish("5", tiny_bert_trained, scores={"tasks": {}})
    rt.store.set_current("5", version)
    assert {p.device.type for p in rt.store.load("5", version).model.parameters()} == {"meta"}
    served = BealModel(rt).versions_cache.model("5", version)  # what /predict scores with
    assert {p.device.type for p in served.model.parameters()} == {"meta"}
    assert {p.device.type for p in rt.store.load("5", version, "cpu").model.parameters()} == {"cpu"}


def test_publish_is_atomic_and_not_current(tiny_bert_trained, tmp_path):
    models = ModelStore(tmp_path / "store")
    assert models.versions("p1") == [] and models.current("p1") is None
    version = models.publish("p1", tiny_bert_trained, scores={"7": 0.25})
    pdir = tmp_path / "store" / "p1"
    assert [p.name for p in pdir.iterdir()] == [version]  # no temporary directory left behind
    assert check_id(version, "version") == version
    assert models.versions("p1") == [version]
    assert models.current("p1") is None  # publishing does not switch serving
    assert models.scores("p1", version) == {"7": 0.25}
    assert models.metadata("p1", version)["labels"] == LABELS

    models.set_current("p1", version)
    assert models.current("p1") == version
    assert (pdir / store.CURRENT).read_text().strip() == version

    second = models.publish("p1", tiny_bert_trained, scores={})
    assert second != version and models.versions("p1") == sorted([version, second])
    assert models.current("p1") == version
    np.testing.assert_array_equal(
        outputs(models.load("p1", second), ["apple river"]).probs, outputs(tiny_bert_trained, ["apple river"]).probs
    )
    with pytest.raises(StoreError):
        models.remove("p1", version)  # the serving version stays
    models.remove("p1", second)
    assert models.versions("p1") == [version]
    assert models.projects() == []  # only Label Studio's numeric project ids count as projects
    models.write_project("12", {})
    models.write_project("3", {})
    assert models.projects() == ["3", "12"]


def test_prune_keeps_current_and_newest(tiny_bert_trained, tmp_path):
    models = ModelStore(tmp_path)
    versions = [models.publish("p", tiny_bert_trained, scores={}) for _ in range(4)]
    assert models.versions("p") == versions  # ids sort by creation time
    models.set_current("p", versions[0])
    assert models.prune("p", keep=1) == versions[1:3]
    assert models.versions("p") == [versions[0], versions[3]]
    assert models.current("p") == versions[0]
    assert models.prune("p", keep=0) == [versions[3]]
    assert models.versions("p") == [versions[0]]


def test_publish_appears_by_one_rename_of_a_complete_directory(tiny_bert_trained, tmp_path, monkeypatch):
    """The version becomes visible in one atomic step: a rename, inside the project folder (same file
    system), of a directory that already holds everything, onto a name that does not exist yet."""
    real_rename, renames = store.os.rename, []

    def checked_rename(src, dst):
        src, dst = Path(src), Path(dst)
        renames.append((src, dst))
        assert not dst.exists()
        assert {store.WEIGHTS, store.METADATA, store.SCORES} <= {p.name for p in src.iterdir()}
        return real_rename(src, dst)

    monkeypatch.setattr(store.os, "rename", checked_rename)
    models = ModelStore(tmp_path)
    version = models.publish("p", tiny_bert_trained, scores={"1": 0.5})
    assert len(renames) == 1
    src, dst = renames[0]
    assert dst == tmp_path / "p" / version
    assert src.parent.parent == tmp_path / "p" and src.parent.name.startswith(".")


def test_failed_publish_leaves_nothing(tiny_bert_trained, tmp_path, monkeypatch):
    real_save = store.save_model

    def save_then_crash(*args, **kwargs):
        real_save(*args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(store, "save_model", save_then_crash)
    models = ModelStore(tmp_path)
    with pytest.raises(OSError, match="disk full"):
        models.publish("p", tiny_bert_trained, scores={})
    assert list((tmp_path / "p").iterdir()) == []
    assert models.versions("p") == []


def test_set_current_unknown_or_unsafe_version(tiny_bert_trained, tmp_path):
    models = ModelStore(tmp_path)
    with pytest.raises(StoreError):
        models.set_current("p", "beal-missing")
    with pytest.raises(StoreError):
        models.set_current("p", "../p")
    with pytest.raises(StoreError):
        models.publish("../escape", tiny_bert_trained, scores={})
    assert not (tmp_path.parent / "escape").exists()
    (tmp_path / "p").mkdir(exist_ok=True)
    (tmp_path / "p" / store.CURRENT).write_text("beal-gone\n")  # points at a removed version
    assert models.current("p") is None


@pytest.mark.parametrize("bad", ["../x", "a/b", "..", ".", "", "a b", "a\\b", "x" * 65, "ü", "a\n", None, 12])
def test_check_id_rejects(bad):
    with pytest.raises(StoreError):
        check_id(bad, "project")


@pytest.mark.parametrize("good", ["12", "a", "beal-20240101T000000000000Z-abcdef12", "A_b-C", "x" * 64])
def test_check_id_accepts(good):
    assert check_id(good, "project") == good
