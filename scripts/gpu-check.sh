#!/usr/bin/env bash
# Builds the CUDA backend and runs every test and benchmark that needs a GPU:
# ctest (CPU and GPU labels), the PyTorch-on-GPU comparison, compute-sanitizer
# memcheck and racecheck, and the bench against PyTorch. Logs go to $LOGS.
#   PYTHON=/path/to/python-with-torch LOGS=out ./scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOGS=${LOGS:-build/gpu-logs}
mkdir -p "$LOGS"
cmake -S . -B build/cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DSWINRT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DSWINRT_PYTHON="$PY" > "$LOGS/configure.log" 2>&1 || { tail -30 "$LOGS/configure.log"; exit 1; }
cmake --build build/cuda -j "$(nproc)" > "$LOGS/build.log" 2>&1 || { grep -A5 error "$LOGS/build.log" | head -60; exit 1; }
ctest --test-dir build/cuda -j 8 --output-on-failure 2>&1 | tee "$LOGS/ctest.log" | tail -3
SWINRT_BIN=$PWD/build/cuda/swinrt PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m pytest tests/python/test_cuda.py -q -s 2>&1 |
  tee "$LOGS/pytest_cuda.log" | grep -E "swinrt max|passed|failed"
compute-sanitizer --tool memcheck build/cuda/tests/swinrt_gpu_tests \
  --gtest_filter='*fp16*:*bf16*:*tiny_fp32*:Cuda.Threads*' > "$LOGS/memcheck.log" 2>&1
compute-sanitizer --tool racecheck build/cuda/tests/swinrt_gpu_tests --gtest_filter='*w8_fp16*:*tiny_fp32*' \
  > "$LOGS/racecheck.log" 2>&1
grep -h SUMMARY "$LOGS/memcheck.log" "$LOGS/racecheck.log"
SWINRT_PYTHON=$PY build/cuda/swinrt bench --random swin-t --device cuda --precision fp32,tf32,fp16,bf16 \
  --batch 1,32,128 --compare --compare-modes eager,graph --json "$LOGS/bench.json" 2>&1 | tee "$LOGS/bench.log" |
  grep -E "^(prec|fp|tf|bf)"
