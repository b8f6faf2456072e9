// Swin-Unet recognition on an ONNX graph (include/swinrt/onnx.h).
//
// The recogniser walks the residual stream from the graph input as the
// original forward() runs: patch embedding, then per encoder stage its Swin
// blocks and PatchMerging, the bottleneck norm, the decoder (PatchExpand,
// concat with the skip, concat_back_dim, blocks) and the final x4 expansion and
// 1x1 output Conv. Between two parametric ops it passes only the ops that the
// legacy and dynamo exporters and onnxsim/onnxslim put there (reshapes,
// transposes, the slices of torch.roll, ...), so anything else stops the walk
// and is reported with the node that was expected. Weights are constants
// (initializers, Constant nodes, or a Transpose/Reshape/Gather of them); a
// relative position bias that an exporter folded into a [heads, N, N] tensor
// is mapped back onto its table through relative_position_index, and checked
// to be one. The shift masks are compared with the ones the config implies.
#include "swinrt/onnx.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fstream>
#include <functional>
#include <set>

#include "onnx_graph.h"
#include "swinrt/error.h"
#include "swinrt/plan.h"

namespace swinrt {

namespace {

using onnx_import::Const;
using onnx_import::Graph;
using onnx_import::Node;
using OpSet = std::set<std::string>;

// Ops allowed between two parametric ops, by region.
const OpSet kLayout{"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"};
const OpSet kLayoutRoll{"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Slice", "Concat"};
const OpSet kAttention{"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Gather", "Split",
                       "Slice",   "Mul",       "Div",     "MatMul",  "Add",       "Softmax",  "Cast"};
const OpSet kGelu{"Div", "Mul", "Add", "Erf", "Gelu", "Identity", "Cast", "Reshape", "Flatten"};
const OpSet kInput{"Expand", "Tile", "Identity", "Cast", "Concat", "Reshape", "ConstantOfShape"};
const OpSet kMerge{"Reshape", "Slice", "Concat", "Identity"};
const OpSet kLnStart{"LayerNormalization", "ReduceMean", "Sub"};

struct LayerNorm {
  std::string out;
  Tensor weight, bias;
  std::set<const Node*> nodes;  // the nodes that read the input
  const Node* last = nullptr;
};

struct Linear {
  std::string out;
  Tensor weight;  // [out, in], as nn.Linear
  std::optional<Tensor> bias;
  const Node* last = nullptr;
};

struct BlockInfo {
  std::string name;
  int stage = 0, window = 0, heads = 0, hidden = 0;
  float scale = 0;
  bool qkv_bias = false;
};

struct Hit {
  const Node* node;
  std::string via;  // the value through which the walk reached it
};

struct Walk {
  std::vector<Hit> hits;
  const Node* unexpected = nullptr;
  std::vector<const Node*> visited;
};

Tensor tensor_of(const Const& c, std::vector<int64_t> shape) {
  Tensor t;
  t.shape = std::move(shape);
  t.data = c.f;
  return t;
}

std::string shape_of(const Const& c) { return shape_str(c.shape); }

// [nW, N, N] mask of the original's SwinTransformerBlock for a res x res grid.
std::vector<float> shift_mask(int res, int w, int shift) {
  std::vector<int> region(size_t(res) * res);
  auto band = [&](int v) { return v < res - w ? 0 : v < res - shift ? 1 : 2; };
  for (int y = 0; y < res; ++y)
    for (int x = 0; x < res; ++x) region[size_t(y) * res + x] = band(y) * 3 + band(x);
  const int nw = res / w, N = w * w;
  std::vector<float> mask(size_t(nw) * nw * N * N);
  for (int wy = 0; wy < nw; ++wy)
    for (int wx = 0; wx < nw; ++wx) {
      float* m = mask.data() + size_t(wy * nw + wx) * N * N;
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
          const int ri = region[size_t(wy * w + i / w) * res + wx * w + i % w];
          const int rj = region[size_t(wy * w + j / w) * res + wx * w + j % w];
          m[i * N + j] = ri == rj ? 0.f : -100.f;
        }
    }
  return mask;
}

class Recognizer {
 public:
  explicit Recognizer(const Graph& g) : g_(g) {}

  Weights run() {
    patch_embed();
    encoder();
    decoder();
    return assemble();
  }

 private:
  const Graph& g_;
  std::map<std::string, Tensor> t_;
  Config c_;
  std::vector<std::string> skips_;
  std::vector<BlockInfo> blocks_;
  int P_ = 0;  // patch grid side

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(fmt::format("{}: not a Swin-Unet graph: {}", g_.where(), what));
  }

  std::string after(const std::string& value) const {
    const Node* n = g_.producer_of(value);
    return n ? fmt::format("after {}", n->label()) : fmt::format("after the graph input '{}'", value);
  }

  void put(const std::string& name, Tensor t) { t_[name] = std::move(t); }

  // --- graph walking --------------------------------------------------------

  // Breadth-first from `from` through ops in `pass`, stopping at nodes for
  // which `stop` holds; the first node that neither passes nor stops is kept.
  Walk walk(const std::string& from, const OpSet& pass, const std::function<bool(const Node&)>& stop) const {
    Walk w;
    std::set<const Node*> seen;
    std::deque<std::string> queue{from};
    std::set<std::string> queued{from};
    while (!queue.empty()) {
      const std::string v = queue.front();
      queue.pop_front();
      for (const Node* n : g_.consumers(v)) {
        if (!seen.insert(n).second) continue;
        if (stop(*n)) {
          w.hits.push_back({n, v});
        } else if (pass.count(n->op) && (n->domain.empty() || n->domain == "ai.onnx")) {
          w.visited.push_back(n);
          for (const auto& o : n->out)
            if (!o.empty() && queued.insert(o).second) queue.push_back(o);
        } else if (!w.unexpected) {
          w.unexpected = n;
        }
      }
    }
    return w;
  }

  // The single node a walk must find; `what` says what was expected.
  Hit one(const Walk& w, const std::string& where, const std::string& what, const std::string& from) const {
    if (w.unexpected) {
      if (w.unexpected->op == "Tanh" || (w.unexpected->op == "Gelu" && w.unexpected->attr_s("approximate", "") == "tanh"))
        fail(fmt::format("{}: {} is the tanh approximation of GELU; the original uses the exact (erf) GELU", where,
                         w.unexpected->label()));
      fail(fmt::format("{}: expected {} {}, found {}", where, what, after(from), w.unexpected->label()));
    }
    if (w.hits.empty()) fail(fmt::format("{}: expected {} {}, but the path ends there", where, what, after(from)));
    if (w.hits.size() > 1) {
      std::vector<std::string> labels;
      for (const auto& h : w.hits) labels.push_back(h.node->label());
      fail(fmt::format("{}: expected one {} {}, found {}: {}", where, what, after(from), w.hits.size(),
                       fmt::join(labels, ", ")));
    }
    return w.hits[0];
  }

  const Const* float_const(const std::string& v) const {
    const Const* c = g_.constant(v);
    return c && c->is_float ? c : nullptr;
  }

  // The other input of a binary node, given one of them.
  static const std::string& other(const Node& n, const std::string& v) { return n.input(0) == v ? n.input(1) : n.input(0); }

  // An elementwise binary node with one activation input and one constant
  // input: the constant (nullptr otherwise); `act` receives the activation.
  const Const* static_operand(const Node& n, std::string* act = nullptr) const {
    if (n.in.size() != 2) return nullptr;
    for (int k = 0; k < 2; ++k)
      if (g_.is_activation(n.input(k)) && !g_.is_activation(n.input(1 - k))) {
        if (act) *act = n.input(k);
        return float_const(n.input(1 - k));
      }
    return nullptr;
  }

  bool is_linear(const Node& n) const {
    if (n.op != "MatMul" && n.op != "Gemm") return false;
    const Const* w = float_const(n.input(1));
    return w && w->shape.size() == 2 && g_.is_activation(n.input(0));
  }

  std::vector<const Node*> others(const std::string& x, const std::set<const Node*>& used) const {
    std::vector<const Node*> r;
    for (const Node* n : g_.consumers(x))
      if (!used.count(n)) r.push_back(n);
    return r;
  }

  // --- parametric ops -------------------------------------------------------

  Linear linear(const Node& n, const std::string& name, bool bias_allowed, int64_t in_f, int64_t out_f) {
    const Const& b = *float_const(n.input(1));
    Linear l;
    l.last = &n;
    int64_t K = b.shape[0], N = b.shape[1];
    bool transposed = false;  // b is [out, in]
    if (n.op == "Gemm") {
      if (n.attr_i("transA", 0) != 0 || n.attr_f("alpha", 1.f) != 1.f || n.attr_f("beta", 1.f) != 1.f)
        fail(fmt::format("{}: {} has transA, alpha or beta other than a plain x W + b", name, n.label()));
      transposed = n.attr_i("transB", 0) != 0;
      if (transposed) std::swap(K, N);
    }
    if (K != in_f || N != out_f)
      fail(fmt::format("{}: {} has a weight of shape {}, expected {} in and {} out features", name, n.label(),
                       shape_of(b), in_f, out_f));
    l.weight.shape = {N, K};
    l.weight.data.resize(size_t(N * K));
    for (int64_t o = 0; o < N; ++o)
      for (int64_t i = 0; i < K; ++i) l.weight.data[size_t(o * K + i)] = transposed ? b.f[size_t(o * K + i)] : b.f[size_t(i * N + o)];
    l.out = n.out.empty() ? std::string() : n.out[0];
    const Const* bias = nullptr;
    if (n.op == "Gemm" && !n.input(2).empty()) {
      bias = float_const(n.input(2));
      if (!bias) fail(fmt::format("{}: {} has a bias that is not a constant", name, n.label()));
    } else if (auto cs = g_.consumers(l.out); cs.size() == 1 && cs[0]->op == "Add") {
      const Const* c = static_operand(*cs[0]);
      if (c && c->numel() == N && (c->shape.empty() || c->shape.back() == N)) {
        bias = c;
        l.out = cs[0]->out.empty() ? std::string() : cs[0]->out[0];
        l.last = cs[0];
      }
    }
    if (bias) {
      if (!bias_allowed) fail(fmt::format("{}: {} adds a bias; the original layer has none", name, n.label()));
      if (bias->numel() != N) fail(fmt::format("{}: the bias of {} has shape {}, expected [{}]", name, n.label(), shape_of(*bias), N));
      l.bias = tensor_of(*bias, {N});
    }
    if (l.out.empty()) fail(fmt::format("{}: {} has no output", name, n.label()));
    // A 3-D Linear that onnxsim turned into Reshape -> Gemm -> Reshape: the
    // layer's output is the reshaped one.
    for (int guard = 0; guard < 4; ++guard) {
      auto cs = g_.consumers(l.out);
      if (cs.size() != 1 || (cs[0]->op != "Reshape" && cs[0]->op != "Identity") || cs[0]->out.empty()) break;
      if (n.op != "Gemm" && cs[0]->op == "Reshape") break;
      l.out = cs[0]->out[0];
      l.last = cs[0];
    }
    return l;
  }

  Linear linear_after(const std::string& from, const OpSet& pass, const std::string& name, bool bias_allowed,
                      int64_t in_f, int64_t out_f) {
    const Walk w = walk(from, pass, [&](const Node& n) { return is_linear(n); });
    const Hit h = one(w, name, fmt::format("a Linear {}->{} (MatMul or Gemm with a constant weight)", in_f, out_f), from);
    return linear(*h.node, name, bias_allowed, in_f, out_f);
  }

  void put_linear(const std::string& name, const Linear& l, bool has_bias) {
    put(name + ".weight", l.weight);
    if (has_bias) put(name + ".bias", l.bias ? *l.bias : Tensor{{l.weight.shape[0]}, std::vector<float>(size_t(l.weight.shape[0]), 0.f)});
  }

  static bool axes_last(const Node& n, const Const* axes_input) {
    std::vector<int64_t> axes;
    if (const auto* a = n.attr("axes")) axes = a->ints;
    else if (axes_input && !axes_input->is_float) axes = axes_input->i;
    return axes.size() == 1 && (axes[0] == -1 || axes[0] == 2);
  }

  // A LayerNorm over the last axis reading `x`: LayerNormalization, or the
  // decomposition (x - mean) / sqrt(var + eps) * gamma + beta.
  std::optional<LayerNorm> layernorm(const std::string& x) const {
    for (const Node* n : g_.consumers(x)) {
      if (n->op == "LayerNormalization" && n->input(0) == x && !n->out.empty()) {
        const int64_t axis = n->attr_i("axis", -1);
        const Const* gamma = float_const(n->input(1));
        const Const* beta = n->input(2).empty() ? nullptr : float_const(n->input(2));
        if ((axis != -1 && axis != 2) || !gamma || (!n->input(2).empty() && !beta)) continue;
        LayerNorm ln;
        ln.out = n->out[0];
        ln.weight = tensor_of(*gamma, {gamma->numel()});
        ln.bias = beta ? tensor_of(*beta, {beta->numel()}) : Tensor{{gamma->numel()}, std::vector<float>(gamma->f.size(), 0.f)};
        check_eps(n->attr_f("epsilon", 1e-5f), *n);
        ln.nodes = {n};
        ln.last = n;
        return ln;
      }
      if (n->op == "ReduceMean" && n->input(0) == x && !n->out.empty() && axes_last(*n, g_.constant(n->input(1)))) {
        const std::string& mean = n->out[0];
        for (const Node* sub : g_.consumers(mean)) {
          if (sub->op != "Sub" || sub->input(0) != x || sub->input(1) != mean || sub->out.empty()) continue;
          if (auto ln = decomposed(*n, *sub)) return ln;
        }
      }
    }
    return std::nullopt;
  }

  void check_eps(float eps, const Node& n) const {
    if (std::abs(eps - 1e-5f) > 1e-9f)
      fail(fmt::format("{} has epsilon {}; the original LayerNorm uses 1e-5", n.label(), eps));
  }

  std::optional<LayerNorm> decomposed(const Node& mean, const Node& sub) const {
    const std::string& d = sub.out[0];
    const Node* div = nullptr;
    for (const Node* n : g_.consumers(d))
      if (n->op == "Div" && n->input(0) == d) div = n;
    if (!div || div->out.empty()) return std::nullopt;
    // Divisor: Sqrt(Add(ReduceMean(Pow(d, 2)), eps)).
    const Node* sq = g_.producer_of(div->input(1));
    const Node* add = sq && sq->op == "Sqrt" ? g_.producer_of(sq->input(0)) : nullptr;
    std::string var;
    const Const* eps = add && add->op == "Add" ? static_operand(*add, &var) : nullptr;
    const Node* rm = eps ? g_.producer_of(var) : nullptr;
    const Node* pw = rm && rm->op == "ReduceMean" ? g_.producer_of(rm->input(0)) : nullptr;
    if (!pw || eps->numel() != 1) return std::nullopt;
    const bool square = (pw->op == "Pow" && pw->input(0) == d && float_const(pw->input(1)) &&
                         float_const(pw->input(1))->numel() == 1 && float_const(pw->input(1))->f[0] == 2.f) ||
                        (pw->op == "Mul" && pw->input(0) == d && pw->input(1) == d);
    if (!square) return std::nullopt;
    check_eps(eps->f[0], *add);
    // * gamma + beta
    auto cs = g_.consumers(div->out[0]);
    if (cs.size() != 1 || cs[0]->op != "Mul" || cs[0]->out.empty()) return std::nullopt;
    const Node* mul = cs[0];
    const Const* gamma = static_operand(*mul);
    auto cs2 = g_.consumers(mul->out[0]);
    if (!gamma || cs2.size() != 1 || cs2[0]->op != "Add" || cs2[0]->out.empty()) return std::nullopt;
    const Const* beta = static_operand(*cs2[0]);
    if (!beta || beta->numel() != gamma->numel()) return std::nullopt;
    LayerNorm ln;
    ln.out = cs2[0]->out[0];
    ln.weight = tensor_of(*gamma, {gamma->numel()});
    ln.bias = tensor_of(*beta, {beta->numel()});
    ln.nodes = {&mean, &sub};
    ln.last = cs2[0];
    return ln;
  }

  LayerNorm layernorm_at(const std::string& x, const std::string& name, int64_t width) const {
    auto ln = layernorm(x);
    if (!ln) {
      std::vector<std::string> labels;
      for (const Node* n : g_.consumers(x)) labels.push_back(n->label());
      fail(fmt::format("{}: expected a LayerNorm (LayerNormalization, or ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add) {}, found {}",
                       name, after(x), labels.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(labels, ", "))));
    }
    if (ln->weight.numel() != width)
      fail(fmt::format("{}: the LayerNorm {} normalizes {} channels, expected {}", name, ln->last->label(),
                       ln->weight.numel(), width));
    return *ln;
  }

  // The LayerNorm reached from `from` through `pass` ops.
  LayerNorm layernorm_after(const std::string& from, const OpSet& pass, const std::string& name, int64_t width) const {
    const Walk w = walk(from, pass, [](const Node& n) { return kLnStart.count(n.op) > 0; });
    if (w.unexpected || w.hits.empty()) one(w, name, "a LayerNorm", from);
    for (const auto& h : w.hits)
      if (h.via != w.hits[0].via) one(w, name, "a LayerNorm", from);
    return layernorm_at(w.hits[0].via, name, width);
  }

  void put_norm(const std::string& name, const LayerNorm& ln) {
    put(name + ".weight", ln.weight);
    put(name + ".bias", ln.bias);
  }

  // --- the model, in forward order ------------------------------------------

  void patch_embed() {
    const auto& ins = g_.inputs();
    if (ins.size() != 1)
      fail(fmt::format("expected one graph input (the image batch), found {}", ins.size()));
    const auto& in = ins[0];
    if (!in.has_shape || in.dims.size() != 4)
      fail(fmt::format("the graph input '{}' must be a 4-D image batch [B, C, H, W]", in.name));
    if (in.dims[2] <= 0 || in.dims[2] != in.dims[3])
      fail(fmt::format("the graph input '{}' must have a static square spatial size, found {}x{}", in.name,
                       in.dims[2], in.dims[3]));
    const Walk w = walk(in.name, kInput, [](const Node& n) { return n.op == "Conv"; });
    const Node& conv = *one(w, "patch_embed", "the patch-embedding Conv", in.name).node;
    const Const* wt = float_const(conv.input(1));
    if (!wt || wt->shape.size() != 4 || wt->shape[2] != wt->shape[3])
      fail(fmt::format("patch_embed: {} must have a constant [E, C, p, p] weight", conv.label()));
    const int64_t E = wt->shape[0], p = wt->shape[2];
    auto ints = [&](const char* key, int64_t fill, size_t n) {
      const auto* a = conv.attr(key);
      return a ? a->ints : std::vector<int64_t>(n, fill);
    };
    if (ints("strides", 1, 2) != std::vector<int64_t>{p, p} || ints("dilations", 1, 2) != std::vector<int64_t>{1, 1} ||
        ints("pads", 0, 4) != std::vector<int64_t>(4, 0) || conv.attr_i("group", 1) != 1)
      fail(fmt::format("patch_embed: {} must be a {}x{} convolution with stride {}, no padding", conv.label(), p, p, p));
    if (in.dims[2] % p) fail(fmt::format("patch_embed: image size {} is not a multiple of the patch size {}", in.dims[2], p));
    c_.img_size = int(in.dims[2]);
    c_.patch_size = int(p);
    c_.in_chans = int(wt->shape[1]);
    c_.embed_dim = int(E);
    P_ = int(in.dims[2] / p);
    put("patch_embed.proj.weight", tensor_of(*wt, wt->shape));
    const Const* b = conv.input(2).empty() ? nullptr : float_const(conv.input(2));
    if (!conv.input(2).empty() && (!b || b->numel() != E))
      fail(fmt::format("patch_embed: the bias of {} must be a constant [{}]", conv.label(), E));
    put("patch_embed.proj.bias", b ? tensor_of(*b, {E}) : Tensor{{E}, std::vector<float>(size_t(E), 0.f)});
    if (conv.out.empty()) fail(fmt::format("patch_embed: {} has no output", conv.label()));

    // Flatten to tokens, then the optional LayerNorm and absolute position embedding.
    const Walk f = walk(conv.out[0], kLayout, [](const Node& n) { return !kLayout.count(n.op); });
    if (f.hits.empty()) fail(fmt::format("patch_embed: the path ends {}", after(conv.out[0])));
    std::string x = f.hits[0].via;
    for (const auto& h : f.hits)
      if (h.via != x) fail(fmt::format("patch_embed: the tokens {} branch off", after(conv.out[0])));
    c_.patch_norm = false;
    if (auto ln = layernorm(x); ln && others(x, ln->nodes).empty()) {
      if (ln->weight.numel() != E) fail(fmt::format("patch_embed.norm: {} normalizes {} channels, expected {}", ln->last->label(), ln->weight.numel(), E));
      c_.patch_norm = true;
      put_norm("patch_embed.norm", *ln);
      x = ln->out;
    }
    c_.ape = false;
    if (auto cs = g_.consumers(x); cs.size() == 1 && cs[0]->op == "Add" && !cs[0]->out.empty()) {
      const Const* ape = static_operand(*cs[0]);
      if (!ape || ape->numel() != int64_t(P_) * P_ * E)
        fail(fmt::format("patch_embed: expected the absolute position embedding [1, {}, {}] at {}", P_ * P_, E,
                         cs[0]->label()));
      c_.ape = true;
      put("absolute_pos_embed", tensor_of(*ape, {1, int64_t(P_) * P_, E}));
      x = cs[0]->out[0];
    }
    x_ = x;
  }

  std::string x_;                // the residual stream
  std::set<std::string> stream_;  // its values at block inputs, to refuse cycles

  bool block_starts(const std::string& x) const {
    auto ln = layernorm(x);
    if (!ln) return false;
    for (const Node* n : others(x, ln->nodes))
      if (n->op == "Add") return true;
    return false;
  }

  void encoder() {
    const int64_t E = c_.embed_dim;
    c_.depths.clear();
    for (int s = 0;; ++s) {
      if (s >= 6) fail("more than 6 encoder stages");
      const int64_t d = E << s;
      const int res = P_ >> s;
      if (res <= 0 || (P_ % (1 << s)) != 0) fail(fmt::format("layers.{}: the {}x{} patch grid cannot be halved {} times", s, P_, P_, s));
      skips_.push_back(x_);
      int b = 0;
      while (block_starts(x_)) {
        x_ = block(x_, fmt::format("layers.{}.blocks.{}", s, b), s, res, d, b);
        ++b;
      }
      if (b == 0) {
        std::vector<std::string> labels;
        for (const Node* n : g_.consumers(x_)) labels.push_back(n->label());
        fail(fmt::format("layers.{}: expected a Swin block (LayerNorm, window attention, residual Add) {}, found {}", s,
                         after(x_), labels.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(labels, ", "))));
      }
      c_.depths.push_back(b);
      if (auto ln = layernorm(x_); ln && others(x_, ln->nodes).empty()) {  // the bottleneck norm: last stage
        if (ln->weight.numel() != d) fail(fmt::format("norm: {} normalizes {} channels, expected {}", ln->last->label(), ln->weight.numel(), d));
        put_norm("norm", *ln);
        x_ = ln->out;
        return;
      }
      // PatchMerging: 2x2 strided slices, concat, LayerNorm(4C), Linear(4C, 2C).
      const std::string name = fmt::format("layers.{}.downsample", s);
      const Walk w = walk(x_, kMerge, [](const Node& n) { return kLnStart.count(n.op) > 0; });
      if (w.unexpected || w.hits.empty()) one(w, name, "PatchMerging (2x2 strided Slices, Concat, LayerNorm)", x_);
      check_merge(w, name);
      const LayerNorm ln = layernorm_at(w.hits[0].via, name + ".norm", 4 * d);
      put_norm(name + ".norm", ln);
      const Linear red = linear_after(ln.out, kLayout, name + ".reduction", false, 4 * d, 2 * d);
      put_linear(name + ".reduction", red, false);
      x_ = red.out;
    }
  }

  // The Concat of PatchMerging must take x[:, 0::2, 0::2], x[:, 1::2, 0::2],
  // x[:, 0::2, 1::2], x[:, 1::2, 1::2] of one [B, H, W, C] tensor, in that order.
  void check_merge(const Walk& w, const std::string& name) const {
    const Node* cat = nullptr;
    for (const Node* n : w.visited)
      if (n->op == "Concat") cat = cat ? nullptr : n;
    const std::string expect = "x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2] concatenated";
    if (!cat || cat->in.size() != 4) fail(fmt::format("{}: expected one Concat of {} {}", name, expect, after(x_)));
    std::string source;
    for (int k = 0; k < 4; ++k) {
      std::map<int64_t, std::pair<int64_t, int64_t>> start_step;  // axis -> (start, step)
      std::string v = cat->input(size_t(k));
      const Node* n = g_.producer_of(v);
      for (int guard = 0; n && n->op == "Slice" && guard < 8; ++guard, n = g_.producer_of(v)) {
        std::vector<int64_t> starts, axes, steps;
        if (n->in.size() >= 3) {
          const Const* st = g_.constant(n->input(1));
          const Const* ax = n->input(3).empty() ? nullptr : g_.constant(n->input(3));
          const Const* sp = n->input(4).empty() ? nullptr : g_.constant(n->input(4));
          if (!st || st->is_float || (!n->input(3).empty() && (!ax || ax->is_float)) || (!n->input(4).empty() && (!sp || sp->is_float)))
            fail(fmt::format("{}: {} has non-constant bounds", name, n->label()));
          starts = st->i;
          if (ax) axes = ax->i;
          if (sp) steps = sp->i;
        } else {  // opset < 10: attributes
          if (const auto* a = n->attr("starts")) starts = a->ints;
          if (const auto* a = n->attr("axes")) axes = a->ints;
        }
        if (axes.empty())
          for (size_t a = 0; a < starts.size(); ++a) axes.push_back(int64_t(a));
        if (steps.empty()) steps.assign(starts.size(), 1);
        if (axes.size() != starts.size() || steps.size() != starts.size())
          fail(fmt::format("{}: {} has inconsistent starts/axes/steps", name, n->label()));
        for (size_t a = 0; a < axes.size(); ++a) start_step[axes[a] < 0 ? axes[a] + 4 : axes[a]] = {starts[a], steps[a]};
        v = n->input(0);
      }
      if (k == 0) source = v;
      const int64_t h = k % 2, wdx = k / 2;  // expected starts along H and W
      const auto sh = start_step.count(1) ? start_step[1] : std::pair<int64_t, int64_t>{-1, 0};
      const auto sw = start_step.count(2) ? start_step[2] : std::pair<int64_t, int64_t>{-1, 0};
      if (v != source || sh != std::pair<int64_t, int64_t>{h, 2} || sw != std::pair<int64_t, int64_t>{wdx, 2})
        fail(fmt::format("{}: input {} of {} is not x[:, {}::2, {}::2] (expected {})", name, k, cat->label(), h, wdx, expect));
    }
    const int64_t axis = cat->attr_i("axis", 0);
    if (axis != -1 && axis != 3) fail(fmt::format("{}: {} must concatenate along the channels", name, cat->label()));
  }

  void decoder() {
    const int L = int(c_.depths.size());
    const int64_t E = c_.embed_dim;
    {
      const int64_t d = E << (L - 1);
      const Linear ex = linear_after(x_, kLayout, "layers_up.0.expand", false, d, 2 * d);
      put_linear("layers_up.0.expand", ex, false);
      const LayerNorm ln = layernorm_after(ex.out, kLayout, "layers_up.0.norm", d / 2);
      put_norm("layers_up.0.norm", ln);
      x_ = ln.out;
    }
    for (int i = 1; i < L; ++i) {
      const int s = L - 1 - i;
      const int64_t d = E << s;
      const int res = P_ >> s;
      const std::string up = fmt::format("layers_up.{}", i);
      // cat([x, skip of stage s], -1) -> concat_back_dim.i
      const Walk w = walk(x_, {"Identity"}, [](const Node& n) { return n.op == "Concat"; });
      const Hit h = one(w, up, fmt::format("the Concat with the skip of encoder stage {}", s), x_);
      auto resolve = [&](std::string v) {
        for (const Node* n = g_.producer_of(v); n && n->op == "Identity"; n = g_.producer_of(v)) v = n->input(0);
        return v;
      };
      const int64_t axis = h.node->attr_i("axis", 0);
      if (h.node->in.size() != 2 || h.node->input(0) != h.via || resolve(h.node->input(1)) != skips_[size_t(s)] ||
          (axis != -1 && axis != 2) || h.node->out.empty())
        fail(fmt::format("{}: {} must concatenate [x, the input of encoder stage {}] along the channels", up,
                         h.node->label(), s));
      const std::string cb = fmt::format("concat_back_dim.{}", i);
      const Linear lin = linear_after(h.node->out[0], kLayout, cb, true, 2 * d, d);
      put_linear(cb, lin, true);
      x_ = lin.out;
      int b = 0;
      while (block_starts(x_)) {
        x_ = block(x_, fmt::format("{}.blocks.{}", up, b), s, res, d, b);
        ++b;
      }
      if (b != c_.depths[size_t(s)])
        fail(fmt::format("{}: {} Swin blocks, but encoder stage {} has {} (the decoder mirrors the encoder)", up, b, s,
                         c_.depths[size_t(s)]));
      if (i < L - 1) {
        const Linear ex = linear_after(x_, kLayout, up + ".upsample.expand", false, d, 2 * d);
        put_linear(up + ".upsample.expand", ex, false);
        const LayerNorm ln = layernorm_after(ex.out, kLayout, up + ".upsample.norm", d / 2);
        put_norm(up + ".upsample.norm", ln);
        x_ = ln.out;
      } else {
        const LayerNorm ln = layernorm_at(x_, "norm_up", E);
        put_norm("norm_up", ln);
        x_ = ln.out;
      }
    }
    // FinalPatchExpand_X4 and the 1x1 output Conv.
    const Linear ex = linear_after(x_, kLayout, "up.expand", false, E, 16 * E);
    put_linear("up.expand", ex, false);
    const LayerNorm ln = layernorm_after(ex.out, kLayout, "up.norm", E);
    put_norm("up.norm", ln);
    const Walk w = walk(ln.out, kLayout, [](const Node& n) { return n.op == "Conv"; });
    const Node& conv = *one(w, "output", "the 1x1 output Conv", ln.out).node;
    const Const* wt = float_const(conv.input(1));
    if (!wt || wt->shape.size() != 4 || wt->shape[1] != E || wt->shape[2] != 1 || wt->shape[3] != 1)
      fail(fmt::format("output: {} must have a constant [classes, {}, 1, 1] weight", conv.label(), E));
    if (!conv.input(2).empty()) {  // an exporter may add an explicit zero bias
      const Const* b = float_const(conv.input(2));
      if (!b) b = data_source(conv.input(2), {"Expand", "CastLike", "Cast", "Identity", "Reshape"});
      if (!b || std::any_of(b->f.begin(), b->f.end(), [](float v) { return v != 0.f; }))
        fail(fmt::format("output: {} has a bias; the original output Conv has none", conv.label()));
    }
    c_.num_classes = int(wt->shape[0]);
    put("output.weight", tensor_of(*wt, wt->shape));
    std::string out = conv.out.empty() ? std::string() : conv.out[0];
    for (int guard = 0; !out.empty() && !g_.is_graph_output(out) && guard < 8; ++guard) {
      auto cs = g_.consumers(out);
      if (cs.size() != 1 || (cs[0]->op != "Identity" && cs[0]->op != "Cast") || cs[0]->out.empty()) break;
      out = cs[0]->out[0];
    }
    if (out.empty() || !g_.is_graph_output(out))
      fail(fmt::format("output: the logits of {} must be the graph's output", conv.label()));
  }

  // --- one Swin block ------------------------------------------------------

  std::string block(const std::string& x, const std::string& name, int stage, int res, int64_t d, int b) {
    if (!stream_.insert(x).second) fail(fmt::format("{}: the residual stream {} loops back (a cyclic graph)", name, after(x)));
    BlockInfo info;
    info.name = name;
    info.stage = stage;
    const LayerNorm ln1 = layernorm_at(x, name + ".norm1", d);
    put_norm(name + ".norm1", ln1);
    // W-MSA / SW-MSA: (roll) window partition -> qkv -> attention -> proj -> window reverse (roll back).
    const Linear qkv = linear_after(ln1.out, kLayoutRoll, name + ".attn.qkv", true, d, 3 * d);
    info.qkv_bias = qkv.bias.has_value();
    put_linear(name + ".attn.qkv", qkv, info.qkv_bias);
    const Walk att = walk(qkv.out, kAttention, [&](const Node& n) { return is_linear(n); });
    const Linear proj = linear(*one(att, name + ".attn", "the attention output projection (Linear " + std::to_string(d) + "->" + std::to_string(d) + ")", qkv.out).node,
                               name + ".attn.proj", true, d, d);
    put_linear(name + ".attn.proj", proj, true);
    attention(att, qkv.out, name, res, d, b, info);
    const std::string xm = residual(proj.out, kLayoutRoll, x, name + " (attention residual)");
    // MLP: fc1 -> exact GELU -> fc2.
    const LayerNorm ln2 = layernorm_at(xm, name + ".norm2", d);
    put_norm(name + ".norm2", ln2);
    const Walk w1 = walk(ln2.out, kLayout, [&](const Node& n) { return is_linear(n); });
    const Node& fc1n = *one(w1, name + ".mlp.fc1", "a Linear (MatMul or Gemm with a constant weight)", ln2.out).node;
    const Const* w = float_const(fc1n.input(1));
    const int64_t hidden = fc1n.op == "Gemm" && fc1n.attr_i("transB", 0) ? w->shape[0] : w->shape[1];
    const Linear fc1 = linear(fc1n, name + ".mlp.fc1", true, d, hidden);
    put_linear(name + ".mlp.fc1", fc1, true);
    const Walk g = walk(fc1.out, kGelu, [&](const Node& n) { return is_linear(n); });
    const Linear fc2 = linear(*one(g, name + ".mlp", "GELU and then fc2 (Linear " + std::to_string(hidden) + "->" + std::to_string(d) + ")", fc1.out).node,
                              name + ".mlp.fc2", true, hidden, d);
    bool exact = false;
    for (const Node* n : g.visited) {
      if (n->op == "Erf") exact = true;
      if (n->op == "Gelu") {
        if (n->attr_s("approximate", "none") != "none")
          fail(fmt::format("{}.mlp: {} is the tanh approximation of GELU; the original uses the exact (erf) GELU", name, n->label()));
        exact = true;
      }
    }
    if (!exact) fail(fmt::format("{}.mlp: expected the exact GELU (Erf or Gelu) between fc1 {} and fc2 {}", name, fc1n.label(), fc2.last->label()));
    put_linear(name + ".mlp.fc2", fc2, true);
    info.hidden = int(hidden);
    blocks_.push_back(info);
    return residual(fc2.out, kLayout, xm, name + " (MLP residual)");
  }

  // x + branch: the Add reached from the branch output must add `x`.
  std::string residual(const std::string& branch, const OpSet& pass, const std::string& x, const std::string& name) const {
    const Walk w = walk(branch, pass, [](const Node& n) { return n.op == "Add"; });
    const Hit h = one(w, name, "the residual Add", branch);
    if (h.node->in.size() != 2 || other(*h.node, h.via) != x || h.node->out.empty())
      fail(fmt::format("{}: {} does not add the block input {}", name, h.node->label(), after(x)));
    return h.node->out[0];
  }

  // The attention core: q*scale @ k^T + bias (+ mask) -> Softmax -> @ v.
  void attention(const Walk& att, const std::string& qkv_out, const std::string& name, int res, int64_t d, int b,
                 BlockInfo& info) {
    const Node* softmax = nullptr;
    int count = 0;
    for (const Node* n : att.visited)
      if (n->op == "Softmax") softmax = n, ++count;
    if (count != 1) fail(fmt::format("{}.attn: expected one Softmax between {} and the output projection, found {}", name, after(qkv_out), count));
    if (const int64_t axis = softmax->attr_i("axis", -1); axis != -1 && axis != 3)
      fail(fmt::format("{}.attn: {} must run over the last axis", name, softmax->label()));
    // Back from the Softmax to the scores MatMul, collecting the constant Adds.
    std::vector<const Node*> adds;
    std::string v = softmax->input(0);
    const Node* qk = nullptr;
    for (int guard = 0; guard < 32 && !qk; ++guard) {
      const Node* n = g_.producer_of(v);
      if (!n) break;
      if (n->op == "MatMul") qk = n;
      else if (n->op == "Add" && n->in.size() == 2 && g_.is_activation(n->input(0)) != g_.is_activation(n->input(1))) {
        adds.insert(adds.begin(), n);
        v = g_.is_activation(n->input(0)) ? n->input(0) : n->input(1);
      } else if (kLayout.count(n->op) || n->op == "Cast") {
        v = n->input(0);
      } else {
        fail(fmt::format("{}.attn: expected the position bias and mask Adds before {}, found {}", name, softmax->label(), n->label()));
      }
    }
    if (!qk) fail(fmt::format("{}.attn: no q @ k^T MatMul before {}", name, softmax->label()));
    if (adds.empty() || adds.size() > 2)
      fail(fmt::format("{}.attn: expected the relative position bias Add (and for shifted windows the mask Add) between {} and {}, found {} constant Adds",
                       name, qk->label(), softmax->label(), adds.size()));
    // Relative position bias -> table, window and heads.
    const std::string& bias_value = g_.is_activation(adds[0]->input(0)) ? adds[0]->input(1) : adds[0]->input(0);
    relative_bias(bias_value, name, *adds[0], info);
    const int w = info.window, h = info.heads;
    if (w > res || res % w) fail(fmt::format("{}.attn: window {} does not tile the {}x{} grid", name, w, res, res));
    if (d % h) fail(fmt::format("{}.attn: {} channels do not split into {} heads", name, d, h));
    // Shift mask: the original shifts odd blocks by window/2 where the grid is larger than the window.
    const int shift = res > w && b % 2 == 1 ? w / 2 : 0;
    if (shift == 0 && adds.size() == 2)
      fail(fmt::format("{}.attn: {} adds a second constant (a shift mask?) where the original has none (block {} of a {}x{} grid, window {})",
                       name, adds[1]->label(), b, res, res, w));
    if (shift > 0) {
      if (adds.size() != 2)
        fail(fmt::format("{}.attn: expected the shifted-window mask Add before {} (odd block, shift {})", name, softmax->label(), shift));
      const std::string& mv = g_.is_activation(adds[1]->input(0)) ? adds[1]->input(1) : adds[1]->input(0);
      const std::vector<float> expect = shift_mask(res, w, shift);
      const Const* m = float_const(mv);
      if (!m) m = data_source(mv, {"Reshape", "Unsqueeze", "Squeeze", "Identity", "Cast", "Expand"});
      if (!m || m->f != expect)
        fail(fmt::format("{}.attn: {} does not add the attention mask of a cyclic shift by {} ({}x{} grid, window {})",
                         name, adds[1]->label(), shift, res, res, w));
    }
    // Scale: the constant factors on the q and k paths back to the qkv output.
    double scale = 1.0;
    int64_t role[2] = {-1, -1};
    for (int side = 0; side < 2; ++side) {
      std::string u = qk->input(size_t(side));
      bool reached = false;
      for (int guard = 0; guard < 32 && !reached; ++guard) {
        if (u == qkv_out) {
          reached = true;
          break;
        }
        const Node* n = g_.producer_of(u);
        if (!n) break;
        std::string act;
        if ((n->op == "Mul" || n->op == "Div") && static_operand(*n, &act) && static_operand(*n)->numel() == 1 &&
            (n->op == "Mul" || n->input(0) == act)) {
          const double c = static_operand(*n)->f[0];
          scale *= n->op == "Mul" ? c : 1.0 / c;
          u = act;
        } else if (n->op == "Gather" && g_.constant(n->input(1)) && g_.constant(n->input(1))->numel() == 1 &&
                   !g_.constant(n->input(1))->is_float) {
          role[side] = g_.constant(n->input(1))->i[0];
          u = n->input(0);
        } else if (n->op == "Split") {
          role[side] = std::find(n->out.begin(), n->out.end(), u) - n->out.begin();
          u = n->input(0);
        } else if (kLayout.count(n->op) || n->op == "Slice" || n->op == "Cast") {
          u = n->input(0);
        } else {
          break;
        }
      }
      if (!reached)
        fail(fmt::format("{}.attn: the {} operand of {} does not come from the qkv projection through reshapes and a constant scale",
                         name, side ? "k" : "q", qk->label()));
    }
    if ((role[0] >= 0 && role[0] != 0) || (role[1] >= 0 && role[1] != 1))
      fail(fmt::format("{}.attn: {} multiplies qkv parts {} and {}, expected q (0) and k (1)", name, qk->label(), role[0], role[1]));
    info.scale = float(scale);
  }

  // Follows `v` back through `pass` ops along their data input to a float
  // initializer or constant.
  const Const* data_source(std::string v, const OpSet& pass) const {
    for (int guard = 0; guard < 32; ++guard) {
      if (const Const* c = g_.initializer(v)) return c->is_float ? c : nullptr;
      const Node* n = g_.producer_of(v);
      if (!n) return nullptr;
      if (n->op == "Constant") return float_const(v);
      if (!pass.count(n->op)) return nullptr;
      v = n->input(0);
    }
    return nullptr;
  }

  // True when some integer constant upstream of `v` equals `want` (shape aside).
  bool has_int_constant(const std::string& v, const std::vector<int>& want) const {
    std::set<std::string> seen;
    std::deque<std::string> queue{v};
    while (!queue.empty() && seen.size() < 4096) {
      const std::string u = queue.front();
      queue.pop_front();
      if (!seen.insert(u).second || g_.is_activation(u)) continue;
      if (const Const* c = g_.initializer(u); c && !c->is_float && c->numel() == int64_t(want.size()) &&
                                              std::equal(want.begin(), want.end(), c->i.begin()))
        return true;
      if (const Node* n = g_.producer_of(u)) {
        if (n->op == "Constant") {
          const Const* c = g_.constant(u);
          if (c && !c->is_float && c->numel() == int64_t(want.size()) && std::equal(want.begin(), want.end(), c->i.begin())) return true;
        }
        for (const auto& i : n->in)
          if (!i.empty()) queue.push_back(i);
      }
    }
    return false;
  }

  // The relative position bias as the original computes it:
  //   table[relative_position_index.view(-1)].view(N, N, heads).permute(2, 0, 1).unsqueeze(0)
  // An exporter may leave this as it is (the table, gathered in the graph),
  // gather it at export time ([N*N, heads], then reshaped in the graph), or
  // fold all of it ([1, heads, N, N]). The table is recovered in each case;
  // gathered values are mapped back through relative_position_index and must
  // agree wherever two query/key pairs share an offset.
  void relative_bias(const std::string& v, const std::string& name, const Node& add, BlockInfo& info) {
    const std::string table_name = name + ".attn.relative_position_bias_table";
    auto invert = [&](int w, int64_t h, const std::function<float(int64_t head, int64_t ij)>& value) {
      const int64_t N = int64_t(w) * w, T = int64_t(2 * w - 1) * (2 * w - 1);
      const std::vector<int> idx = relative_position_index(w);
      Tensor table{{T, h}, std::vector<float>(size_t(T * h), 0.f)};
      std::vector<char> set(size_t(T * h), 0);
      for (int64_t head = 0; head < h; ++head)
        for (int64_t ij = 0; ij < N * N; ++ij) {
          const float val = value(head, ij);
          const size_t slot = size_t(idx[size_t(ij)] * h + head);
          if (!set[slot]) {
            table.data[slot] = val;
            set[slot] = 1;
          } else if (std::memcmp(&table.data[slot], &val, sizeof val) != 0) {
            fail(fmt::format("{}.attn: the constant added by {} is not a relative position bias of a {}x{} window "
                             "(query/key pairs at the same offset differ)",
                             name, add.label(), w, w));
          }
        }
      info.window = w;
      info.heads = int(h);
      put(table_name, std::move(table));
    };
    auto window_of_tokens = [](int64_t N) {  // w with w*w == N, else 0
      const int w = int(std::lround(std::sqrt(double(N))));
      return N > 0 && int64_t(w) * w == N ? w : 0;
    };
    if (const Const* c = float_const(v)) {  // folded: [.., heads, N, N]
      const int64_t rank = int64_t(c->shape.size());
      const int64_t N = rank >= 2 ? c->shape[size_t(rank - 1)] : 0;
      const int w = window_of_tokens(N);
      if (w == 0 || c->shape[size_t(rank - 2)] != N || c->numel() % (N * N))
        fail(fmt::format("{}.attn: {} adds a constant of shape {}, expected a relative position bias [heads, w*w, w*w]",
                         name, add.label(), shape_of(*c)));
      invert(w, c->numel() / (N * N), [&](int64_t head, int64_t ij) { return c->f[size_t(head * N * N + ij)]; });
      return;
    }
    // Not constant as a whole: follow the data input back to the constant it reshapes or gathers.
    const OpSet pass{"Gather", "GatherND", "GatherElements", "Reshape", "Transpose", "Unsqueeze",
                     "Squeeze", "Identity", "Expand", "Flatten"};
    bool gathers = false;
    const Const* t = nullptr;
    std::string u = v;
    for (int guard = 0; guard < 32 && !t; ++guard) {
      if ((t = float_const(u))) break;
      const Node* n = g_.producer_of(u);
      if (!n || !pass.count(n->op)) break;
      gathers = gathers || n->op.rfind("Gather", 0) == 0;
      u = n->input(0);
    }
    const int64_t R = t && t->shape.size() == 2 ? t->shape[0] : 0, h = t && t->shape.size() == 2 ? t->shape[1] : 0;
    if (R > 0 && !gathers) {  // gathered at export time: [N*N, heads]
      const int w = window_of_tokens(window_of_tokens(R));
      if (w == 0)
        fail(fmt::format("{}.attn: the bias added by {} reshapes a constant of shape {}, expected [N*N, heads] with N = w*w",
                         name, add.label(), shape_of(*t)));
      invert(w, h, [&](int64_t head, int64_t ij) { return t->f[size_t(ij * h + head)]; });
      return;
    }
    const int span = window_of_tokens(R);
    const int w = (span + 1) / 2;
    if (R <= 0 || span % 2 == 0)
      fail(fmt::format("{}.attn: {} adds neither a constant bias nor a gather from a [(2w-1)^2, heads] table", name, add.label()));
    if (!has_int_constant(v, relative_position_index(w)))
      fail(fmt::format("{}.attn: the bias added by {} gathers a [{}, {}] table without the relative_position_index of a {}x{} window",
                       name, add.label(), R, h, w, w));
    info.window = w;
    info.heads = int(h);
    put(table_name, tensor_of(*t, t->shape));
  }

  // --- config ---------------------------------------------------------------

  Weights assemble() {
    const int L = int(c_.depths.size());
    c_.num_heads.assign(size_t(L), 0);
    std::vector<int> windows(size_t(L), 0);
    for (const auto& b : blocks_) {
      int& h = c_.num_heads[size_t(b.stage)];
      int& w = windows[size_t(b.stage)];
      if ((h && h != b.heads) || (w && w != b.window))
        fail(fmt::format("{}: {} heads, window {}; other blocks of stage {} have {} heads, window {}", b.name, b.heads,
                         b.window, b.stage, h, w));
      h = b.heads;
      w = b.window;
    }
    c_.window_size = *std::max_element(windows.begin(), windows.end());
    for (int s = 0; s < L; ++s)
      if (windows[size_t(s)] != c_.window(s))
        fail(fmt::format("layers.{}: window {}, but a window size of {} gives {} on a {}x{} grid", s, windows[size_t(s)],
                         c_.window_size, c_.window(s), c_.resolution(s), c_.resolution(s)));
    const BlockInfo& first = blocks_.front();
    c_.qkv_bias = first.qkv_bias;
    c_.mlp_ratio = double(first.hidden) / double(c_.dim(first.stage));
    bool default_scale = true, same_scale = true;
    for (const auto& b : blocks_) {
      if (b.qkv_bias != c_.qkv_bias)
        fail(fmt::format("{}: the qkv projection {} a bias, unlike {}", b.name, b.qkv_bias ? "has" : "has no", first.name));
      if (b.hidden != c_.mlp_hidden(c_.dim(b.stage)))
        fail(fmt::format("{}: MLP hidden size {}, but {} (mlp_ratio {}) implies {}", b.name, b.hidden, first.name,
                         c_.mlp_ratio, c_.mlp_hidden(c_.dim(b.stage))));
      const float def = static_cast<float>(std::pow(double(c_.dim(b.stage) / b.heads), -0.5));
      default_scale = default_scale && b.scale == def;
      same_scale = same_scale && b.scale == first.scale;
    }
    if (!default_scale) {
      if (!same_scale)
        fail(fmt::format("the attention scales differ between blocks and are not head_dim^-0.5 (a single qk_scale is expected)"));
      c_.qk_scale = std::stod(fmt::format("{}", first.scale));  // the shortest decimal of the float
    }
    return Weights(c_, std::move(t_), DType::F32, g_.where());
  }
};

Weights recognise(const Graph& g) {
  try {
    return Recognizer(g).run();
  } catch (const std::out_of_range&) {
    throw Error(fmt::format("{}: not a Swin-Unet graph: a node lacks an input or attribute the recogniser needs", g.where()));
  }
}

}  // namespace

bool onnx_supported() { return true; }

Weights load_onnx_bytes(const void* data, size_t size, const std::string& name) {
  const onnx_import::Graph g(data, size, name, "");
  return recognise(g);
}

Weights load_onnx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open ({})", path, std::strerror(errno)));
  if (std::filesystem::is_directory(path)) throw Error(fmt::format("{}: is a directory, expected an ONNX file", path));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error(fmt::format("{}: read error", path));
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const onnx_import::Graph g(bytes.data(), bytes.size(), path, dir);
  bytes.clear();
  bytes.shrink_to_fit();
  return recognise(g);
}

}  // namespace swinrt
