"""The e2e harness's Label Studio environment: nothing of the caller leaks in, a backend on localhost is let in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.label_studio import LabelStudio


def test_environment_is_clean_and_allows_a_local_ml_backend(monkeypatch, tmp_path):
    for leaky in ("HOST", "PORT", "USERNAME", "DATABASE_NAME", "REDIS_URL"):  # LS reads these without prefix
        monkeypatch.setenv(leaky, "from-the-caller")
    env = LabelStudio(instance="x", cache=tmp_path)._env(tmp_path / "data", 8123)
    assert not {"HOST", "PORT", "USERNAME", "DATABASE_NAME", "REDIS_URL"} & set(env)
    assert env["ML_BLOCK_LOCAL_IP"] == env["SSRF_PROTECTION_ENABLED"] == "false"  # both, or 127.0.0.1 is refused
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["LABEL_STUDIO_BASE_DATA_DIR"] == str(tmp_path / "data")
    assert env["LABEL_STUDIO_HOST"] == "http://127.0.0.1:8123"


def test_instances_have_their_own_folders_and_odd_names_are_refused(tmp_path):
    a, b = LabelStudio(instance="a", cache=tmp_path), LabelStudio(instance="b", cache=tmp_path)
    assert a.home != b.home and a.home.parent == b.home.parent == Path(tmp_path) / "label-studio"
    with pytest.raises(ValueError, match="instance name"):
        LabelStudio(instance="../x", cache=tmp_path)


def test_a_data_folder_it_did_not_make_is_never_deleted(tmp_path):
    ls = LabelStudio(instance="mine", cache=tmp_path)
    (ls.home / "data").mkdir(parents=True)
    (ls.home / "data" / "precious.txt").write_text("keep")
    ls._ensure_venv = lambda: None
    ls._ensure_template = lambda: tmp_path / "tpl"
    with pytest.raises(RuntimeError, match="refusing to delete"):
        ls.start()
    assert (ls.home / "data" / "precious.txt").read_text() == "keep"
