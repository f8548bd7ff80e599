#!/usr/bin/env bash
# The GPU check, in one go and under 6 minutes on a fresh H100/H200: the CUDA (and TensorRT, where it is
# installed) tests, then `vsr bench`'s model-only grid and the end-to-end stage breakdown at 1080p → 4K.
#
# Usage, from the repo root on the GPU machine: bash bench/gpu_check.sh
#   The machine's python3 needs torch with CUDA; the rest comes from .whl/ (bench/gpu_wheels.sh).
#   Writes bench/results/gpu_tests_<gpu>.log and bench/results/gpu_bench_<gpu>.json, and copies them to
#   $OUT when that is set (the device tool brings $OUT back).
set -uo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 VSR_CACHE_DIR=/tmp/vsr-plans
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')")
tag=$(echo "$gpu" | tr 'A-Z ' 'a-z_' | tr -cd 'a-z0-9_')
results=bench/results
mkdir -p "$results"
echo "device: $gpu"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
start=$SECONDS

# 1. Correctness where CUDA is: the device path (YUV maths, stager with real streams, whole jobs), the
#    torch CUDA backend against ONNX Runtime, and TensorRT plans when tensorrt imports.
timeout 170 python3 -m pytest -q -p no:cacheprovider -x tests/test_device_path.py tests/test_tensorrt.py \
  tests/test_backend.py 2>&1 | tee "$results/gpu_tests_$tag.log"
echo "tests: $((SECONDS - start)) s"

# 2. The grid (every shipped SR model worth a GPU, 720p and 1080p inputs, batches, precisions, backends)
#    and the end-to-end breakdown of compact-x2 on a synthetic 1080p clip, upscaled to 2160p.
timeout 200 python3 -m vsr bench --models espcn-x2,compact-x2,compact-x4,fsrcnn-x2 --resolutions 720p,1080p \
  --batches 1,4,8 --precisions fp32,fp16,bf16 --seconds 0.7 --e2e-model compact-x2 --e2e-size 1080p \
  --e2e-frames 96 --out "$results/gpu_bench_$tag.json"
echo "total: $((SECONDS - start)) s"
if [ -n "${OUT:-}" ]; then cp "$results/gpu_tests_$tag.log" "$results/gpu_bench_$tag.json" "$OUT"/ 2>/dev/null; fi
exit 0
