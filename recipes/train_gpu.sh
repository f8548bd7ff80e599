#!/usr/bin/env bash
# The recipe of every shipped model: all trained at once on one GPU (the runs are small, so they share it).
# Usage: recipes/train_gpu.sh DATA_DIR OUT_DIR MINUTES
#   DATA_DIR holds sr-train/BSD400 and sr-eval/Set5 (a copy of ../shared/data); OUT_DIR gets one run folder
#   per model (config.json, history.json, checkpoint.pt, model.safetensors) and its log.
# Each run has the same wall-clock budget; the cosine schedule ends with it, and history.json records the
# steps it reached. Re-running with --resume continues from the checkpoints.
set -u
data=$1
out=$2
minutes=${3:-8}
mkdir -p "$out"
common=(--data "$data/sr-train/BSD400" --val-data "$data/sr-eval/Set5" --device "${DEVICE:-cuda}" --steps 10000000
        --minutes "$minutes" --val-every 2000 --batch 64)
run() {  # run MODEL [extra options...]
  local model=$1; shift
  python3 -m vsr train --model "$model" --out "$out/$model" "${common[@]}" "$@" >"$out/$model.log" 2>&1 &
}
run espcn-x2 --patch 96 --lr 1e-3
run espcn-x3 --patch 96 --lr 1e-3
run fsrcnn-x2 --patch 96 --lr 1e-3
run compact-x2 --patch 96 --lr 1e-3
run compact-x4 --patch 128 --lr 1e-3
run srcnn-x2 --patch 96 --lr 3e-4
run vdsr-x2 --patch 96 --lr 2e-4
run dncnn-color --patch 64 --lr 1e-3 --jitter 0
wait
for f in "$out"/*.log; do echo "== $f"; tail -n 2 "$f"; done
