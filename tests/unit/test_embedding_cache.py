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


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip_feature_byte", "other_encoder"])
def test_corrupt_file_is_rebuilt_not_trusted(tmp_path, damage):
    embed = CountingEmbed()
    c = cache(tmp_path)
    c.features(["a b", "ccc"], embed)
    raw = bytearray(c.path.read_bytes())
    if damage == "truncate":
        c.path.write_bytes(bytes(raw[: len(raw) // 2]))
    elif damage == "garbage":
        c.path.write_bytes(b"not a safetensors file")
    elif damage == "flip_feature_byte":
        raw[-1] ^= 0xFF  # the last byte belongs to the features array: parses, but the checksum fails
        c.path.write_bytes(bytes(raw))
    else:  # a file from another encoder moved into this one's name
        other = cache(tmp_path, encoder="enc-b")
        other.features(["a b", "ccc"], lambda t: np.full((len(t), 2), 9.0, dtype=np.float32))
        other.path.replace(c.path)

    fresh = cache(tmp_path)
    out = fresh.features(["a b", "ccc"], embed)
    np.testing.assert_array_equal(out, [[3, 1], [3, 0]])
    assert fresh.rebuilt == 1 and embed.calls[1] == ["a b", "ccc"]
    assert cache(tmp_path).features(["a b"], embed).tolist() == [[3, 1]] and len(embed.calls) == 2  # rewritten soundly


def test_wrong_embed_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        cache(tmp_path).features(["a", "b"], lambda t: np.zeros((1, 2), dtype=np.float32))


def test_no_pickle_in_the_file(tmp_path):
    c = cache(tmp_path)
    c.features(["a"], CountingEmbed())
    assert c.path.suffix == ".safetensors" and b"pickle" not in c.path.read_bytes()


def test_home_folder_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    c = EmbeddingCache("~/feats", "enc", "cls", 510)
    c.features(["a"], CountingEmbed())
    assert c.path.parent == tmp_path / "feats" and c.path.exists()
