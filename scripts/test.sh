#!/usr/bin/env bash
# Run the whole test suite: installs what it needs, starts a real Label Studio (../shared/tools) for the
# end-to-end tests and uses the Redis on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements-test.txt
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m pytest "$@"
