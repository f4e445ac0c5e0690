#!/usr/bin/env bash
# The service-regime simulations (issue 20, point 2): the three shared datasets under `beal simulate --protocol
# service` (the service's own learner, training, held-out slice and scoring settings; 5 % of the pool at random,
# then a round every 20 labels up to 75 % of the pool), 6 repeats, into docs/results/<dataset>-service/.
#
#   scripts/service_runs.sh [datasets folder]      # default: $BEAL_DATASETS, else ../shared/datasets
#
# Resumable: rerun the same command and each run goes on from its last logged round (config.json must match).
# Stopped early: the folder's command.txt plus --report-only writes the summary of the complete repeats.
# Niced and one worker by default, so it can run in the background of a shared machine; WORKERS=2 on idle cores.
# Environment: DATASETS (which, in order), STRATEGIES, REPEATS, WORKERS, PYTHON. The service's settings
# (MC_PASSES, POOLING, LEARNER, EPOCHS, ...) are read from the environment as the service reads them: leave them
# unset for the defaults the results README describes. Each folder gets command.txt and run.log.
set -euo pipefail
cd "$(dirname "$0")/.."

data=${1:-${BEAL_DATASETS:-../shared/datasets}}
strategies=${STRATEGIES:-random,beal,beal-deterministic,badge,coreset,bald,entropy,beal-diverse,beal-stochastic,beal-typical,beal-kmeans}
repeats=${REPEATS:-6}
workers=${WORKERS:-1}
py=${PYTHON:-.venv/bin/python}

for ds in ${DATASETS:-goemotions stackoverflow_titles aapd}; do
  case "$ds" in
    aapd) size=() ;;  # its whole pool: 1,000 texts, test 1,000
    *) size=(--pool-size 2000 --test-size 2000) ;;
  esac
  out="docs/results/$ds-service"
  mkdir -p "$out"
  cmd=(beal simulate --protocol service --data "$data/$ds" --out "$out" "${size[@]}" --strategies "$strategies"
       --repeats "$repeats" --workers "$workers" --no-progress)
  echo "${cmd[*]}" > "$out/command.txt"
  echo "== $(date -u +%FT%TZ) $ds" | tee -a "$out/run.log"
  HF_HUB_OFFLINE=1 nice -n 19 "$py" -m beal_backend "${cmd[@]:1}" >> "$out/run.log" 2>&1
  echo "== $(date -u +%FT%TZ) $ds done" | tee -a "$out/run.log"
done
