#!/usr/bin/env bash
# Run the whole test suite: installs what it needs into .venv; the suite itself starts a real Label Studio
# (cached under ~/.cache/beal-backend), uses REDIS_URL or 127.0.0.1:6379 or a private redis-server, and builds
# and runs the containers (Docker + Compose, else container-engine). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements-test.txt
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m pytest "$@"
