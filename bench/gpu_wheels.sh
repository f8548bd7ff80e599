#!/usr/bin/env bash
# Fetch, into .whl/ (git-ignored), the one wheel bench/gpu_check.sh needs on a GPU machine whose Python 3.12
# has torch, numpy, onnx, onnxruntime, safetensors, pytest, typer and rich but not PyAV (the device image).
# Usage: bash bench/gpu_wheels.sh   (on a machine with network access; pins = this venv's versions)
set -euo pipefail
cd "$(dirname "$0")/.."
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
pins=(av==18.1.0)
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl "${pins[@]}"
ls .whl
