#!/usr/bin/env bash
# The recipe of the models trained on a 2-core CPU: two runs side by side, one torch thread each, each
# with a wall-clock budget that ends its cosine schedule.
# Usage: recipes/train_cpu.sh DATA_DIR OUT_DIR [STAGE]   (DATA_DIR: a copy of ../shared/data)
#   stage 1: espcn-x2 (70 min) and the first dncnn-color run (40 min)
#   stage 2: dncnn-color fine-tuned from stage 1 for 120 min (--init, lower peak rate, larger patches)
#            and vdsr-x2 from scratch (He initialisation) for 100 min
#   stage 3: dncnn-color fine-tuned from stage 2 for 75 min on a mix that draws strong JPEG (q10) about
#            four times as often, and espcn-x3 (with the nearest-upsampled skip) from scratch for 75 min
#   stage 4: real-espcn-x2 on the real-world degradations (vsr/train/real.py), warm-started from
#            espcn-x2, on DIV2K crops; one run (its degradation producer takes the other core), a 600-minute
#            schedule that spans sessions: rerun the same command with --resume to continue it
#   sitting: one sitting of the committed long runs (train/runs/README.md). Usage:
#            recipes/train_cpu.sh DATA_DIR train/runs sitting MINUTES
#            The first run in RUNS whose schedule is not finished resumes from its committed checkpoint,
#            trains for MINUTES (its schedule counts steps, so a sitting only decides where it pauses),
#            checkpoints, and, with COMMIT=1, commits train/runs alone (`git commit -- train/runs`).
#            Both cores: 2 torch threads, the degradation producer capped at 0.5 new pairs per pair
#            trained on (bench/results/train_speed.json: 1.62x one thread beside an unbounded producer);
#            bf16 autocast where the CPU has AMX or AVX-512-BF16.
set -u
# `make` installs vsr into .venv: use it when the caller has not put it on PATH.
PATH="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin:$PATH"
export PYTHONUNBUFFERED=1  # the logs show each validation as it happens
data=$1
out=$2
stage=${3:-1}
mkdir -p "$out"
common=(--data "$data/sr-train/BSD400" --val-data "$data/sr-eval/Set5" --steps 10000000 --val-every 500
        --batch 16 --threads 1)
if [ "$stage" = 1 ]; then
  vsr train --model espcn-x2 --out "$out/espcn-x2" "${common[@]}" --patch 96 --lr 1e-3 --minutes 70 \
    >"$out/espcn-x2.log" 2>&1 &
  vsr train --model dncnn-color --out "$out/dncnn-color" "${common[@]}" --patch 48 --lr 1e-3 --minutes 40 \
    --jitter 0 >"$out/dncnn-color.log" 2>&1 &
elif [ "$stage" = 2 ]; then
  vsr train --model dncnn-color --out "$out/dncnn-color-ft" "${common[@]}" --patch 64 --lr 3e-4 \
    --minutes 120 --jitter 0 --init "$out/dncnn-color/model.safetensors" >"$out/dncnn-color-ft.log" 2>&1 &
  vsr train --model vdsr-x2 --out "$out/vdsr-x2" "${common[@]}" --val-every 250 --patch 42 --lr 3e-4 \
    --minutes 100 >"$out/vdsr-x2.log" 2>&1 &
elif [ "$stage" = 3 ]; then
  vsr train --model dncnn-color --out "$out/dncnn-color-jpeg" "${common[@]}" --patch 64 --lr 1e-4 \
    --minutes 75 --jitter 0 --init "$out/dncnn-color-ft/model.safetensors" --compressed-prob 0.6 \
    --jpeg-qualities 10,10,10,15,15,20,30,40,60 --h264-crfs 28,33,38,43 >"$out/dncnn-color-jpeg.log" 2>&1 &
  vsr train --model espcn-x3 --out "$out/espcn-x3" "${common[@]}" --patch 96 --lr 1e-3 --minutes 75 \
    >"$out/espcn-x3.log" 2>&1 &
elif [ "$stage" = sitting ]; then
  minutes=${4:?MINUTES: how long this sitting trains}
  long=(--data "$data/sr-train/DIV2K-crops" --data "$data/sr-train/BSD400" --val-data "$data/sr-eval/Set5"
        --val-every 500 --batch 16 --threads 2 --fresh 0.5 --resume --sitting-minutes "$minutes")
  # bf16 autocast + NHWC where the CPU computes bf16 natively (1.84x on AVX-512-BF16 at 2 threads,
  # bench/results/train_speed_avx512bf16.json); not a schedule key, so a run may change machines.
  if python -c "import sys; from vsr.train.silicon import cpu_bf16; sys.exit(cpu_bf16() is None)"; then
    long+=(--amp --channels-last)
  fi
  # The runs, in order; each line: NAME STEPS OPTIONS... (the schedule: never edit a started run's line;
  # a shipped run's line goes with its folder). Shipped (engines/manifest.json has each command):
  # real-compact-x2 20000 --patch 96 --lr 2e-4 --init engines/compact-x2.safetensors;
  # real-compact-x4 15000 --patch 128 --lr 2e-4 --init engines/compact-x4.safetensors;
  # codec-compact-x2 6000 --patch 96 --lr 1e-4 --consistency 0.5 --init engines/real-compact-x2.safetensors;
  # real-espcn-x2 10000 --patch 96 --lr 5e-4 --init engines/espcn-x2.safetensors.
  # restore-compact-x4 (#26): the restoring look, adversarial from real-compact-x4. The PatchGAN, as a probe
  # (12 steps, batch 16, bf16, 2 threads) gave 38.9 patches/s at 96² against the U-Net's 8.5 (13.0 at
  # --d-features 16), and 30.6 at 128².
  runs=(
    "restore-compact-x4 8000 --patch 128 --lr 1e-4 --gan patch --consistency 0.5 --init engines/real-compact-x4.safetensors"
  )
  trained=0
  for line in "${runs[@]}"; do
    read -r name steps opts <<<"$line"
    history="$out/$name/history.json"
    if [ -f "$history" ] && python3 -c "import json,sys; sys.exit(json.load(open('$history'))[-1]['step'] < $steps)"
    then continue; fi  # finished: its weights await measurement and release
    # shellcheck disable=SC2086  # opts is a list of words
    vsr train --model "$name" --out "$out/$name" --steps "$steps" "${long[@]}" $opts >>"$out/$name.log" 2>&1
    if [ "${COMMIT:-0}" = 1 ]; then
      step=$(python3 -c "import json; print(json.load(open('$history'))[-1]['step'])")
      git add "$out/$name" "$out/$name.log"
      git commit -q -m "train/runs: $name at step $step of $steps" -- "$out/$name" "$out/$name.log"
    fi
    trained=1
    break
  done
  [ "$trained" = 1 ] || echo "sitting: no unfinished run in the recipe's list (train/runs/README.md says what is next)"
else
  vsr train --model real-espcn-x2 --out "$out/real-espcn-x2" --data "$data/sr-train/DIV2K-crops" \
    --val-data "$data/sr-eval/Set5" --steps 10000000 --val-every 500 --batch 32 --threads 1 --patch 96 \
    --lr 5e-4 --minutes 600 --init engines/espcn-x2.safetensors --resume >>"$out/real-espcn-x2.log" 2>&1 &
fi
wait
