#!/usr/bin/env bash
# Trains the bundled demo model (models/demo_swin_unet.safetensors) on phantom
# CT with python/swinrt/train.py; docs/MODEL_CARD.md records what came out.
#
#   OUT=DIR [STEPS=5000] ./scripts/train-demo-model.sh [more python -m swinrt.train flags]
#
# Writes $OUT/demo_swin_unet.safetensors (fp16), $OUT/metrics.json (the
# held-out volumes under the original test protocol, the run's settings and
# timings) and $OUT/train_log.txt. Meant for one GPU: about 5 minutes on an
# H100 or H200 (data ~10 s, 5000 steps of 32 slices at ~50 ms, evaluation
# ~5 s). STEPS=0 fits the steps into MINUTES instead. Runs on a CPU too, far
# slower. Needs Python ($PYTHON, default python3) with torch, numpy,
# scipy and safetensors; if safetensors is missing and .whl/ holds its wheel,
# it is installed under /tmp/swinrt-site first (the GPU machine has no network).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$ROOT/out/train-demo}
STEPS=${STEPS:-5000}
MINUTES=${MINUTES:-4}
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import safetensors" 2>/dev/null; then
  wheels=("$ROOT"/.whl/safetensors-*.whl)
  if [ -e "${wheels[0]}" ]; then
    "$PYTHON" -m pip install -q --no-index --no-deps --target /tmp/swinrt-site "${wheels[@]}"
    export PYTHONPATH="/tmp/swinrt-site:$PYTHONPATH"
  fi
fi
"$PYTHON" -c "import torch, numpy, scipy, safetensors" || {
  echo "train-demo-model.sh: $PYTHON lacks torch, numpy, scipy or safetensors" >&2; exit 1; }

mkdir -p "$OUT"
{ nvidia-smi -L 2>/dev/null || true; echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"; } \
  | tee -a "$OUT/train_log.txt"
exec "$PYTHON" -m swinrt.train --out "$OUT" --steps "$STEPS" --minutes "$MINUTES" "$@"
