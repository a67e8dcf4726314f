// st-inspect --diff's default: the differences grouped by kind of change, quantization type and
// tensor name suffix, with the decoder layers each group spans (format_diff lists them all).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "libst/inspect/inspect.hpp"
#include "libst/inspect/internal.hpp"

namespace st {
namespace {

using ojson = nlohmann::ordered_json;

// Tensors with the same change: how many, in which decoder layers, how many outside any layer.
struct Group {
  std::string kind;  // "type", "only in A", "only in B", "dtype", "shape", "values"
  std::string what;  // the change, e.g. "W8A8 -> W8A8_DYNAMIC" or "*.input_scale (W8A8)"
  uint64_t count = 0;
  std::set<int64_t> layers;
  uint64_t outside = 0;  // tensors in no decoder layer
  std::string first;     // the first tensor's name (shown when it is the only one)
  double min_cosine = 1, max_abs_diff = 0;  // "values" groups
};

// The decoder layer of a name: its first all-digit dotted component ("model.layers.3.mlp..." -> 3).
int64_t layer_of(const std::string& name) {
  size_t start = 0;
  while (start <= name.size()) {
    const size_t end = std::min(name.find('.', start), name.size());
    const std::string part = name.substr(start, end - start);
    if (!part.empty() && part.size() < 10 && std::all_of(part.begin(), part.end(), ::isdigit)) return std::stoll(part);
    start = end + 1;
  }
  return -1;
}

// "*.input_scale": what the tensor is within its layer, whatever the layer and module.
std::string suffix_of(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : "*" + name.substr(dot);
}

std::string or_absent(const std::string& s) { return s.empty() ? "(absent)" : s; }

class Grouper {
 public:
  Group& add(const std::string& kind, const std::string& what, const std::string& name) {
    auto [it, fresh] = index_.try_emplace(kind + "\n" + what, groups_.size());
    if (fresh) groups_.push_back(Group{kind, what, 0, {}, 0, name});
    Group& g = groups_[it->second];
    ++g.count;
    const int64_t layer = layer_of(name);
    if (layer < 0) ++g.outside;
    else g.layers.insert(layer);
    return g;
  }
  // Groups in kind order (the order kinds were first added), largest first within a kind.
  std::vector<Group> sorted() const {
    std::vector<Group> out = groups_;
    std::map<std::string, size_t> kind_rank;
    for (const auto& g : groups_) kind_rank.try_emplace(g.kind, kind_rank.size());
    std::stable_sort(out.begin(), out.end(), [&](const Group& a, const Group& b) {
      if (a.kind != b.kind) return kind_rank.at(a.kind) < kind_rank.at(b.kind);
      return a.count > b.count;
    });
    return out;
  }

 private:
  std::vector<Group> groups_;
  std::map<std::string, size_t> index_;
};

std::vector<Group> group_diff(const CheckpointDiff& d) {
  Grouper g;
  for (const auto& c : d.changed_type) g.add("type", or_absent(c.a) + " -> " + or_absent(c.b), c.name);
  auto typed = [](const std::string& name, const std::vector<std::string>& types, size_t i) {
    return suffix_of(name) + (i < types.size() && !types[i].empty() ? " (" + types[i] + ")" : "");
  };
  for (size_t i = 0; i < d.only_a.size(); ++i) g.add("only in A", typed(d.only_a[i], d.only_a_type, i), d.only_a[i]);
  for (size_t i = 0; i < d.only_b.size(); ++i) g.add("only in B", typed(d.only_b[i], d.only_b_type, i), d.only_b[i]);
  for (const auto& c : d.changed) {
    if (c.dtype_a != c.dtype_b)
      g.add("dtype", suffix_of(c.name) + ": " + dtype_name(c.dtype_a) + " -> " + dtype_name(c.dtype_b), c.name);
    if (c.shape_a != c.shape_b) g.add("shape", suffix_of(c.name), c.name);
  }
  for (const auto& v : d.values) {
    if (v.identical) continue;
    Group& x = g.add("values", suffix_of(v.name) + (v.comparable ? "" : " (not comparable)"), v.name);
    if (!v.comparable) continue;
    x.min_cosine = std::min(x.min_cosine, v.cosine);
    x.max_abs_diff = std::max(x.max_abs_diff, v.max_abs_diff);
  }
  return g.sorted();
}

// 0,1,2,3,5,7,8 -> "0-3, 5, 7-8"
std::string ranges(const std::set<int64_t>& layers) {
  std::string out;
  for (auto it = layers.begin(); it != layers.end();) {
    const int64_t from = *it;
    int64_t to = from;
    while (++it != layers.end() && *it == to + 1) ++to;
    out += (out.empty() ? "" : ", ") + std::to_string(from) + (to > from ? "-" + std::to_string(to) : "");
  }
  return out;
}

std::string where(const Group& g) {
  if (g.count == 1) return g.first;
  std::string out;
  if (!g.layers.empty()) out = (g.layers.size() == 1 ? "layer " : "layers ") + ranges(g.layers);
  if (g.outside) out += (out.empty() ? "" : ", ") + std::to_string(g.outside) + " outside the layers";
  return out;
}

std::string values_text(const Group& g) {
  if (g.kind != "values" || g.what.find("not comparable") != std::string::npos) return "";
  char buf[96];
  std::snprintf(buf, sizeof buf, "  (min cosine %.6g, max abs diff %.6g)", g.min_cosine, g.max_abs_diff);
  return buf;
}

// Top-level keys, the quantization types first.
std::vector<StringChange> tops_in_order(const CheckpointDiff& d) {
  std::vector<StringChange> out = d.changed_top;
  auto rank = [](const std::string& k) {
    static const char* const first[] = {"model_quant_type", "fa_quant_type", "kv_quant_type"};
    for (int i = 0; i < 3; ++i)
      if (k == first[i]) return i;
    return 3;
  };
  std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) { return rank(a.name) < rank(b.name); });
  return out;
}

}  // namespace

std::string format_diff_summary(const CheckpointDiff& d) {
  if (d.equal()) return "equal\n";
  std::string out;
  for (const auto& c : tops_in_order(d))
    out += "description: " + c.name + ": " + or_absent(c.a) + " -> " + or_absent(c.b) + "\n";
  const auto groups = group_diff(d);
  std::map<std::string, uint64_t> per_kind;
  for (const auto& g : groups) per_kind[g.kind] += g.count;
  std::string kind;
  for (const auto& g : groups) {
    if (g.kind != kind) {
      kind = g.kind;
      out += kind + ": " + std::to_string(per_kind[kind]) + (per_kind[kind] == 1 ? " tensor\n" : " tensors\n");
    }
    char count[32];
    std::snprintf(count, sizeof count, "%8llu  ", static_cast<unsigned long long>(g.count));
    out += count + g.what + "  " + where(g) + values_text(g) + "\n";
  }
  return out + different_line(d) + " (--detail lists each tensor)\n";
}

ojson diff_summary_json(const CheckpointDiff& d) {
  ojson j = ojson::array();
  for (const auto& g : group_diff(d)) {
    ojson x = {{"kind", g.kind}, {"what", g.what}, {"count", g.count}, {"layers", g.layers},
               {"outside_layers", g.outside}};
    if (g.kind == "values") x["min_cosine"] = g.min_cosine, x["max_abs_diff"] = g.max_abs_diff;
    j.push_back(std::move(x));
  }
  return j;
}

}  // namespace st
