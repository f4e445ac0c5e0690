"""The frozen learner's feature cache: reuse (counted encoder calls), invalidation, pruning, corruption."""

from __future__ import annotations

import numpy as np
import pytest

from beal_backend.engine.feature_cache import EmbeddingCache


class CountingEmbed:
    """Stands in for the encoder: feature = [len(text), number of spaces], and records every call."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return np.array([[len(t), t.count(" ")] for t in texts], dtype=np.float32)


def cache(tmp_path, encoder="enc-a", pooling="mean", wp=510):
    return EmbeddingCache(tmp_path / "emb", encoder, pooling, wp)


def test_second_round_embeds_only_new_texts(tmp_path):
    embed = CountingEmbed()
    first = cache(tmp_path).features(["a b", "ccc", "a b"], embed)
    np.testing.assert_array_equal(first, [[3, 1], [3, 0], [3, 1]])
    assert embed.calls == [["a b", "ccc"]]  # a repeated text is embedded once

    again = cache(tmp_path)  # a new process / round reading the same file
    out = again.features(["ccc", "d e f", "a b"], embed)
    np.testing.assert_array_equal(out, [[3, 0], [5, 2], [3, 1]])
    assert embed.calls[1:] == [["d e f"]]
    again.features(["ccc", "a b", "d e f"], embed)
    assert len(embed.calls) == 2  # everything cached: the encoder is not called at all
    assert again.size() == 3


def test_changed_text_never_reuses_the_old_feature_and_is_pruned(tmp_path):
    embed = CountingEmbed()
    c = cache(tmp_path)
    c.features(["old text", "kept"], embed)
    out = c.features(["old text, edited", "kept"], embed, keep=["old text, edited", "kept"])
    np.testing.assert_array_equal(out, [[16, 2], [4, 0]])
    assert embed.calls[1] == ["old text, edited"]
    assert c.size() == 2  # "old text" is gone from the project: its row was dropped
    c.features(["old text"], embed)
    assert embed.calls[2] == ["old text"]  # so it must be embedded again


def test_other_encoder_or_pooling_gets_its_own_file(tmp_path):
    embed = CountingEmbed()
    cache(tmp_path, pooling="mean").features(["x"], embed)
    cache(tmp_path, pooling="cls").features(["x"], embed)
    cache(tmp_path, encoder="enc-b").features(["x"], embed)
    cache(tmp_path, wp=128).features(["x"], embed)
    assert len(embed.calls) == 4


RECORD = 32 + 4 * 2 + 8  # text hash, two float32 features, checksum


def test_a_round_appends_only_its_new_rows(tmp_path):
    embed = CountingEmbed()
    c = cache(tmp_path)
    c.features(["a b", "ccc", "d"], embed)
    before = c.path.read_bytes()
    cache(tmp_path).features(["a b", "ccc", "d", "e f", "g"], embed, keep=["a b", "ccc", "d", "e f", "g"])
    after = c.path.read_bytes()
    assert after[: len(before)] == before and len(after) - len(before) == 2 * RECORD  # nothing rewritten
    assert embed.calls[1:] == [["e f", "g"]]


@pytest.mark.parametrize("damage", ["torn_tail", "flip_first_record", "flip_last_checksum"])
def test_damaged_records_cost_only_their_own_rows(tmp_path, damage):
    embed = CountingEmbed()
    c = cache(tmp_path)
    c.features(["a b", "ccc", "d e f"], embed)
    raw = bytearray(c.path.read_bytes())
    start = len(raw) - 3 * RECORD
    if damage == "torn_tail":  # a crash in the middle of appending the last record
        raw = raw[:-5]
    elif damage == "flip_first_record":
        raw[start + 32] ^= 0xFF  # a feature byte of "a b": its checksum fails
    else:
        raw[-1] ^= 0xFF  # the checksum of "d e f"
    c.path.write_bytes(bytes(raw))

    fresh = cache(tmp_path)
    out = fresh.features(["a b", "ccc", "d e f"], embed)
    np.testing.assert_array_equal(out, [[3, 1], [3, 0], [5, 2]])
    lost = "a b" if damage == "flip_first_record" else "d e f"
    assert embed.calls[1:] == [[lost]] and fresh.dropped == 1 and fresh.rebuilt == 0
    assert len(c.path.read_bytes()) == start + 3 * RECORD  # rewritten without the damage
    again = cache(tmp_path)
    assert again.features(["a b", "ccc", "d e f"], embed).tolist() == out.tolist() and len(embed.calls) == 2
    assert again.dropped == 0


@pytest.mark.parametrize("damage", ["garbage", "torn_header", "other_encoder"])
def test_a_file_without_a_sound_header_is_started_afresh(tmp_path, damage):
    embed = CountingEmbed()
    c = cache(tmp_path)
    c.features(["a b", "ccc"], embed)
    if damage == "garbage":
        c.path.write_bytes(b"not a feature cache")
    elif damage == "torn_header":
        c.path.write_bytes(c.path.read_bytes()[:20])
    else:  # a file from another encoder moved into this one's name
        other = cache(tmp_path, encoder="enc-b")
        other.features(["a b", "ccc"], lambda t: np.full((len(t), 2), 9.0, dtype=np.float32))
        other.path.replace(c.path)

    fresh = cache(tmp_path)
    np.testing.assert_array_equal(fresh.features(["a b", "ccc"], embed), [[3, 1], [3, 0]])
    assert fresh.rebuilt == 1 and embed.calls[1] == ["a b", "ccc"]
    assert cache(tmp_path).features(["a b"], embed).tolist() == [[3, 1]] and len(embed.calls) == 2


def test_the_old_safetensors_cache_is_carried_over_without_embedding(tmp_path):
    from safetensors.numpy import save_file

    from beal_backend.engine import legacy_feature_cache
    from beal_backend.engine.feature_cache import text_key

    c = cache(tmp_path)
    c.folder.mkdir(parents=True)
    keys = np.frombuffer(text_key("a b") + text_key("ccc"), dtype=np.uint8).reshape(2, 32)
    feats = np.array([[3, 1], [3, 0]], dtype=np.float32)
    legacy = c.path.with_suffix(".safetensors")
    meta = {"encoder": c.encoder, "sha256": legacy_feature_cache._digest(keys, feats)}
    save_file({"keys": keys, "features": feats}, str(legacy), metadata=meta)
    embed = CountingEmbed()
    np.testing.assert_array_equal(c.features(["ccc", "a b"], embed), [[3, 0], [3, 1]])
    assert embed.calls == [] and not legacy.exists() and c.path.exists()

    other = cache(tmp_path, encoder="enc-b")  # an unreadable old file is removed and its texts embedded
    other.path.with_suffix(".safetensors").write_bytes(b"damaged")
    np.testing.assert_array_equal(other.features(["a b"], embed), [[3, 1]])
    assert embed.calls == [["a b"]] and not other.path.with_suffix(".safetensors").exists()


def test_wrong_embed_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        cache(tmp_path).features(["a", "b"], lambda t: np.zeros((1, 2), dtype=np.float32))


def test_no_pickle_in_the_file(tmp_path):
    c = cache(tmp_path)
    c.features(["a"], CountingEmbed())
    assert c.path.suffix == ".features" and b"pickle" not in c.path.read_bytes()


def test_home_folder_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    c = EmbeddingCache("~/feats", "enc", "cls", 510)
    c.features(["a"], CountingEmbed())
    assert c.path.parent == tmp_path / "feats" and c.path.exists()
