// The CPU backend: executes the layer plan with the ops of src/cpu, FP32.
#include <algorithm>
#include <cblas.h>
#include <chrono>
#include <omp.h>
#include <fmt/format.h>
#include <map>
#include <vector>

#include "ops.h"
#include "swinrt/engine.h"
#include "swinrt/error.h"
#include "swinrt/plan.h"

namespace swinrt {

namespace {

class CpuEngine final : public Engine {
 public:
  CpuEngine(const Weights& w, const EngineOptions& o)
      : Engine(w.config()), weights_(w), plan_(build_plan(w.config())), patch_w_(folded_patch_weight(w)) {
    if (o.precision != Precision::FP32 && o.precision != Precision::TF32)
      throw Error(fmt::format("precision {} is not available on the CPU backend (fp32 only; use --device cuda)",
                              precision_name(o.precision)));
    max_batch_ = std::max(1, o.max_batch);
    openblas_set_num_threads(1);  // threads come from OpenMP (src/cpu/linear.cpp)
    const Config& c = config_;
    const int64_t P2 = int64_t(c.patches_resolution()) * c.patches_resolution(), E = c.embed_dim;
    const int64_t B = max_batch_;
    x_.resize(B * P2 * E);
    t_.resize(B * P2 * E * 2);
    qkv_.resize(B * P2 * E * 3);
    att_.resize(B * P2 * E);
    hid_.resize(B * P2 * c.mlp_hidden(c.embed_dim));
    for (int s = 0; s + 1 < c.num_layers(); ++s) skips_.emplace_back(B * P2 * E >> s);
    const int64_t pixels = int64_t(c.img_size) * c.img_size;
    big1_.resize(pixels * std::max<int64_t>(E, c.num_classes));
    big2_.resize(pixels * E);
  }

  std::string device_name() const override { return fmt::format("cpu ({} threads)", omp_get_max_threads()); }

  std::vector<double> time_forward(int64_t batch, int warmup, int iterations) override {
    const int64_t S = config_.img_size;
    const std::vector<float> in = benchmark_slices(batch, config_.img_size);
    std::vector<float> out(static_cast<size_t>(batch * config_.num_classes * S * S));
    for (int i = 0; i < warmup; ++i) run(in.data(), batch, out.data());
    std::vector<double> ms;
    for (int i = 0; i < iterations; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      run(in.data(), batch, out.data());
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    return ms;
  }

  size_t memory_bytes() const override {
    size_t n = patch_w_.size() + x_.size() + t_.size() + qkv_.size() + att_.size() + hid_.size() + big1_.size() +
               big2_.size();
    for (const auto& s : skips_) n += s.size();
    return n * sizeof(float) + weights_.parameter_count() * sizeof(float);
  }
  Precision precision() const override { return Precision::FP32; }

  void run(const float* input, int64_t batch, float* logits) override {
    const int64_t S = config_.img_size, C = config_.num_classes;
    for (int64_t b0 = 0; b0 < batch; b0 += max_batch_) {
      const int n = static_cast<int>(std::min<int64_t>(max_batch_, batch - b0));
      forward(input + b0 * S * S, n, logits + b0 * C * S * S);
    }
  }

 private:
  const float* p(const std::string& name) const { return weights_.at(name).data.data(); }
  const float* p_opt(const std::string& name) const {
    auto it = weights_.tensors().find(name);
    return it == weights_.tensors().end() ? nullptr : it->second.data.data();
  }

  void forward(const float* img, int B, float* logits) {
    const Config& c = config_;
    float* x = x_.data();
    for (const Step& st : plan_) {
      const int64_t rows = int64_t(B) * st.tokens();
      const int C = st.dim;
      switch (st.op) {
        case OpKind::PatchEmbed:
          cpu::patch_embed(img, B, c.img_size, c.patch_size, patch_w_.data(), p("patch_embed.proj.bias"), C, x);
          if (c.patch_norm) cpu::layernorm(x, rows, C, p("patch_embed.norm.weight"), p("patch_embed.norm.bias"), x);
          if (c.ape) {
            const float* ape = p("absolute_pos_embed");
            for (int64_t r = 0; r < rows; ++r)
              for (int k = 0; k < C; ++k) x[r * C + k] += ape[(r % st.tokens()) * C + k];
          }
          break;
        case OpKind::SaveSkip:
          std::copy(x, x + rows * C, skips_[st.skip].data());
          break;
        case OpKind::SwinBlock: {
          float *t = t_.data(), *qkv = qkv_.data(), *att = att_.data(), *hid = hid_.data();
          cpu::layernorm(x, rows, C, p(st.param("norm1.weight")), p(st.param("norm1.bias")), t);
          cpu::linear(t, rows, C, p(st.param("attn.qkv.weight")), p_opt(st.param("attn.qkv.bias")), 3 * C, qkv,
                      cpu::Epilogue::Store);
          cpu::window_attention(qkv, B, st.res, C, st.heads, st.window, st.shift, st.scale,
                                p(st.param("attn.relative_position_bias_table")), att);
          cpu::linear(att, rows, C, p(st.param("attn.proj.weight")), p(st.param("attn.proj.bias")), C, x,
                      cpu::Epilogue::Accumulate);
          cpu::layernorm(x, rows, C, p(st.param("norm2.weight")), p(st.param("norm2.bias")), t);
          cpu::linear(t, rows, C, p(st.param("mlp.fc1.weight")), p(st.param("mlp.fc1.bias")), st.hidden, hid,
                      cpu::Epilogue::Gelu);
          cpu::linear(hid, rows, st.hidden, p(st.param("mlp.fc2.weight")), p(st.param("mlp.fc2.bias")), C, x,
                      cpu::Epilogue::Accumulate);
          break;
        }
        case OpKind::PatchMerging: {
          float* t = t_.data();
          cpu::patch_merge_gather(x, B, st.res, C, t);
          cpu::layernorm(t, rows / 4, 4 * C, p(st.param("norm.weight")), p(st.param("norm.bias")), t);
          cpu::linear(t, rows / 4, 4 * C, p(st.param("reduction.weight")), nullptr, 2 * C, x, cpu::Epilogue::Store);
          break;
        }
        case OpKind::LayerNorm:
          cpu::layernorm(x, rows, C, p(st.param("weight")), p(st.param("bias")), x);
          break;
        case OpKind::PatchExpand: {
          float* t = t_.data();
          cpu::linear(x, rows, C, p(st.param("expand.weight")), nullptr, 2 * C, t, cpu::Epilogue::Store);
          cpu::pixel_shuffle(t, B, st.res, 2, C / 2, x);
          cpu::layernorm(x, rows * 4, C / 2, p(st.param("norm.weight")), p(st.param("norm.bias")), x);
          break;
        }
        case OpKind::ConcatLinear: {
          float* t = t_.data();
          cpu::concat(x, C, skips_[st.skip].data(), C, rows, t);
          cpu::linear(t, rows, 2 * C, p(st.param("weight")), p(st.param("bias")), C, x, cpu::Epilogue::Store);
          break;
        }
        case OpKind::FinalExpand: {
          // One slice at a time: the 16x expanded tensor is the largest of the net.
          const int64_t HW = int64_t(c.img_size) * c.img_size;
          for (int b = 0; b < B; ++b) {
            cpu::linear(x + int64_t(b) * st.tokens() * C, st.tokens(), C, p("up.expand.weight"), nullptr, 16 * C,
                        big1_.data(), cpu::Epilogue::Store);
            cpu::pixel_shuffle(big1_.data(), 1, st.res, 4, C, big2_.data());
            cpu::layernorm(big2_.data(), HW, C, p("up.norm.weight"), p("up.norm.bias"), big2_.data());
            cpu::linear(big2_.data(), HW, C, p("output.weight"), nullptr, c.num_classes, big1_.data(),
                        cpu::Epilogue::Store);
            cpu::to_nchw(big1_.data(), 1, HW, c.num_classes, logits + int64_t(b) * c.num_classes * HW);
          }
          break;
        }
      }
    }
  }

  const Weights& weights_;
  std::vector<Step> plan_;
  std::vector<float> patch_w_;
  int max_batch_ = 1;
  std::vector<float> x_, t_, qkv_, att_, hid_, big1_, big2_;
  std::vector<std::vector<float>> skips_;
};

}  // namespace

std::unique_ptr<Engine> make_cpu_engine(const Weights& weights, const EngineOptions& options) {
  return std::make_unique<CpuEngine>(weights, options);
}

}  // namespace swinrt
