"""`beal` is installed as typed (scripts/venv.sh installs the project editable into .venv)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import time
from pathlib import Path

import pytest


def test_beal_console_script_runs(tmp_path):
    beal = Path(sys.executable).parent / "beal"
    if not beal.exists():
        pytest.fail(
            f"{beal} is missing: run scripts/venv.sh (it installs the project with `pip install -e .`)", pytrace=False
        )
    version = subprocess.run([str(beal), "--version"], capture_output=True, text=True, timeout=120)
    assert version.stdout.strip() == f"beal {importlib.metadata.version('beal-backend')}"  # one version, installed
    help_ = subprocess.run([str(beal), "--help"], capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and all(c in help_.stdout for c in ("simulate", "versions", "rollback", "worker"))
    out = subprocess.run(
        [str(beal), "versions", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "MODEL_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 1 and "beal versions: project 5 has no model store" in out.stderr
    for command, shows in [
        ("simulate", "--strategies"),
        ("rollback", "version"),
        ("worker", "--burst"),
        ("serve", "--port"),
    ]:
        sub = subprocess.run([str(beal), command, "--help"], capture_output=True, text=True, timeout=120)
        assert sub.returncode == 0 and f"usage: beal {command}" in sub.stdout and shows in sub.stdout, sub.stderr


def test_wsgi_script_serves_with_the_label_studio_ml_backend_options(tmp_path):
    """`python _wsgi.py --port …` starts the service, as in label-studio-ml-backend's examples; --model-dir
    is the store it serves (a project written there shows in /jobs), --log-level is checked like LOG_LEVEL."""
    import requests

    from beal_backend.store.versions import ModelStore
    from tests.ports import free_port

    root = Path(__file__).resolve().parents[2]
    ModelStore(tmp_path / "store").write_project("5", {"label_config": "<View/>"})
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    bad = subprocess.run(
        [sys.executable, "_wsgi.py", "--log-level", "LOUD"], cwd=root, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "LOG_LEVEL='LOUD' is invalid" in bad.stderr, bad.stderr
    port = free_port()
    args = ["--host", "127.0.0.1", "--port", str(port), "--model-dir", str(tmp_path / "store"), "--log-level", "DEBUG"]
    proc = subprocess.Popen([sys.executable, "_wsgi.py", *args], cwd=root, env=env)
    try:
        deadline = time.time() + 90
        while True:
            try:
                jobs = requests.get(f"http://127.0.0.1:{port}/jobs", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.time() < deadline, "the service did not come up"
                time.sleep(0.3)
        assert jobs.status_code == 200 and "5" in jobs.json(), jobs.text
    finally:
        proc.terminate()
        proc.wait(10)
