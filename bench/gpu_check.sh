#!/usr/bin/env bash
# The GPU check, in one go and under 5 minutes on a fresh H100/H200:
#   1. the CUDA, TensorRT (where it imports) and backend-conformance tests, all of them (no -x);
#   2. a small model-only grid: espcn-x2 and compact-x2, batch 1 and 8, fp16 and bf16, 1080p → 4K, on
#      torch CUDA (and TensorRT where it imports); its JSON is rewritten after every point;
#   3. one end-to-end job, compact-x2 1080p → 2160p: the split between the model and x264 (Hopper has no
#      NVENC, so the CPU encoder bounds the pipeline there).
# Exits non-zero when any test or step fails, and prints a one-screen summary.
#
# Usage, from the repo root on the GPU machine: bash bench/gpu_check.sh
#   The machine's python3 must have torch with CUDA, numpy, onnx, onnxruntime, safetensors, pytest, typer
#   and rich (the device image has them all); only PyAV travels, as a wheel in .whl/ (bench/gpu_wheels.sh).
#   Results: bench/results/gpu_tests_<gpu>.log and bench/results/gpu_bench_<gpu>.json, copied to $OUT
#   when that is set (the device tool brings $OUT back).
set -uo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/av-*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/av-*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
# The image's own pytest, without the plugins it happens to carry (a broken plugin must not fail the check).
export PYTHONUNBUFFERED=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 VSR_CACHE_DIR=/tmp/vsr-plans
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')")
tag=$(echo "$gpu" | tr 'A-Z ' 'a-z_' | tr -cd 'a-z0-9_')
results=bench/results
log="$results/gpu_tests_$tag.log" json="$results/gpu_bench_$tag.json"
mkdir -p "$results"
export OUT="${OUT:-}"
copy_out() { if [ -n "$OUT" ]; then cp "$log" "$json" "$OUT"/ 2>/dev/null; fi; }
trap copy_out EXIT  # whatever finished comes back, also after a timeout
echo "device: $gpu"; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
start=$SECONDS
failed=0

# 1. Correctness where CUDA is: the device path (YUV maths and siting, stager with real streams, whole jobs),
#    the conformance contract of every backend present, TensorRT's rules and plans.
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_device_path.py tests/test_backend_conformance.py \
  tests/test_tensorrt.py tests/test_trt_rules.py tests/test_backend.py 2>&1 | tee "$log"
tests_rc=${PIPESTATUS[0]}
[ "$tests_rc" -eq 0 ] || failed=1
echo "tests: rc $tests_rc, $((SECONDS - start)) s"

# 2 and 3. The grid and the end-to-end split, one JSON (rewritten after every grid point).
backends=torch
python3 -c "import tensorrt" 2>/dev/null && backends=torch,tensorrt
timeout 120 python3 -m vsr bench --models espcn-x2,compact-x2 --resolutions 1080p --batches 1,8 \
  --precisions fp16,bf16 --backends "$backends" --seconds 0.5 --e2e-model compact-x2 --e2e-size 1080p \
  --e2e-frames 48 --out "$json" >/dev/null 2>>"$log"
bench_rc=$?
[ "$bench_rc" -eq 0 ] || failed=1
echo "bench: rc $bench_rc, total $((SECONDS - start)) s"

# The summary: failures, the grid, and the end-to-end split.
grep -E "^(FAILED|ERROR)|passed|failed" "$log" | tail -n 12
python3 - "$json" <<'EOF' || failed=1
import json, sys
record = json.load(open(sys.argv[1]))
print(f"{'model':12} {'backend':10} {'prec':5} {'batch':>5} {'frames/s':>9} {'GPU MiB':>8}")
for p in record["model_only"]:
    speed = p["skipped"] or f"{p['frames_per_s']:9.1f} {p['peak_gpu_mib'] or 0:8.0f}"
    print(f"{p['model']:12} {p['backend']:10} {p['precision']:5} {p['batch']:5} {speed}")
e = record["end_to_end"]
if e is None:
    sys.exit("no end-to-end result")
stages = ", ".join(f"{k} {v:.1f}" for k, v in e["stages_fps"].items())
print(f"end to end {e['model']} ({e['path']}, batch {e['batch']}): {e['end_to_end_fps']:.1f} fps; "
      f"stages alone (fps): {stages}; slowest {e['bound_fps']:.1f}, efficiency {e['efficiency']}")
EOF
echo "gpu_check: $([ $failed -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
exit $failed
