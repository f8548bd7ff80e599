#!/usr/bin/env bash
# The recipe of the models trained on a 2-core CPU (espcn-x2 and dncnn-color): two runs side by side,
# one torch thread each, each with a wall-clock budget that ends its cosine schedule.
# Usage: recipes/train_cpu.sh DATA_DIR OUT_DIR   (DATA_DIR: a copy of ../shared/data)
set -u
data=$1
out=$2
mkdir -p "$out"
common=(--data "$data/sr-train/BSD400" --val-data "$data/sr-eval/Set5" --steps 10000000 --val-every 500
        --batch 16 --threads 1)
vsr train --model espcn-x2 --out "$out/espcn-x2" "${common[@]}" --patch 96 --lr 1e-3 --minutes 70 \
  >"$out/espcn-x2.log" 2>&1 &
vsr train --model dncnn-color --out "$out/dncnn-color" "${common[@]}" --patch 48 --lr 1e-3 --minutes 40 \
  --jitter 0 >"$out/dncnn-color.log" 2>&1 &
wait
