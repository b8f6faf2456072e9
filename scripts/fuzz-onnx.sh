#!/usr/bin/env bash
# Fuzzes the ONNX importer (swinrt::load_onnx_bytes) with libFuzzer, ASan and
# UBSan for a fixed time, starting from tests/fuzz/corpus/. Exits non-zero on
# any crash, sanitizer report, leak or timeout; the reproducer is left in
# $SWINRT_FUZZ_BUILD/artifacts/. ./swinrt.sh test runs it.
#   scripts/fuzz-onnx.sh [SECONDS]       (default 60)
# Environment: SWINRT_FUZZ_BUILD (default build/fuzz), CC/CXX (default clang/clang++).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_BUDGET=${1:-60}
BUILD=${SWINRT_FUZZ_BUILD:-build/fuzz}
CC=${CC:-clang} CXX=${CXX:-clang++}
export CC CXX
if ! command -v "$CXX" >/dev/null; then
  echo "fuzz-onnx: $CXX not found (apt-get install clang)" >&2
  exit 1
fi
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSWINRT_FUZZ=ON -DSWINRT_TESTS=OFF -DSWINRT_CUDA=OFF >/dev/null
cmake --build "$BUILD" --target onnx_fuzz -j "$(nproc)"
work="$BUILD/corpus"
mkdir -p "$work" "$BUILD/artifacts"
echo "fuzz-onnx: ${SECONDS_BUDGET}s of libFuzzer on swinrt::load_onnx_bytes (seeds: tests/fuzz/corpus)" >&2
# -seed fixes the mutation sequence; the grown corpus in $work carries over between runs.
"$BUILD/onnx_fuzz" -seed=1 -max_total_time="$SECONDS_BUDGET" -timeout=20 -rss_limit_mb=2560 -max_len=400000 \
  -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" "$work" tests/fuzz/corpus 2>"$BUILD/fuzz.log" || {
  rc=$?
  tail -n 60 "$BUILD/fuzz.log" >&2
  echo "fuzz-onnx: FAILED (exit $rc); reproducer in $BUILD/artifacts/" >&2
  exit 1
}
grep -E "^stat::number_of_executed_units|^stat::new_units_added|Done [0-9]+ runs" "$BUILD/fuzz.log" >&2 || true
echo "fuzz-onnx: no crash in ${SECONDS_BUDGET}s" >&2
