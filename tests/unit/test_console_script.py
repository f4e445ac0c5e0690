"""`beal` is installed as typed (scripts/venv.sh installs the project editable into .venv)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
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
