"""The habits the repository keeps, checked with the rest of the suite, as configured in pyproject.toml: ruff
(lint, line length included, and format) reports nothing on the whole repository (package, tests, benchmarks,
scripts); mypy reports nothing on the package (every function body) and the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess:
    tool = BIN / args[0]
    if not tool.exists():
        pytest.fail(f"{tool} is missing: run scripts/test.sh (it installs requirements-test.txt)", pytrace=False)
    return subprocess.run([str(tool), *args[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    out = _run("ruff", "check", "--no-cache", ".")
    assert out.returncode == 0, out.stdout[-4000:]


def test_code_is_formatted():
    out = _run("ruff", "format", "--check", "--no-cache", ".")
    assert out.returncode == 0, out.stdout[-4000:]


def test_mypy_finds_nothing():
    out = _run("mypy")
    assert out.returncode == 0, out.stdout[-4000:]
