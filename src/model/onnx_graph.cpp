// ONNX protobuf -> onnx_import::Graph. Every size read from the file is
// checked before it is used: dims against overflow and against the bytes
// actually present, external data against its file, attribute tensors as
// initializers. The constant evaluator is bounded in depth and in size.
#include "onnx_graph.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <limits>

#include "onnx.pb.h"
#include "safetensors.h"
#include "swinrt/error.h"

namespace swinrt::onnx_import {

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 31;  // per tensor, far above any Swin-Unet weight
constexpr int64_t kMaxEvaluated = int64_t(1) << 24;  // per evaluated constant
constexpr int64_t kMaxEvaluatedTotal = int64_t(1) << 26;  // all evaluated constants of a graph
constexpr int kMaxDepth = 64;                        // constant evaluation recursion

enum DataType {
  FLOAT = 1, UINT8 = 2, INT8 = 3, UINT16 = 4, INT16 = 5, INT32 = 6, INT64 = 7, STRING = 8, BOOL = 9,
  FLOAT16 = 10, DOUBLE = 11, UINT32 = 12, UINT64 = 13, BFLOAT16 = 16
};

// Byte size and kind of a supported element type; 0 for unsupported ones.
int element_size(int dt, bool* is_float) {
  *is_float = dt == FLOAT || dt == FLOAT16 || dt == DOUBLE || dt == BFLOAT16;
  switch (dt) {
    case UINT8: case INT8: case BOOL: return 1;
    case UINT16: case INT16: case FLOAT16: case BFLOAT16: return 2;
    case FLOAT: case INT32: case UINT32: return 4;
    case INT64: case DOUBLE: case UINT64: return 8;
    default: return 0;
  }
}

const char* type_name(int dt) {
  switch (dt) {
    case FLOAT: return "FLOAT"; case UINT8: return "UINT8"; case INT8: return "INT8"; case UINT16: return "UINT16";
    case INT16: return "INT16"; case INT32: return "INT32"; case INT64: return "INT64"; case STRING: return "STRING";
    case BOOL: return "BOOL"; case FLOAT16: return "FLOAT16"; case DOUBLE: return "DOUBLE"; case UINT32: return "UINT32";
    case UINT64: return "UINT64"; case BFLOAT16: return "BFLOAT16";
    default: return "an unsupported type";
  }
}

// Little-endian element k of `raw` as float or int64.
void decode_raw(const unsigned char* p, int64_t n, int dt, Const& c) {
  auto rd = [&](auto tag, int64_t k) {
    decltype(tag) v;
    std::memcpy(&v, p + k * int64_t(sizeof v), sizeof v);
    return v;
  };
  for (int64_t k = 0; k < n; ++k) {
    switch (dt) {
      case FLOAT: c.f[k] = rd(float{}, k); break;
      case DOUBLE: c.f[k] = float(rd(double{}, k)); break;
      case FLOAT16: c.f[k] = f16_to_f32(rd(uint16_t{}, k)); break;
      case BFLOAT16: c.f[k] = bf16_to_f32(rd(uint16_t{}, k)); break;
      case UINT8: case BOOL: c.i[k] = rd(uint8_t{}, k); break;
      case INT8: c.i[k] = rd(int8_t{}, k); break;
      case UINT16: c.i[k] = rd(uint16_t{}, k); break;
      case INT16: c.i[k] = rd(int16_t{}, k); break;
      case INT32: c.i[k] = rd(int32_t{}, k); break;
      case UINT32: c.i[k] = rd(uint32_t{}, k); break;
      case INT64: c.i[k] = rd(int64_t{}, k); break;
      case UINT64: c.i[k] = int64_t(rd(uint64_t{}, k)); break;
    }
  }
}

bool safe_relative(const std::string& location) {
  if (location.empty() || location[0] == '/' || location.find('\0') != std::string::npos) return false;
  for (const auto& part : std::filesystem::path(location))
    if (part == "..") return false;
  return true;
}

std::string read_external(const onnx::TensorProto& t, const std::string& what, const std::string& where,
                          const std::string& base_dir, int64_t nbytes) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& e : t.external_data()) {
    try {
      if (e.key() == "location") location = e.value();
      else if (e.key() == "offset") offset = std::stoll(e.value());
      else if (e.key() == "length") length = std::stoll(e.value());
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: tensor '{}': external_data {} '{}' is not a number", where, what, e.key(), e.value()));
    }
  }
  if (base_dir.empty())
    throw Error(fmt::format("{}: tensor '{}' stores its data in an external file ('{}'), which only a model read "
                            "from disk can refer to",
                            where, what, location));
  if (!safe_relative(location))
    throw Error(fmt::format("{}: tensor '{}': external data location '{}' must be a relative path inside the "
                            "model's directory",
                            where, what, location));
  if (offset < 0 || (length >= 0 && length != nbytes))
    throw Error(fmt::format("{}: tensor '{}': external data offset {} / length {} do not match its {} bytes", where,
                            what, offset, length, nbytes));
  const std::filesystem::path file = std::filesystem::path(base_dir) / location;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: tensor '{}': cannot open its external data file {}", where, what, file.string()));
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  if (size < 0 || offset > size || nbytes > size - offset)
    throw Error(fmt::format("{}: tensor '{}': external data file {} holds {} bytes, the tensor needs {} at offset {}",
                            where, what, file.string(), size, nbytes, offset));
  std::string bytes(size_t(nbytes), '\0');
  in.seekg(offset);
  in.read(bytes.data(), nbytes);
  if (!in) throw Error(fmt::format("{}: tensor '{}': cannot read its external data from {}", where, what, file.string()));
  return bytes;
}

// nullptr for element types swinrt never needs (strings, complex, 8-bit floats):
// such tensors are simply not constants to the recognizer.
std::shared_ptr<Const> decode_tensor(const onnx::TensorProto& t, const std::string& what, const std::string& where,
                                     const std::string& base_dir) {
  auto c = std::make_shared<Const>();
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || (d > 0 && n > kMaxElements / d))
      throw Error(fmt::format("{}: tensor '{}' has invalid dims [{}]", where, what, fmt::join(t.dims(), ", ")));
    n *= d;
    c->shape.push_back(d);
  }
  c->dtype = t.data_type();
  const int esize = element_size(c->dtype, &c->is_float);
  if (esize == 0) return nullptr;
  auto mismatch = [&](int64_t have) {
    return Error(fmt::format("{}: tensor '{}' of dims [{}] ({}) needs {} elements, the file holds {}", where, what,
                             fmt::join(c->shape, ", "), type_name(c->dtype), n, have));
  };
  if (c->is_float) c->f.resize(size_t(n));
  else c->i.resize(size_t(n));
  if (t.data_location() == 1) {
    const std::string bytes = read_external(t, what, where, base_dir, n * esize);
    decode_raw(reinterpret_cast<const unsigned char*>(bytes.data()), n, c->dtype, *c);
  } else if (t.has_raw_data()) {
    if (int64_t(t.raw_data().size()) != n * esize) throw mismatch(int64_t(t.raw_data().size()) / esize);
    decode_raw(reinterpret_cast<const unsigned char*>(t.raw_data().data()), n, c->dtype, *c);
  } else {
    switch (c->dtype) {
      case FLOAT:
        if (t.float_data_size() != n) throw mismatch(t.float_data_size());
        std::copy(t.float_data().begin(), t.float_data().end(), c->f.begin());
        break;
      case DOUBLE:
        if (t.double_data_size() != n) throw mismatch(t.double_data_size());
        for (int64_t k = 0; k < n; ++k) c->f[k] = float(t.double_data(int(k)));
        break;
      case INT64:
        if (t.int64_data_size() != n) throw mismatch(t.int64_data_size());
        std::copy(t.int64_data().begin(), t.int64_data().end(), c->i.begin());
        break;
      case UINT32: case UINT64:
        if (t.uint64_data_size() != n) throw mismatch(t.uint64_data_size());
        for (int64_t k = 0; k < n; ++k) c->i[k] = int64_t(t.uint64_data(int(k)));
        break;
      default:  // int32_data holds INT32, the narrower integers, BOOL and the bits of FLOAT16/BFLOAT16
        if (t.int32_data_size() != n) throw mismatch(t.int32_data_size());
        for (int64_t k = 0; k < n; ++k) {
          const int32_t v = t.int32_data(int(k));
          if (c->dtype == FLOAT16) c->f[k] = f16_to_f32(uint16_t(v));
          else if (c->dtype == BFLOAT16) c->f[k] = bf16_to_f32(uint16_t(v));
          else c->i[k] = v;
        }
    }
  }
  return c;
}

ValueInfo value_info(const onnx::ValueInfoProto& v) {
  ValueInfo out;
  out.name = v.name();
  if (v.type().has_tensor_type()) {
    const auto& tt = v.type().tensor_type();
    out.elem_type = tt.elem_type();
    if (tt.has_shape()) {
      out.has_shape = true;
      for (const auto& d : tt.shape().dim()) out.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    }
  }
  return out;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int k = int(shape.size()) - 2; k >= 0; --k) s[k] = s[k + 1] * shape[k + 1];
  return s;
}

// Copies element `from` of `src` to element `to` of `dst` (same kind).
void copy_elem(const Const& src, int64_t from, Const& dst, int64_t to) {
  if (src.is_float) dst.f[size_t(to)] = src.f[size_t(from)];
  else dst.i[size_t(to)] = src.i[size_t(from)];
}

std::shared_ptr<Const> like(const Const& src, std::vector<int64_t> shape) {
  auto c = std::make_shared<Const>();
  c->is_float = src.is_float;
  c->dtype = src.dtype;
  c->shape = std::move(shape);
  if (c->is_float) c->f.resize(size_t(c->numel()));
  else c->i.resize(size_t(c->numel()));
  return c;
}

bool normalize_axis(int64_t& axis, int64_t rank) {
  if (axis < 0) axis += rank;
  return axis >= 0 && axis < rank;
}

std::optional<std::vector<int64_t>> int_list(const Const* c) {
  if (!c || c->is_float) return std::nullopt;
  return c->i;
}

}  // namespace

int64_t Const::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const Attr* Node::attr(const std::string& key) const {
  auto it = attrs.find(key);
  return it == attrs.end() ? nullptr : &it->second;
}
int64_t Node::attr_i(const std::string& key, int64_t fallback) const {
  const Attr* a = attr(key);
  return a ? a->i : fallback;
}
float Node::attr_f(const std::string& key, float fallback) const {
  const Attr* a = attr(key);
  return a ? a->f : fallback;
}
std::string Node::attr_s(const std::string& key, const std::string& fallback) const {
  const Attr* a = attr(key);
  return a ? a->s : fallback;
}
const std::string& Node::input(size_t k) const {
  static const std::string none;
  return k < in.size() ? in[k] : none;
}
std::string Node::label() const {
  return name.empty() ? fmt::format("node #{} ({})", index, op) : fmt::format("'{}' ({})", name, op);
}

Graph::Graph(const void* data, size_t size, const std::string& where, const std::string& base_dir) : where_(where) {
  if (size == 0) throw Error(fmt::format("{}: empty file, expected an ONNX model", where));
  if (size > size_t(std::numeric_limits<int>::max()))
    throw Error(fmt::format("{}: {} bytes; ONNX files over 2 GiB keep their weights as external data", where, size));
  onnx::ModelProto model;
  if (!model.ParseFromArray(data, int(size)))
    throw Error(fmt::format("{}: not a valid ONNX file (the protobuf does not parse: truncated or not ONNX)", where));
  if (!model.has_graph() || model.graph().node_size() == 0)
    throw Error(fmt::format("{}: not an ONNX model: no graph (or a graph without nodes)", where));
  producer_ = model.producer_name();
  if (!model.producer_version().empty()) producer_ += " " + model.producer_version();
  for (const auto& o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
  const onnx::GraphProto& g = model.graph();

  for (const auto& t : g.initializer()) {
    if (t.name().empty()) continue;
    if (auto c = decode_tensor(t, t.name(), where, base_dir)) initializers_[t.name()] = std::move(c);
  }
  nodes_.reserve(size_t(g.node_size()));
  for (const auto& pn : g.node()) {
    Node n;
    n.index = int(nodes_.size());
    n.name = pn.name();
    n.op = pn.op_type();
    n.domain = pn.domain();
    n.in.assign(pn.input().begin(), pn.input().end());
    n.out.assign(pn.output().begin(), pn.output().end());
    for (const auto& pa : pn.attribute()) {
      Attr a;
      a.type = pa.type();
      a.f = pa.f();
      a.i = pa.i();
      a.s = pa.s();
      a.floats.assign(pa.floats().begin(), pa.floats().end());
      a.ints.assign(pa.ints().begin(), pa.ints().end());
      if (pa.has_t()) a.t = decode_tensor(pa.t(), fmt::format("{}.{}", n.label(), pa.name()), where, base_dir);
      n.attrs[pa.name()] = std::move(a);
    }
    nodes_.push_back(std::move(n));
  }
  for (const auto& v : g.input())
    if (!initializers_.count(v.name())) inputs_.push_back(value_info(v));
  for (const auto& v : g.output()) {
    outputs_.push_back(value_info(v));
    outputs_set_.insert(v.name());
  }

  for (const Node& n : nodes_) {
    for (const auto& o : n.out)
      if (!o.empty()) producers_.emplace(o, &n);
    // Shape, Size and CastLike's second input read only a value's shape or
    // type, never its elements: such uses are not data flow.
    for (size_t k = 0; k < n.in.size(); ++k) {
      const std::string& i = n.in[k];
      if (!i.empty() && n.op != "Shape" && n.op != "Size" && !(n.op == "CastLike" && k == 1)) {
        auto& c = consumers_[i];
        if (c.empty() || c.back() != &n) c.push_back(&n);
      }
    }
  }
  // Activations: everything reachable from the graph inputs through values.
  std::deque<std::string> work;
  for (const auto& v : inputs_)
    if (activations_.insert(v.name).second) work.push_back(v.name);
  while (!work.empty()) {
    const std::string v = work.front();
    work.pop_front();
    auto it = consumers_.find(v);
    if (it == consumers_.end()) continue;
    for (const Node* n : it->second)
      for (const auto& o : n->out)
        if (!o.empty() && activations_.insert(o).second) work.push_back(o);
  }
}

const Node* Graph::producer_of(const std::string& value) const {
  auto it = producers_.find(value);
  return it == producers_.end() ? nullptr : it->second;
}

std::vector<const Node*> Graph::consumers(const std::string& value) const {
  auto it = consumers_.find(value);
  return it == consumers_.end() ? std::vector<const Node*>{} : it->second;
}

bool Graph::is_graph_output(const std::string& value) const { return outputs_set_.count(value) > 0; }

const Const* Graph::initializer(const std::string& value) const {
  auto it = initializers_.find(value);
  return it == initializers_.end() ? nullptr : it->second.get();
}

const Const* Graph::constant(const std::string& value) const { return constant_at(value, 0); }

const Const* Graph::constant_at(const std::string& value, int depth) const {
  if (value.empty() || activations_.count(value)) return nullptr;
  if (auto it = initializers_.find(value); it != initializers_.end()) return it->second.get();
  if (auto it = cache_.find(value); it != cache_.end()) return it->second.get();
  if (not_constant_.count(value) || depth > kMaxDepth) return nullptr;
  const Node* n = producer_of(value);
  const Const* c = n && n->out.size() == 1 ? evaluate(*n, depth + 1) : nullptr;
  if (!c) not_constant_.insert(value);
  return c;
}

// The evaluator: each op as ONNX defines it, for constant inputs only.
const Const* Graph::evaluate(const Node& n, int depth) const {
  auto in = [&](size_t k) { return constant_at(n.input(k), depth); };
  std::shared_ptr<Const> r;
  const std::string& op = n.op;
  if (!n.domain.empty() && n.domain != "ai.onnx") return nullptr;
  if (op == "Constant") {
    if (const Attr* a = n.attr("value"); a && a->t) {
      r = std::make_shared<Const>(*a->t);
    } else if (const Attr* a = n.attr("value_float")) {
      r = std::make_shared<Const>();
      r->f = {a->f};
      r->dtype = FLOAT;
    } else if (const Attr* a = n.attr("value_floats")) {
      r = std::make_shared<Const>();
      r->f = a->floats;
      r->shape = {int64_t(a->floats.size())};
      r->dtype = FLOAT;
    } else if (const Attr* a = n.attr("value_int")) {
      r = std::make_shared<Const>();
      r->is_float = false;
      r->i = {a->i};
      r->dtype = INT64;
    } else if (const Attr* a = n.attr("value_ints")) {
      r = std::make_shared<Const>();
      r->is_float = false;
      r->i = a->ints;
      r->shape = {int64_t(a->ints.size())};
      r->dtype = INT64;
    }
  } else if (op == "Identity") {
    if (const Const* x = in(0)) r = std::make_shared<Const>(*x);
  } else if (op == "Cast") {
    const Const* x = in(0);
    bool to_float = false;
    const int to = int(n.attr_i("to", 0));
    if (x && element_size(to, &to_float) > 0) {
      r = like(*x, x->shape);
      r->is_float = to_float;
      r->dtype = to;
      r->f.clear();
      r->i.clear();
      const int64_t m = x->numel();
      if (to_float) {
        r->f.resize(size_t(m));
        for (int64_t k = 0; k < m; ++k) r->f[k] = float(x->at(k));
      } else {
        r->i.resize(size_t(m));
        for (int64_t k = 0; k < m; ++k) {
          const double v = x->at(k);
          if (!(v > -9.2e18 && v < 9.2e18)) return nullptr;
          r->i[k] = int64_t(v);
        }
      }
    }
  } else if (op == "Transpose") {
    const Const* x = in(0);
    if (!x) return nullptr;
    const int64_t rank = int64_t(x->shape.size());
    std::vector<int64_t> perm;
    if (const Attr* a = n.attr("perm")) perm = a->ints;
    else
      for (int64_t k = rank - 1; k >= 0; --k) perm.push_back(k);
    if (int64_t(perm.size()) != rank) return nullptr;
    std::vector<int64_t> shape(static_cast<size_t>(rank)), seen(static_cast<size_t>(rank), 0);
    for (int64_t k = 0; k < rank; ++k) {
      if (perm[k] < 0 || perm[k] >= rank || seen[perm[k]]++) return nullptr;
      shape[k] = x->shape[perm[k]];
    }
    r = like(*x, shape);
    const auto src_strides = strides_of(x->shape);
    const int64_t m = r->numel();
    std::vector<int64_t> idx(size_t(rank), 0);
    for (int64_t k = 0; k < m; ++k) {
      int64_t from = 0;
      for (int64_t d = 0; d < rank; ++d) from += idx[d] * src_strides[perm[d]];
      copy_elem(*x, from, *r, k);
      for (int64_t d = rank - 1; d >= 0; --d) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
  } else if (op == "Reshape" || op == "Flatten" || op == "Unsqueeze" || op == "Squeeze") {
    const Const* x = in(0);
    if (!x) return nullptr;
    const int64_t m = x->numel(), rank = int64_t(x->shape.size());
    std::vector<int64_t> shape;
    if (op == "Reshape") {
      auto target = int_list(in(1));
      if (!target) return nullptr;
      int64_t known = 1, infer = -1;
      for (size_t k = 0; k < target->size(); ++k) {
        int64_t d = (*target)[k];
        if (d == 0 && !n.attr_i("allowzero", 0)) {
          if (int64_t(k) >= rank) return nullptr;
          d = x->shape[k];
        }
        if (d == -1) {
          if (infer >= 0) return nullptr;
          infer = int64_t(k);
        } else if (d < 0) {
          return nullptr;
        } else {
          if (d > 0 && known > kMaxElements / d) return nullptr;
          known *= d;
        }
        shape.push_back(d);
      }
      if (infer >= 0) {
        if (known == 0 || m % known) return nullptr;
        shape[size_t(infer)] = m / known;
      }
    } else if (op == "Flatten") {
      int64_t axis = n.attr_i("axis", 1);
      if (axis < 0) axis += rank;
      if (axis < 0 || axis > rank) return nullptr;
      int64_t a = 1;
      for (int64_t k = 0; k < axis; ++k) a *= x->shape[k];
      shape = {a, a ? m / a : 0};
    } else {
      std::vector<int64_t> axes;
      if (const Attr* a = n.attr("axes")) axes = a->ints;
      else if (auto l = int_list(in(1))) axes = *l;
      const bool unsq = op == "Unsqueeze";
      const int64_t out_rank = unsq ? rank + int64_t(axes.size()) : rank;
      std::vector<bool> mark(size_t(out_rank), false);
      for (int64_t a : axes) {
        if (!normalize_axis(a, out_rank) || mark[a]) return nullptr;
        mark[a] = true;
      }
      if (unsq) {
        for (int64_t k = 0, s = 0; k < out_rank; ++k) shape.push_back(mark[k] ? 1 : x->shape[s++]);
      } else {
        for (int64_t k = 0; k < rank; ++k) {
          const bool drop = axes.empty() ? x->shape[k] == 1 : bool(mark[k]);
          if (drop && x->shape[k] != 1) return nullptr;
          if (!drop) shape.push_back(x->shape[k]);
        }
      }
    }
    r = std::make_shared<Const>(*x);
    r->shape = shape;
    if (r->numel() != m) return nullptr;
  } else if (op == "Gather") {
    const Const* x = in(0);
    const Const* idx = in(1);
    if (!x || !idx || idx->is_float || x->shape.empty()) return nullptr;
    int64_t axis = n.attr_i("axis", 0);
    const int64_t rank = int64_t(x->shape.size());
    if (!normalize_axis(axis, rank)) return nullptr;
    std::vector<int64_t> shape(x->shape.begin(), x->shape.begin() + axis);
    shape.insert(shape.end(), idx->shape.begin(), idx->shape.end());
    shape.insert(shape.end(), x->shape.begin() + axis + 1, x->shape.end());
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < axis; ++k) outer *= x->shape[k];
    for (int64_t k = axis + 1; k < rank; ++k) inner *= x->shape[k];
    const int64_t dim = x->shape[axis], ni = idx->numel();
    if (ni > 0 && outer * inner > kMaxEvaluated / ni) return nullptr;
    r = like(*x, shape);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < ni; ++j) {
        int64_t g = idx->i[j];
        if (g < 0) g += dim;
        if (g < 0 || g >= dim) return nullptr;
        for (int64_t e = 0; e < inner; ++e) copy_elem(*x, (o * dim + g) * inner + e, *r, (o * ni + j) * inner + e);
      }
  } else if (op == "Concat") {
    std::vector<const Const*> xs;
    for (size_t k = 0; k < n.in.size(); ++k) {
      const Const* x = in(k);
      if (!x || (!xs.empty() && (x->is_float != xs[0]->is_float || x->shape.size() != xs[0]->shape.size())))
        return nullptr;
      xs.push_back(x);
    }
    if (xs.empty() || xs[0]->shape.empty()) return nullptr;
    int64_t axis = n.attr_i("axis", 0);
    const int64_t rank = int64_t(xs[0]->shape.size());
    if (!normalize_axis(axis, rank)) return nullptr;
    std::vector<int64_t> shape = xs[0]->shape;
    shape[axis] = 0;
    for (const Const* x : xs) {
      for (int64_t k = 0; k < rank; ++k)
        if (k != axis && x->shape[k] != shape[k]) return nullptr;
      shape[axis] += x->shape[axis];
    }
    r = like(*xs[0], shape);
    if (r->numel() > kMaxEvaluated) return nullptr;
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < axis; ++k) outer *= shape[k];
    for (int64_t k = axis + 1; k < rank; ++k) inner *= shape[k];
    int64_t offset = 0;
    for (const Const* x : xs) {
      const int64_t len = x->shape[axis] * inner;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t e = 0; e < len; ++e) copy_elem(*x, o * len + e, *r, o * shape[axis] * inner + offset + e);
      offset += len;
    }
  }
  if (!r || r->numel() > kMaxEvaluated || evaluated_ + r->numel() > kMaxEvaluatedTotal) return nullptr;
  evaluated_ += r->numel();
  if (int64_t(r->is_float ? r->f.size() : r->i.size()) != r->numel()) return nullptr;
  auto& slot = cache_[n.out[0]];
  slot = std::move(r);
  return slot.get();
}

}  // namespace swinrt::onnx_import
