#!/usr/bin/env bash
# The GPU checks and runs that a CPU cannot make, in one short call of the device tool (issue #10 item 4,
# issue #13 points 1-2). Run from the repository root on a CUDA host whose python3 has torch + transformers:
#   bash scripts/gpu_evidence.sh OUT [SIM_SECONDS]
# It needs .gpu/ (ignored by git, made by `bash scripts/gpu_evidence.sh --prepare` here): the packaged MiniLM
# stored in fp16 (the device tool moves at most 64 MiB; it is cast back to fp32 there, and CUDA trains it
# under bf16 autocast anyway) and the shared datasets gzipped. Writes into OUT: the GPU tests' log, the round
# timings, and the fine-tuned simulation runs (resumable folders, packed) with their logs. The runs continue
# docs/results/<dataset>-finetune: unpack finetune-runs.tar.gz over docs/results to keep what a call added.
set -uo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}

if [ "${1:-}" = "--prepare" ]; then  # on the development machine, with .venv and ../shared/datasets
  set -e
  mkdir -p .gpu/minilm-fp16
  src=$(.venv/bin/python -c "from beal_backend.engine.encoders import resolve; print(resolve('minilm'))")
  find "$src" -maxdepth 1 -mindepth 1 ! -name model.safetensors -exec cp -r {} .gpu/minilm-fp16/ \;
  .venv/bin/python - "$src" <<'PY'
import sys, torch
from safetensors.torch import load_file, save_file
t = load_file(f"{sys.argv[1]}/model.safetensors")
save_file({k: (v.half() if v.is_floating_point() else v) for k, v in t.items()}, ".gpu/minilm-fp16/model.safetensors")
PY
  for ds in aapd goemotions stackoverflow_titles; do
    mkdir -p ".gpu/data/$ds" && cp "../shared/datasets/$ds/labels.txt" ".gpu/data/$ds/"
    for f in train test; do gzip -c "../shared/datasets/$ds/$f.jsonl" > ".gpu/data/$ds/$f.jsonl.gz"; done
  done
  du -sh .gpu
  exit 0
fi

out=${1:?usage: gpu_evidence.sh OUT [SIM_SECONDS] | --prepare}
sim_seconds=${2:-400}
device=${DEVICE:-cuda}  # DEVICE=cpu + SMOKE=1: a dry run of this script on a CPU
protocol="--protocol paper --pool-size 1000 --test-size 1000 --initial 50 --batch 50 --repeats 3 --epochs 15"
round_sets="stackoverflow_titles:10000 aapd:1000" round_args=""
if [ -n "${SMOKE:-}" ]; then
  protocol="--protocol paper --pool-size 40 --test-size 20 --initial 10 --batch 10 --rounds 1 --repeats 1 --epochs 1"
  round_sets="aapd:30 stackoverflow_titles:40" round_args="--labeled 10 --epochs 1 --passes 2"
fi
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD" PYTHONUNBUFFERED=1
enc=/tmp/minilm data=/tmp/datasets runs=/tmp/finetune-runs
mkdir -p "$enc" "$data" "$runs"
cp -r .gpu/minilm-fp16/. "$enc/"
$py - "$enc" <<'PY'
import sys, torch
from safetensors.torch import load_file, save_file
p = f"{sys.argv[1]}/model.safetensors"
save_file({k: (v.float() if v.is_floating_point() else v) for k, v in load_file(p).items()}, p)
PY
for ds in aapd goemotions stackoverflow_titles; do
  mkdir -p "$data/$ds" && cp ".gpu/data/$ds/labels.txt" "$data/$ds/"
  for f in train test; do gunzip -c ".gpu/data/$ds/$f.jsonl.gz" > "$data/$ds/$f.jsonl"; done
done
{ nvidia-smi -L 2>&1; $py -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"; } | tee "$out/machine.txt"

if [ -z "${SKIP_CHECKS:-}" ]; then  # SKIP_CHECKS=1: only continue the runs (a lease's time all to them)
echo "== GPU tests" | tee "$out/gpu_tests.txt"
[ "$device" = cpu ] || timeout 150 $py -m pytest -m gpu tests/gpu -p no:cacheprovider -q 2>&1 | tail -15 | tee -a "$out/gpu_tests.txt"

echo "== one round at the paper's scale (alone on the GPU)" | tee "$out/gpu_round.txt"
# shellcheck disable=SC2086
timeout 150 $py benchmarks/bench_gpu_round.py --data "$data" --encoder "$enc" --device "$device" $round_args \
  --datasets $round_sets 2>&1 | grep -v "Loading weights" | tee -a "$out/gpu_round.txt"
fi

echo "== fine-tuned runs (issue #13 point 1's protocol), at most ${sim_seconds}s, both datasets at once" | tee "$out/finetune.txt"
S=beal,random,badge,bald,coreset,beal-deterministic,beal-stochastic
for ds in aapd goemotions; do
  # continue the committed runs (a run resumes at its last logged round; its settings must match)
  if [ -z "${SMOKE:-}" ] && [ -f "docs/results/$ds-finetune/results.csv" ]; then cp -r "docs/results/$ds-finetune" "$runs/"; fi
  # shellcheck disable=SC2086
  timeout "$sim_seconds" $py -m beal_backend simulate --learner finetune --device "$device" --encoder "$enc" \
    --scope head --mc-passes 100 --val-fraction 0 --data "$data/$ds" --out "$runs/$ds-finetune" $protocol \
    --strategies "$S" --workers 7 --no-progress > "$out/$ds-finetune.log" 2>&1 &
done
wait
for ds in aapd goemotions; do
  echo "$ds: $(($(wc -l < "$runs/$ds-finetune/results.csv" 2>/dev/null || echo 1) - 1)) result rows" | tee -a "$out/finetune.txt"
done
tar czf "$out/finetune-runs.tar.gz" -C "$runs" .
