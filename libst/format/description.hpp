// quant_model_description.json: which quantization each stored tensor carries.
//
// A flat JSON object (msModelSlim's save format, read by MindIE-LLM and vllm-ascend):
//   { "model_quant_type": "W8A8",            top-level keys first
//     "fa_quant_type": "FAQuant",            only with attention quantization
//     "model.layers.0.self_attn.quant_type": "INT8",   FAKQuant per-attention marker
//     "model.embed_tokens.weight": "FLOAT",  then one entry per stored tensor
//     "model.layers.0.self_attn.q_proj.weight": "W8A8", ... }
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "libst/core/error.hpp"

namespace st {

// The tensor type strings a description may use.
extern const char* const kQuantTypes[];  // FLOAT W8A8 W8A8S W8A8SC W8A8_DYNAMIC FAQuant C8
bool is_quant_type(std::string_view s);

class Description {
 public:
  static Result<Description> parse(std::string_view json_text);
  static Result<Description> load(const std::string& path);
  // Deterministic JSON: top-level keys in insertion order, then tensors in insertion order.
  std::string dump() const;

  // Top-level keys: model_quant_type, fa_quant_type, kv_quant_type, "<attn>.quant_type", ...
  std::optional<std::string> top(std::string_view key) const;
  void set_top(const std::string& key, const std::string& value);
  const std::vector<std::pair<std::string, std::string>>& top_entries() const { return top_; }

  // Tensor entries.
  std::optional<std::string> type_of(std::string_view tensor) const;
  void set_type(const std::string& tensor, const std::string& type);
  const std::vector<std::pair<std::string, std::string>>& tensor_entries() const { return tensors_; }

  std::string model_quant_type() const { return top("model_quant_type").value_or(""); }

 private:
  std::vector<std::pair<std::string, std::string>> top_, tensors_;
  std::map<std::string, size_t, std::less<>> top_index_, tensor_index_;
};

// Differences between two descriptions, for st-inspect --diff.
struct DescriptionDiff {
  std::vector<std::string> only_a, only_b;  // tensor names
  std::vector<std::pair<std::string, std::pair<std::string, std::string>>> changed_type;  // name, (a, b)
  std::vector<std::pair<std::string, std::pair<std::string, std::string>>> changed_top;   // key, (a, b); "" = absent
  bool empty() const { return only_a.empty() && only_b.empty() && changed_type.empty() && changed_top.empty(); }
};
DescriptionDiff compare(const Description& a, const Description& b);

}  // namespace st
