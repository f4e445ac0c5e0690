#!/usr/bin/env bash
# Start beal-backend on the embedded defaults (no Redis needed): installs what it needs on first run.
#   PORT (9090), MODEL_DIR (./model_store), LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY, REDIS_URL: see README.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh requirements.txt
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
exec .venv/bin/gunicorn --bind "0.0.0.0:${PORT:-9090}" --workers 1 --threads 8 --timeout 120 "_wsgi:make_app()"
