#!/usr/bin/env bash
# swinrt developer entry point.
#   ./swinrt.sh demo    set up (if needed), build, run the main job: segment a phantom CT volume
#                       with the bundled model, print the metrics and speed, write overlays
#   ./swinrt.sh test    set up (if needed), build, run every test (C++ and Python)
#   ./swinrt.sh setup   only install packages, the Python venv and build
#   ./swinrt.sh fuzz [SECONDS]  libFuzzer on the ONNX importer (part of `test`, 60 s there)
# Environment: SWINRT_VENV (default ~/.cache/swinrt-venv), SWINRT_BUILD (default build/release).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV=${SWINRT_VENV:-$HOME/.cache/swinrt-venv}
BUILD=${SWINRT_BUILD:-build/release}
# This checkout's Python package, whatever the venv's editable install points at.
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"

APT_PACKAGES=(cmake ninja-build g++ pkg-config libopenblas-dev libfmt-dev nlohmann-json3-dev libcli11-dev
              libgtest-dev libbenchmark-dev libhdf5-dev libnifti2-dev zlib1g-dev libpng-dev
              libprotobuf-dev protobuf-compiler clang)
PY_PACKAGES=(torch numpy scipy safetensors pyyaml pytest onnx h5py medpy)
# ONNX export variants (dynamo exporter, simplifiers): tests skip what pip cannot install.
PY_OPTIONAL=(onnxscript onnxslim onnxsim)

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

setup_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  log "apt-get install ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
}

setup_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating Python venv $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import torch, numpy, scipy, safetensors, yaml, pytest, onnx, h5py, medpy" 2>/dev/null; then
    log "pip install ${PY_PACKAGES[*]} (torch is large: first time only)"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "${PY_PACKAGES[@]}"
  fi
  for p in "${PY_OPTIONAL[@]}"; do
    "$VENV/bin/python" -c "import $p" 2>/dev/null || "$VENV/bin/pip" install -q "$p" ||
      log "pip could not install $p: the ONNX tests that need it skip"
  done
  # CUDA builds: CUTLASS's headers (the small batches' GEMMs, src/cuda/gemm_sm90.cuh); CMake finds them here.
  if [ "${SWINRT_CUDA:-OFF}" = ON ] && ! "$VENV/bin/python" -c "import cutlass_library" 2>/dev/null; then
    "$VENV/bin/pip" install -q --no-deps nvidia-cutlass || log "pip could not install nvidia-cutlass: cuBLASLt runs every GEMM"
  fi
  if [ ! -x "$VENV/bin/swinrt-convert" ] || [ ! -x "$VENV/bin/swinrt-export" ] || [ ! -x "$VENV/bin/swinrt-phantom" ]; then
    "$VENV/bin/pip" install -q --no-deps -e "$ROOT"
  fi
}

build() {
  log "building $BUILD"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSWINRT_WERROR=ON -DSWINRT_CUDA="${SWINRT_CUDA:-OFF}" \
    -DSWINRT_PYTHON="$VENV/bin/python" >/dev/null
  cmake --build "$BUILD" -j "$(nproc)"
}

setup() { setup_apt; setup_venv; build; }

demo() {
  setup
  local out=${SWINRT_DEMO_DIR:-out/demo}
  local model=models/demo_swin_unet.safetensors depth=48
  local t0=$SECONDS
  mkdir -p "$out"
  rm -rf "$out/data" "$out/nifti" "$out/png" "$out/metrics.json" "$out/standin.safetensors"
  if [ ! -f "$model" ]; then
    log "$model not found: using a random-weight stand-in of the same config (dice near 0);" \
        "train the real one with scripts/train-demo-model.sh"
    "$VENV/bin/python" -m swinrt.demo standin "$out/standin.safetensors"
    model=$out/standin.safetensors
  fi
  "$BUILD/swinrt" info "$model"
  log "a phantom abdominal CT: $depth slices of 512x512, 8 labelled organs (swinrt-phantom --seed 7)"
  "$VENV/bin/python" -m swinrt.phantom --out "$out/data" --seed 7 --volumes 1 --depth $depth
  log "segmenting it: swinrt eval, the original Swin-Unet test protocol (Synapse), best device"
  local t_eval=$(date +%s%N)
  "$BUILD/swinrt" eval --weights "$model" --volume-path "$out/data" --device auto \
      --save-nifti "$out/nifti" --save-png "$out/png" --json "$out/metrics.json"
  t_eval=$(( ($(date +%s%N) - t_eval) / 1000000 ))
  log "per organ: dice and hd95 (voxels), as the paper's Synapse table"
  "$VENV/bin/python" -m swinrt.demo report "$out/metrics.json"
  log "speed: $depth slices segmented and scored in $t_eval ms, $(( depth * 1000 / (t_eval > 0 ? t_eval : 1) )) slices/s" \
      "(swinrt eval as a whole: reading, resizing, network, metrics, NIfTI and PNG writing)"
  log "done in $((SECONDS - t0)) s; outputs in $out/: png/ (CT | ground truth | prediction overlays)," \
      "nifti/ (prediction, image, ground truth .nii.gz), metrics.json, data/ (the phantom volume)"
}

run_tests() {
  setup
  log "C++ tests (ctest)"
  ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)"
  fuzz "${SWINRT_FUZZ_SECONDS:-60}"
  log "Python tests (pytest)"
  SWINRT_BIN="$ROOT/$BUILD/swinrt" "$VENV/bin/python" -m pytest tests/python -q
}

fuzz() {
  log "fuzzing the ONNX importer (libFuzzer, ASan, UBSan) for ${1:-60}s"
  "$ROOT/scripts/fuzz-onnx.sh" "${1:-60}"
}

case "${1:-}" in
  demo) demo ;;
  test) run_tests ;;
  setup) setup ;;
  fuzz) setup_apt; fuzz "${2:-60}" ;;
  *) echo "usage: $0 demo|test|setup|fuzz [SECONDS]" >&2; exit 2 ;;
esac
