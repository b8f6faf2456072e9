// An ONNX graph as plain structs (no protobuf types past onnx_graph.cpp):
// nodes, attributes, initializers decoded to float or int64, producer and
// consumer maps, and a small constant evaluator for the ops exporters put
// between an initializer and its use (Transpose, Reshape, Unsqueeze, Gather, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace swinrt::onnx_import {

// A constant tensor, floating point (any ONNX float type, held as float) or
// integer (any ONNX integer or bool type, held as int64).
struct Const {
  std::vector<int64_t> shape;
  bool is_float = true;
  std::vector<float> f;
  std::vector<int64_t> i;
  int dtype = 0;  // the ONNX TensorProto.DataType it was stored as
  int64_t numel() const;
  double at(int64_t k) const { return is_float ? double(f[size_t(k)]) : double(i[size_t(k)]); }
};

struct Attr {
  int type = 0;  // AttributeProto.AttributeType
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::shared_ptr<Const> t;
};

struct Node {
  int index = 0;
  std::string name, op, domain;
  std::vector<std::string> in, out;
  std::map<std::string, Attr> attrs;

  const Attr* attr(const std::string& key) const;
  int64_t attr_i(const std::string& key, int64_t fallback) const;
  float attr_f(const std::string& key, float fallback) const;
  std::string attr_s(const std::string& key, const std::string& fallback) const;
  const std::string& input(size_t k) const;  // "" when absent
  // "'name' (Op)", or "node #i (Op)" for a node without a name.
  std::string label() const;
};

struct ValueInfo {
  std::string name;
  int elem_type = 0;
  std::vector<int64_t> dims;  // -1 for a symbolic or unknown dimension
  bool has_shape = false;
};

class Graph {
 public:
  // Parses a serialized ModelProto; `where` names it in errors, `base_dir`
  // (empty: none) is where tensors with external data are looked up.
  Graph(const void* data, size_t size, const std::string& where, const std::string& base_dir);

  const std::string& where() const { return where_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<ValueInfo>& inputs() const { return inputs_; }
  const std::vector<ValueInfo>& outputs() const { return outputs_; }
  int64_t opset() const { return opset_; }
  const std::string& producer() const { return producer_; }

  const Node* producer_of(const std::string& value) const;
  // Consumers of `value` in graph order, without Shape and Size nodes (they
  // read only the shape of an activation, never its values).
  std::vector<const Node*> consumers(const std::string& value) const;
  bool is_graph_output(const std::string& value) const;
  // True when `value` depends on a graph input through values (not only
  // through its shape): an activation, as opposed to weights and shape arithmetic.
  bool is_activation(const std::string& value) const { return activations_.count(value) > 0; }

  // The value of `value` when it is a constant: an initializer, a Constant
  // node, or one of a few shape and indexing ops applied to constants.
  // nullptr otherwise. Cached.
  const Const* constant(const std::string& value) const;
  // The initializer named `value`, without evaluation.
  const Const* initializer(const std::string& value) const;

 private:
  const Const* evaluate(const Node& n, int depth) const;
  const Const* constant_at(const std::string& value, int depth) const;

  std::string where_, producer_;
  int64_t opset_ = 0;
  std::vector<Node> nodes_;
  std::vector<ValueInfo> inputs_, outputs_;
  std::map<std::string, std::shared_ptr<Const>> initializers_;
  std::map<std::string, const Node*> producers_;
  std::map<std::string, std::vector<const Node*>> consumers_;
  std::set<std::string> activations_, outputs_set_;
  mutable std::map<std::string, std::shared_ptr<Const>> cache_;
  mutable std::set<std::string> not_constant_;
  mutable int64_t evaluated_ = 0;  // elements held by cache_
};

}  // namespace swinrt::onnx_import
