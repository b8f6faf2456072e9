#!/usr/bin/env bash
# The evaluation pipeline on the GPU (issue 4): builds with CUDA, runs the
# gpu-labelled ctest (cuda_test + cuda_pipeline_test: CUDA zoom/EDT/metrics
# bit for bit against the CPU path), memcheck on the pipeline kernels, the
# end-to-end pytest against the original protocol with `swinrt eval --device
# cuda`, and bench/eval_vs_original.py (512x512x100, 8 organs). Logs to $LOGS.
#   PATH=/opt/torch/.venv/bin:$PATH LOGS=out ./scripts/gpu-eval-check.sh [build] [test] [bench]
# (no argument: all three). medpy and safetensors come through PYTHONPATH
# where the Python of PATH lacks them.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOGS=${LOGS:-build/gpu-logs}
DEPTH=${DEPTH:-100}
STEPS=${*:-build test bench}
mkdir -p "$LOGS"
has() { [[ " $STEPS " == *" $1 "* ]]; }
rc=0
if has build; then
  cmake -S . -B build/cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DSWINRT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DSWINRT_PYTHON="$PY" > "$LOGS/eval-configure.log" 2>&1 || { tail -30 "$LOGS/eval-configure.log"; exit 1; }
  cmake --build build/cuda -j "$(nproc)" > "$LOGS/eval-build.log" 2>&1 ||
    { grep -A5 error "$LOGS/eval-build.log" | head -60; exit 1; }
  echo "build: ok"
fi
if has test; then
  ctest --test-dir build/cuda -L gpu -j 4 --output-on-failure > "$LOGS/eval-ctest-gpu.log" 2>&1 || rc=1
  grep -E "tests passed|tests failed|Failed|\(Failed\)|SKIPPED|Skipped" "$LOGS/eval-ctest-gpu.log" | head -20
  build/cuda/tests/swinrt_gpu_tests --gtest_filter='*CudaZoom*' > "$LOGS/eval-gtest-zoom.log" 2>&1
  build/cuda/tests/swinrt_gpu_tests --gtest_filter='*CudaEdt*:*CudaMetrics*' > "$LOGS/eval-gtest-edt.log" 2>&1
  grep -hE "^\[  (PASSED|FAILED|SKIPPED) " "$LOGS/eval-gtest-zoom.log" "$LOGS/eval-gtest-edt.log"
  compute-sanitizer --tool memcheck build/cuda/tests/swinrt_gpu_tests \
    --gtest_filter='*CudaZoom*64x64*:*CudaZoom*1x9*:*CudaEdt*/2_*:*CudaEdt*/5_*:*CudaMetrics*/2_*:*CudaMetrics*/5_*' \
    > "$LOGS/eval-memcheck.log" 2>&1
  grep -h "ERROR SUMMARY" "$LOGS/eval-memcheck.log"
  SWINRT_EVAL_DEVICE=cuda SWINRT_BIN=$PWD/build/cuda/swinrt PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" \
    "$PY" -m pytest tests/python/test_pipeline.py -q -s -k eval 2>&1 | tee "$LOGS/eval-pytest.log" |
    grep -E "argmax flip\(s\)|[0-9]+ (passed|failed)" || rc=1
fi
if has bench; then
  SWINRT_BIN=$PWD/build/cuda/swinrt "$PY" bench/eval_vs_original.py --depth "$DEPTH" --repeat 3 \
    --workdir build/cuda/eval-bench --json "$LOGS/eval-bench.json" 2>&1 | tee "$LOGS/eval-bench.log" || rc=1
  # The progress bar as a terminal shows it, on the bench's volume (script(1) provides the tty).
  if command -v script > /dev/null; then
    script -qec "build/cuda/swinrt eval --weights build/cuda/eval-bench/swin-t.safetensors --volume-path build/cuda/eval-bench/vol --device cuda" \
      /dev/null > "$LOGS/eval-tty.log" 2>&1 || true
  fi
fi
exit $rc
