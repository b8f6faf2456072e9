#!/usr/bin/env bash
# swinrt developer entry point.
#   ./swinrt.sh demo    set up (if needed), build, run the main job
#   ./swinrt.sh test    set up (if needed), build, run every test (C++ and Python)
#   ./swinrt.sh setup   only install packages, the Python venv and build
#   ./swinrt.sh fuzz [SECONDS]  libFuzzer on the ONNX importer (part of `test`, 60 s there)
# Environment: SWINRT_VENV (default ~/.cache/swinrt-venv), SWINRT_BUILD (default build/release).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV=${SWINRT_VENV:-$HOME/.cache/swinrt-venv}
BUILD=${SWINRT_BUILD:-build/release}

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
  if ! "$VENV/bin/python" -c "import swinrt.model" 2>/dev/null || [ ! -x "$VENV/bin/swinrt-convert" ] ||
     [ ! -x "$VENV/bin/swinrt-export" ]; then
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
  mkdir -p "$out"
  log "main job: random-weight Swin-Unet-T on a generated 224x224 slice"
  "$VENV/bin/python" -m swinrt.demo_inputs --out "$out"
  "$BUILD/swinrt" info "$out/swin_unet_t.safetensors"
  "$BUILD/swinrt" run --weights "$out/swin_unet_t.safetensors" --input "$out/slice.npy" \
      --output "$out/labels.npy" --labels --device auto
  log "outputs in $out"
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
