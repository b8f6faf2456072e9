#!/usr/bin/env bash
# Builds the CUDA backend and runs every test and benchmark that needs a GPU:
# ctest (CPU and GPU labels), the PyTorch-on-GPU comparison, the bundled demo
# model's dice on CUDA (tests/python/test_demo_model.py), compute-sanitizer
# memcheck and racecheck, and the bench against PyTorch. Logs go to $LOGS.
#   PYTHON=/path/to/python-with-torch LOGS=out ./scripts/gpu-check.sh
# CUTLASS's headers (the small batches' GEMMs) come from that Python's nvidia-cutlass or from
# SWINRT_CUTLASS_DIR=/path/to/cutlass/include; the configure step says which, or that there are none.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOGS=${LOGS:-build/gpu-logs}
mkdir -p "$LOGS"
cmake -S . -B build/cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DSWINRT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DSWINRT_TESTS=ON -DSWINRT_PYTHON="$PY" > "$LOGS/configure.log" 2>&1 || { tail -30 "$LOGS/configure.log"; exit 1; }
grep "swinrt: CUTLASS" "$LOGS/configure.log"
cmake --build build/cuda -j "$(nproc)" > "$LOGS/build.log" 2>&1 || { grep -A5 error "$LOGS/build.log" | head -60; exit 1; }
ctest --test-dir build/cuda -j 8 --output-on-failure 2>&1 | tee "$LOGS/ctest.log" | tail -3
SWINRT_BIN=$PWD/build/cuda/swinrt PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m pytest tests/python/test_cuda.py \
  tests/python/test_plan.py tests/python/test_demo_model.py -q -s -rs 2>&1 |
  tee "$LOGS/pytest_cuda.log" | grep -E "swinrt max|tuned plan|slices/s| mean |passed|failed|SKIPPED"
compute-sanitizer --tool memcheck build/cuda/tests/swinrt_gpu_tests \
  --gtest_filter='*fp16*:*bf16*:*tiny_fp32*:Cuda.Threads*:Cuda.FusedBlock*:Cuda.GridBlock*:Cuda.VectorLayerNorm*:Cuda.TensorCoreHead*:Cuda.FusedFinalHead*:Cuda.Wgmma*:Cuda.Fp32Attention*:Cuda.FusedMlp*:Cuda.PatchEmbed*:Cuda.FusedPatchExpand*:Cuda.NarrowBlock*:Cuda.AttentionHeads*:Cuda.MlpProj*:*hd48*:*hd64*' > "$LOGS/memcheck.log" 2>&1
compute-sanitizer --tool racecheck build/cuda/tests/swinrt_gpu_tests --gtest_filter='*w8_fp16*:*tiny_fp32*:*hd64_fp32*' \
  > "$LOGS/racecheck.log" 2>&1
# The fused MLP (with the block's proj and the next block's LayerNorm 1) runs only at batch 15 and up by
# default: racecheck it at batch 2, every other fused block op by op (their kernels are racechecked above).
SWINRT_FUSED_MLP=1 SWINRT_FUSED_BLOCK=0 compute-sanitizer --tool racecheck build/cuda/swinrt bench --random swin-t \
  --device cuda --precision fp16 --batch 2 --iterations 1 --warmup 1 > "$LOGS/racecheck_mlp.log" 2>&1
# Swin-T's own kernels: the wgmma head of embed_dim 96 and the fused PatchExpand of 192 channels (forced at
# batch 2); at batch 3 the one-warpgroup 96-channel block (its 192 windows are more than an H100's SMs) and
# the attention's head-group kernel (forced).
SWINRT_EXPAND_FUSED=1 compute-sanitizer --tool racecheck build/cuda/swinrt bench --random swin-t --device cuda \
  --precision fp16 --batch 2 --iterations 1 --warmup 1 > "$LOGS/racecheck_swin_t.log" 2>&1
SWINRT_ATTN_HEADS=1 compute-sanitizer --tool racecheck build/cuda/swinrt bench --random swin-t --device cuda \
  --precision fp16 --batch 3 --iterations 1 --warmup 1 > "$LOGS/racecheck_narrow.log" 2>&1
grep -h SUMMARY "$LOGS/memcheck.log" "$LOGS/racecheck.log" "$LOGS/racecheck_mlp.log" "$LOGS/racecheck_swin_t.log" \
  "$LOGS/racecheck_narrow.log"
# SKIP_BENCH=1 stops after the tests and sanitizers.
[ "${SKIP_BENCH:-0}" = 1 ] && exit 0
SWINRT_PYTHON=$PY build/cuda/swinrt bench --random swin-t --device cuda --precision fp32,tf32,fp16,bf16 \
  --batch 1,32,128 --compare --compare-modes eager,graph --json "$LOGS/bench.json" 2>&1 | tee "$LOGS/bench.log" |
  grep -E "^(prec|fp|tf|bf)"
SWINRT_PYTHON=$PY build/cuda/swinrt bench --random swin-t --device cuda --precision fp16,fp32,tf32 --batch 1,128 --compare \
  --compare-modes compile 2>&1 | tee "$LOGS/bench_compile.log" | grep -E "^(prec|fp|tf|bf)"

# Plans: Swin-Unet-T built with GEMM autotuning (the build prints heuristic vs
# tuned forward time and the plan's load time), then the plan against the
# weights in one bench run per precision. SKIP_PLANS=1 stops before them.
[ "${SKIP_PLANS:-0}" = 1 ] && exit 0
PLANS=build/cuda/plans
PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m swinrt.demo_inputs --out "$PLANS" > /dev/null
for p in fp16 fp32; do
  build/cuda/swinrt build --weights "$PLANS/swin_unet_t.safetensors" -o "$PLANS/t_$p.plan" --precision $p \
    --max-batch 128 2>&1 | tee "$LOGS/build_$p.log"
  build/cuda/swinrt info "$PLANS/t_$p.plan" | grep "loaded" | tee -a "$LOGS/build_$p.log"
  for src in "--weights $PLANS/swin_unet_t.safetensors --precision $p" "--plan $PLANS/t_$p.plan"; do
    build/cuda/swinrt bench $src --device cuda --batch 1,32,128 2>&1 | tee -a "$LOGS/bench_plan_$p.log" |
      grep -E "^(prec|fp|tf|bf)"
  done
done
