// CUDA ops: the GPU twins of src/cpu/ops.h, file by file. Launchers take the
// activation dtype explicitly and dispatch to one kernel instantiation each.
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common.cuh"

namespace swinrt::cuda {

// --- linear.cu: nn.Linear through cuBLASLt (tensor cores for tf32/fp16/bf16) ---
// A chosen algorithm per GEMM key (see gemm_key) and its measured time.
struct GemmAlgo {
  cublasLtMatmulAlgo_t algo;
  double ms = 0.0;
};
using GemmAlgoTable = std::map<std::string, GemmAlgo>;

struct GemmContext {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  bool tf32 = false;  // FP32 operands: TF32 tensor cores (else strict FP32)
  // Algorithms from a plan or an autotune: used where the key matches (and
  // cuBLASLt accepts them), else the heuristic's first choice.
  const GemmAlgoTable* chosen = nullptr;
  // Autotuning (outside graph capture only): a GEMM whose key is not in the
  // table times up to 8 heuristic candidates, runs the fastest, records it.
  GemmAlgoTable* tuning = nullptr;
  // With tuning: up to this many candidates besides the heuristic's 8
  // (other tiles, stages, cluster shapes of every algorithm; `swinrt build
  // --tune-wide`), 0 for none.
  int tune_wide = 0;
  // Small batches: the fp16/bf16/tf32 GEMMs as CUTLASS's sm90 kernels
  // (gemm_sm90.cu), which wait on the device, so that the forward graph's
  // edges into them can be programmatic (backend.cu sets it with
  // SWINRT_PDL); cuBLASLt where that does not apply or for any other batch.
  bool own = false;
};
// y[M,N] (+)= x[M,K] . w[N,K]^T (+ bias[N]). `ldw` is w's row stride (K, or
// more for a column slice of a wider weight). x and w have dtype `in`; y and
// bias dtype `out`. accumulate: y += result (beta = 1). tanh_gelu: cuBLASLt's
// GELU epilogue (the tanh approximation; used for fp16/bf16 only: it departs
// from the erf form by at most 4.7e-4, at x = 2.7, under half an fp16 ulp there).
void linear(const GemmContext& g, const void* x, const void* w, int ldw, DT in, int64_t M, int K, int N,
            const void* bias, void* y, DT out, bool accumulate, cudaStream_t s, bool tanh_gelu = false, int ldx = 0);
// --- gemm_sm90.cu: linear() as a CUTLASS sm90 GEMM (TMA, wgmma) that waits on the device ---
// fp16/bf16 x and w; y in their dtype (bias of that dtype, optional GELU,
// tanh form) or FP32 (FP32 bias, y += where `accumulate`). With `tf32`, FP32
// x and w read as tf32 by the wgmma, y and bias FP32 (no GELU). Computes
// y^T = w . x^T, so that the weight rows fill the 64-row wgmma tile and the
// tokens, few at small batches, take the narrow side. False, with nothing
// launched, where it does not apply (strict FP32 operands, strides not
// multiples of 8, a build without CUTLASS), for the caller to take cuBLASLt.
bool linear_sm90(const void* x, int ldx, const void* w, int ldw, DT in, int64_t M, int K, int N, const void* bias,
                 void* y, DT out, bool accumulate, bool tanh_gelu, bool tf32, cudaStream_t s);
// Whether this build has linear_sm90's kernels (CMake found CUTLASS).
bool sm90_gemm_built();
// Whether the (mangled) kernel name is one of linear_sm90's: they wait on the device (griddepcontrol.wait).
bool is_sm90_gemm_kernel(const std::string& mangled);
// The key a GEMM's chosen algorithm is stored under: shape, operand layout
// and dtypes, epilogue.
std::string gemm_key(int64_t M, int K, int N, int ldw, DT in, DT out, bool bias, bool accumulate, bool tanh_gelu,
                     bool tf32, int ldx = 0);
// x = gelu(x), exact erf form, in place.
void gelu(void* x, DT t, int64_t n, cudaStream_t s, bool tf32 = false);  // tf32: FP32 results rounded to TF32
// x[0..n) rounded to tf32 in place (the TF32 engine's GEMM weights, once).
void round_tf32(float* x, int64_t n, cudaStream_t s);

// --- layernorm.cu ---
// How LayerNorm rows are gathered from the source tensor.
enum class Gather {
  Rows,     // row r of [rows, C]
  Merge2x2, // PatchMerging: output (Y, X) of grid `res` = cat(x0, x1, x2, x3) of a 2*res grid, C = 4 * Cin
  Shuffle,  // PatchExpand / FinalPatchExpand_X4: output (Y, X) of grid `res` = sub-pixel (Y%f, X%f) of the
            // source token (Y/f, X/f), whose channels are (p1 p2 c); `factor` = f
};
// out[r] = LN(src row r) in dtype `out_t`; with `raw` (Rows gather only),
// also src row r itself in dtype `out_t` there (the copy a SaveSkip needs,
// written while the row is read anyway). `in_t` is the source dtype. `res`
// is the output grid side (rows = B*res*res). ldo, ldr: the row strides of
// out and raw (elements; 0: C).
// tf32: out and raw rounded to TF32 (round_tf32; the TF32 path, whose
// GEMMs read them).
void layernorm(const void* src, DT in_t, int64_t rows, int C, Gather gather, int res, int factor, const float* g,
               const float* b, void* out, DT out_t, void* raw, cudaStream_t s, int64_t ldo = 0, int64_t ldr = 0,
               bool tf32 = false);
// out = (dtype) x; with cols > 0, x's rows of cols values go to rows of stride ldo. tf32 (t F32):
// rounded to tf32.
void cast(const float* x, int64_t n, void* out, DT t, cudaStream_t s, int64_t cols = 0, int64_t ldo = 0,
          bool tf32 = false);

// --- attention.cu ---
// Shifted-window attention core (see src/cpu/attention.cpp): qkv [B, res^2, 3C]
// -> out [B, res^2, C], both dtype t; bias: [heads, N, N] FP32 (the relative
// position bias already gathered).
// bias64: the same table padded to 64 x 64 a head (pad_attention_bias with
// the engine's dtype t: FP32, or fp16 for fp16/bf16), needed where
// window_attention_padded says so (the register-resident
// kernels: windows of up to 64 tokens, head dim 16, 32 or 64; FP32 without
// it takes the register-tiled kernel);
// table: that kernel's token maps and mask bits from window_table, or null
// (then each thread block builds its window's). heads_mode: where the
// 16-bit kernel takes several heads of a window a thread block (with a
// table): 0 never, 1 at large batches (the engine's default), 2 always.
// tf32: out (FP32) rounded to TF32 (the TF32 path).
void window_attention(const void* qkv, DT t, int B, int res, int C, int heads, int window, int shift, float scale,
                      const float* bias, const void* bias64, const void* table, void* out, cudaStream_t s,
                      int heads_mode = 1, bool tf32 = false);
// The token map and shift-mask bits of every window of a res x res grid
// (windows of up to 64 tokens), window_table_bytes(res, window) bytes.
size_t window_table_bytes(int res, int window);
void window_table(int res, int window, int shift, void* out, cudaStream_t s);
bool window_attention_padded(DT t, int C, int heads, int window);
// rpb [heads, N, N] -> out: 64 x 64 a head, -inf in key columns >= N =
// window^2; t F32: [heads][64][64] FP32 (the FP32 kernels); F16 or BF16:
// fp16 in the order attend_strip reads it (the 16-bit kernels), half the bytes.
void pad_attention_bias(const float* rpb, int heads, int window, DT t, void* out, cudaStream_t s);

// --- swin_block.cu ---
// A whole Swin block (LN1, qkv, shifted-window attention, proj + residual,
// LN2, fc1 + GELU, fc2 + residual) in one kernel, one thread block per window,
// for FP16/BF16 where supported (see swin_block_supported). The four GEMM
// weights come as one stream (swin_block_arrange), the rest as the weight
// image has them.
struct SwinBlockWeights {
  const float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
  const void* stream;  // qkv, proj, fc1, fc2 weights, arranged (swin_block_arrange)
  const void* bqkv;    // dtype t, or null (qkv_bias = false)
  const float* bproj;
  const void* bfc1;  // dtype t
  const float* bfc2;
  const __half* rpb64;  // the relative position bias padded (pad_attention_bias, 16-bit layout)
  const void* table;   // the windows' token maps and mask bits (window_table), or null
  bool wgmma = false;  // stream arranged for the warpgroup kernel (swin_block_arrange's answer)
  bool wide = true;    // its 16-warp form allowed where the windows are no more than the SMs
  bool narrow = true;  // its one-warpgroup form (three windows an SM) where they are more (C 96, 3 heads)
  // ... with fc1 of the next hidden chunk in flight during fc2 of this one: 0 never, 1 where the windows are at
  // least 8x the SMs (batch 17 and up at 224 x 224), 2 always.
  int narrow_pipe = 1;
  // ... in its compact layout, four windows an SM (the MLP chunk after chunk): 0 never, 1 where that takes a
  // third fewer waves of windows than three an SM (batch 7-8 and 13-16 at 224 x 224 on 132 SMs), 2 always.
  int narrow_compact = 1;
  // The 16-warp form as a pair of blocks a window, each with half the MLP: 0 never, 1 where twice the windows
  // are no more than the SMs (batch 1 at 224 x 224 on 132 SMs), 2 wherever the 16-warp form runs.
  int pair = 1;
  // The kernel asks the L2 for its weight stream and biases before its wait (SWINRT_EARLY_BLOCK=0 or
  // SWINRT_EARLY=0: after it).
  bool early = true;
  // The 16-warp forms fetch their first weight stages, token indices and constants before their wait
  // (SWINRT_BLOCK_PRELOAD=0 or SWINRT_EARLY=0: after it).
  bool preload = true;
};
bool swin_block_supported(DT t, int C, int heads, int window, int hidden);
// Bytes of a block's weight stream, and its arrangement from the qkv, proj,
// fc1 and fc2 weights ([out][in], 16-bit, as the weight image has them):
// for the warpgroup (wgmma, sm_90a) kernel where wgmma_supported() and the
// block has a window table (that kernel reads it), then true, else for the
// warp-level (mma.sync) kernel.
size_t swin_block_stream_bytes(int C);
// Where the stream keeps fc1's bias halved (FP32, 4 C values), which half_bias writes.
float* swin_block_half_bias(int C, void* stream);
// out[i] = b[i] / 2 in FP32, for i < n (b of dtype t).
void half_bias(const void* b, DT t, int n, float* out, cudaStream_t s);
bool swin_block_arrange(int C, const void* qkv, const void* proj, const void* fc1, const void* fc2, bool table,
                        void* out, cudaStream_t s);
// W [N][K] (16-bit, [out][in]) -> the wgmma B-operand stages the fused
// kernels stream: chunks of `chunk` columns, each as stages of kps 16-deep
// k-tiles of 8 x 8 core matrices (per k-tile [8-column group][k half][8 columns]
// [8 k]: leading offset 128 bytes, stride 256); 2 N K bytes.
void arrange_wgmma_stages(const void* w, int N, int K, int chunk, int kps, void* out, cudaStream_t s);
// x [B, res^2, C] FP32, updated in place. Returns the launch's profile
// label: "fused", "fused.wgmma" (8 or 16 warps a window), "fused.pair" (two
// blocks of 16 warps a window) or "fused.narrow".
// With norm_g (a LayerNorm of C following the block, as the decoder's last
// block's norm_up): where the one-warpgroup form runs, it writes that
// LayerNorm of the new rows to norm_out ([B, res^2, C], dtype t) instead of
// x, and the label ends in "+norm"; elsewhere x as ever.
const char* swin_block(float* x, DT t, int B, int res, int C, int heads, int window, int shift, float scale,
                       const SwinBlockWeights& w, cudaStream_t s, const float* norm_g = nullptr,
                       const float* norm_b = nullptr, void* norm_out = nullptr);

// --- mlp.cu ---
// A Swin block's second half, x += fc2(gelu(fc1(LN2(x)))) with GELU's tanh
// form, as one kernel (FP16/BF16, sm_90a; C 192, hidden 4C): the hidden layer
// stays in registers. x [M, C] FP32, updated in place; w: fc1, fc2 and
// attn.proj as mlp_fused_arrange lays them out (mlp_fused_weight_bytes); b1
// dtype t. With att (the attention output [M, C], dtype t) the kernel first
// does the block's x += att . W_proj^T + bp, so that x is read and written
// once for both; and with next_out too, it also writes the next block's
// LayerNorm 1 (next_g, next_b) of the new x there ([M, C], dtype t).
bool mlp_fused_supported(DT t, int C, int hidden);
size_t mlp_fused_weight_bytes(int C);
// The fewest token rows at which the kernel pays (the engine's default policy).
int64_t mlp_fused_min_rows();
void mlp_fused_arrange(int C, const void* fc1, const void* fc2, const void* proj, void* out, cudaStream_t s);
void mlp_fused(float* x, DT t, int64_t M, int C, const float* ln_g, const float* ln_b, const void* w, const void* b1,
               const float* b2, cudaStream_t s, const void* att = nullptr, const float* bp = nullptr,
               const float* next_g = nullptr, const float* next_b = nullptr, void* next_out = nullptr);

// --- swin_block_grid.cu ---
// A whole Swin block as one grid-synchronised kernel for small batches
// (FP16/BF16; C 192, 384 or 768, head dim 16 or 32, windows of up to 64
// tokens): LN1 + qkv, attention, proj + residual, LN2 + fc1 + GELU,
// fc2 + residual as phases of one launch. Weights as the weight image has them.
struct SwinBlockGridWeights {
  const float *ln1_g, *ln1_b, *ln2_g, *ln2_b;
  const void *wqkv, *wproj, *wfc1, *wfc2;  // [out][in], dtype t
  const void *bqkv, *bfc1;                 // dtype t (bqkv null without qkv bias)
  const float *bproj, *bfc2;
  const __half* rpb64;  // the relative position bias padded (pad_attention_bias, 16-bit layout)
};
bool swin_block_grid_supported(DT t, int C, int heads, int window, int hidden);
// x [B, res^2, C] FP32, updated in place; qkv, att, hid: scratch of at least
// B res^2 x 3C, C and 4C elements of dtype t (qkv_bytes in all: after the
// attention it also holds split GEMMs' partial sums).
void swin_block_grid(float* x, DT t, int B, int res, int C, int heads, int window, int shift, float scale,
                     const SwinBlockGridWeights& w, void* qkv, size_t qkv_bytes, void* att, void* hid,
                     cudaStream_t s);

// --- patch.cu ---
// Patch embedding: conv(patch, stride patch) of single-channel slices, then
// optional LayerNorm and absolute position embedding; writes x (FP32) and
// xt (dtype t, rows of stride ldt: 0 = E). w: [E, patch*patch] FP32 (channel
// repeat folded in). pairs: 4 x 4 patches of 96 channels take the kernel
// that embeds two tokens a warp step (same results; false: the general one).
void patch_embed(const float* img, int B, int img_size, int patch, const float* w, const float* bias, int E,
                 const float* ln_g, const float* ln_b, const float* ape, float* x, void* xt, DT t, cudaStream_t s,
                 int64_t ldt = 0, bool pairs = true, bool tf32 = false);
// FinalPatchExpand_X4's LayerNorm plus the 1x1 conv head, on `rows` tokens
// starting at token `row0` of the batch: e [rows, 16E] (dtype t, the expand
// output) -> logits [B, classes, 4*res, 4*res] FP32. head: [classes, E] FP32.
// frags (fp16/bf16, from final_head_prepare, or null): the head runs on
// tensor cores with the LayerNorm folded in (y = r (x.W' - mu s) + t);
// otherwise an FP32 kernel, one thread per pixel.
void final_norm_head(const void* e, DT t, int64_t row0, int64_t rows, int res, int E, const float* g,
                     const float* b, const float* head, int classes, const void* frags, float* logits,
                     cudaStream_t s);
// Bytes of the tensor-core head's fragments (0: no tensor-core head for this
// dtype, E and class count), and their preparation from gamma, beta and head.
size_t final_head_frags_bytes(DT t, int E, int classes);
void final_head_prepare(DT t, int E, int classes, const float* head, const float* g, const float* b, void* frags,
                        cudaStream_t s);
// PatchExpand (Linear C -> 2C, the 2x2 pixel shuffle, LayerNorm over C / 2)
// in one kernel for fp16/bf16 on sm_90a, C 192 (one thread block an SM
// walking tiles of 64 tokens: the engine takes it where every SM gets one):
// x [tokens, C] FP32 (rounded to t as the cast did) of a res x res grid; w
// [2C, C] (t); the normalised rows go to the left half of out's [4 tokens,
// C] concat rows (t). max_blocks: fewer thread blocks than the SMs (0: the SMs).
bool patch_expand_fused_supported(DT t, int C);
void patch_expand_fused(const float* x, DT t, int64_t tokens, int res, int C, const void* w, const float* g,
                        const float* b, void* out, cudaStream_t s, int max_blocks = 0);
// FinalPatchExpand_X4 + LayerNorm + head in one kernel for fp16/bf16 where
// the tensor-core head exists and res % 8 == 0: xt [M, E] (dtype t) ->
// logits [B, classes, 4*res, 4*res] FP32 with M = B * res^2; wexp [16E, E]
// dtype t, the expand weight; frags from final_head_prepare. wg: by
// warpgroup (wgmma) where final_expand_head_wg_supported, else the mma.sync
// kernel.
bool final_expand_head_supported(DT t, int E, int classes, int res);
bool final_expand_head_wg_supported(DT t, int E, int classes, int res);
void final_expand_head(const void* x, DT t, int64_t M, int res, int E, const void* wexp, int classes,
                       const void* frags, float* logits, cudaStream_t s, bool wg = false);
// The same in FP32 arithmetic for FP32 engines (TF32 keeps the expand GEMM +
// final_norm_head pair): embed_dim 48, 64 or 96; g, b the LayerNorm's, head
// [classes, E].
bool final_expand_head_f32_supported(int E, int classes);
void final_expand_head_f32(const float* x, int64_t M, int res, int E, const float* wexp, const float* g,
                           const float* b, const float* head, int classes, float* logits, cudaStream_t s);

// --- head.cu ---
void argmax_channels(const float* logits, int B, int C, int64_t HW, int32_t* labels, cudaStream_t s);

// --- graph_edges.cu: programmatic dependent launch inside the forward graph ---
struct ProgrammaticEdges {
  int kernel_edges = 0;           // kernel -> kernel edges seen
  int programmatic = 0;           // of those, made programmatic
  std::vector<std::string> kept;  // the kernels whose incoming edges stayed ordinary
};
// Makes the graph's kernel -> kernel edges programmatic where the dependent
// kernel waits on the device (swinrt's own kernels: graph_edges.cu). mode 0:
// none; 1: B may launch when A's blocks have all exited (or triggered); 2:
// when they have all launched.
ProgrammaticEdges make_edges_programmatic(cudaGraph_t graph, int mode);

}  // namespace swinrt::cuda
