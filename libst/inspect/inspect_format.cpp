// Text and JSON renderings of st-inspect's listings and diffs (strings only; no I/O).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "libst/inspect/inspect.hpp"
#include "libst/inspect/internal.hpp"

namespace st {
namespace {

using ojson = nlohmann::ordered_json;

std::string fmt_g(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string human_bytes(uint64_t b) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  else std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

// A table of left-aligned text columns and right-aligned numeric ones.
struct Table {
  std::vector<std::string> head;
  std::vector<bool> right;
  std::vector<std::vector<std::string>> rows;

  std::string render() const {
    std::vector<size_t> w(head.size());
    for (size_t c = 0; c < head.size(); ++c) w[c] = head[c].size();
    for (const auto& r : rows)
      for (size_t c = 0; c < r.size(); ++c) w[c] = std::max(w[c], r[c].size());
    std::string out;
    auto line = [&](const std::vector<std::string>& cells) {
      std::string l;
      for (size_t c = 0; c < cells.size(); ++c) {
        const std::string pad(w[c] - cells[c].size(), ' ');
        if (c) l += "  ";
        l += right[c] ? pad + cells[c] : cells[c] + (c + 1 < cells.size() ? pad : "");
      }
      out += l + "\n";
    };
    line(head);
    for (const auto& r : rows) line(r);
    return out;
  }
};

std::string count_of(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// 4195328 -> "4.20 M" (thousands, millions, billions: how parameter counts are spoken of).
std::string human_count(uint64_t n) {
  static const char* const units[] = {"", " k", " M", " B", " T"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f%s" : "%.0f%s", v, units[u]);
  return buf;
}

std::string count_line(const CountBytes& c) {
  return count_of(c.tensors, "tensor", "tensors") + ", " + count_of(c.params, "parameter", "parameters") + ", " +
         count_of(c.bytes, "byte", "bytes");
}

std::string format_summary(const Summary& s, const std::string& layout, size_t files) {
  std::string out;
  out += "tensors: " + std::to_string(s.tensors) + ", " + count_of(s.bytes, "byte", "bytes") + " (" + human_bytes(s.bytes) +
         ")\n";
  out += "parameters: " + std::to_string(s.params) + (s.params >= 1000 ? " (" + human_count(s.params) + ")" : "") + "\n";
  if (!layout.empty())
    out += "layout: " + layout + " (" + count_of(files, "file", "files") + ")\n";
  for (const auto& [k, v] : s.by_dtype) out += "dtype " + k + ": " + count_line(v) + "\n";
  for (const auto& [k, v] : s.by_type) out += "type " + k + ": " + count_line(v) + "\n";
  if (!s.model_quant_type.empty()) out += "model_quant_type: " + s.model_quant_type + "\n";
  if (!s.fa_quant_type.empty()) out += "fa_quant_type: " + s.fa_quant_type + "\n";
  if (!s.kv_quant_type.empty()) out += "kv_quant_type: " + s.kv_quant_type + "\n";
  return out;
}

std::string format_section(const Section& s) {
  bool any_type = false, any_stats = false;
  for (const auto& r : s.tensors) {
    any_type |= !r.type.empty();
    any_stats |= r.stats.has_value();
  }
  Table t;
  t.head = {"NAME", "DTYPE", "SHAPE", "BYTES"};
  t.right = {false, false, false, true};
  if (any_type) {
    t.head.push_back("TYPE");
    t.right.push_back(false);
  }
  if (any_stats) {
    for (const char* h : {"MIN", "MAX", "MEAN", "STD", "ABSMAX", "ZEROS", "NAN", "INF"}) {
      t.head.push_back(h);
      t.right.push_back(true);
    }
  }
  for (const auto& r : s.tensors) {
    std::vector<std::string> row = {r.name, dtype_name(r.dtype), format_shape(r.shape), std::to_string(r.bytes)};
    if (any_type) row.push_back(r.type.empty() ? "-" : r.type);
    if (any_stats) {
      if (r.stats) {
        const TensorStats& x = *r.stats;
        for (double v : {x.min, x.max, x.mean, x.std, x.absmax, x.zero_fraction()}) row.push_back(fmt_g(v));
        row.push_back(std::to_string(x.nans));
        row.push_back(std::to_string(x.infs));
      } else {
        for (int i = 0; i < 8; ++i) row.push_back("-");
      }
    }
    t.rows.push_back(std::move(row));
  }
  return t.render() + "\n" + format_summary(s.summary, s.layout, s.files.size());
}

ojson summary_json(const Summary& s, const std::string& layout) {
  ojson j = ojson::object();
  j["tensors"] = s.tensors;
  j["params"] = s.params;
  j["bytes"] = s.bytes;
  auto counts = [](const CountBytes& v) { return ojson{{"tensors", v.tensors}, {"params", v.params}, {"bytes", v.bytes}}; };
  j["dtypes"] = ojson::object();
  for (const auto& [k, v] : s.by_dtype) j["dtypes"][k] = counts(v);
  j["types"] = ojson::object();
  for (const auto& [k, v] : s.by_type) j["types"][k] = counts(v);
  j["model_quant_type"] = s.model_quant_type.empty() ? ojson(nullptr) : ojson(s.model_quant_type);
  j["fa_quant_type"] = s.fa_quant_type.empty() ? ojson(nullptr) : ojson(s.fa_quant_type);
  if (!s.kv_quant_type.empty()) j["kv_quant_type"] = s.kv_quant_type;
  j["layout"] = layout;
  return j;
}

ojson shape_json(const std::vector<int64_t>& shape) {
  ojson j = ojson::array();
  for (auto d : shape) j.push_back(d);
  return j;
}

// NaN and Inf are not JSON numbers: they become null.
ojson num(double v) { return std::isfinite(v) ? ojson(v) : ojson(nullptr); }

ojson stats_json(const TensorStats& x) {
  ojson j = ojson::object();
  j["min"] = num(x.min);
  j["max"] = num(x.max);
  j["mean"] = num(x.mean);
  j["std"] = num(x.std);
  j["absmax"] = num(x.absmax);
  j["zero_fraction"] = num(x.zero_fraction());
  j["nan"] = x.nans;
  j["inf"] = x.infs;
  return j;
}

ojson section_json(const Section& s, bool with_stats) {
  ojson j = ojson::object();
  if (!s.name.empty()) j["name"] = s.name;
  j["layout"] = s.layout;
  j["files"] = s.files;
  j["tensors"] = ojson::array();
  for (const auto& r : s.tensors) {
    ojson t = ojson::object();
    t["name"] = r.name;
    t["dtype"] = dtype_name(r.dtype);
    t["shape"] = shape_json(r.shape);
    t["bytes"] = r.bytes;
    if (!r.type.empty()) t["type"] = r.type;
    if (with_stats) t["stats"] = r.stats ? stats_json(*r.stats) : ojson(nullptr);
    j["tensors"].push_back(std::move(t));
  }
  j["summary"] = summary_json(s.summary, s.layout);
  return j;
}

std::string or_absent(const std::string& s) { return s.empty() ? "(absent)" : s; }
ojson or_null(const std::string& s) { return s.empty() ? ojson(nullptr) : ojson(s); }

}  // namespace

std::string format_shape(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::string format_inventory(const Inventory& inv) {
  if (!inv.parts) return inv.sections.empty() ? std::string() : format_section(inv.sections.front());
  std::string out;
  for (const auto& s : inv.sections) out += "== " + s.name + " ==\n" + format_section(s) + "\n";
  out += "== total: " + std::to_string(inv.sections.size()) + " parts ==\n";
  return out + format_summary(inv.total, "", 0);
}

ojson inventory_json(const Inventory& inv) {
  bool with_stats = false;
  for (const auto& s : inv.sections)
    for (const auto& r : s.tensors) with_stats |= r.stats.has_value();
  ojson j = ojson::object();
  j["path"] = inv.path;
  j["layout"] = inv.layout;
  if (inv.parts) {
    j["parts"] = ojson::array();
    for (const auto& s : inv.sections) j["parts"].push_back(section_json(s, with_stats));
    j["summary"] = summary_json(inv.total, inv.layout);
    return j;
  }
  const ojson s = inv.sections.empty() ? ojson::object() : section_json(inv.sections.front(), with_stats);
  for (auto it = s.begin(); it != s.end(); ++it)
    if (it.key() != "layout") j[it.key()] = it.value();
  return j;
}

std::string format_diff(const CheckpointDiff& d) {
  std::string out;
  for (const auto& n : d.only_a) out += "only in A: " + n + "\n";
  for (const auto& n : d.only_b) out += "only in B: " + n + "\n";
  for (const auto& c : d.changed) {
    if (c.dtype_a != c.dtype_b)
      out += "dtype: " + c.name + ": " + dtype_name(c.dtype_a) + " -> " + dtype_name(c.dtype_b) + "\n";
    if (c.shape_a != c.shape_b)
      out += "shape: " + c.name + ": " + format_shape(c.shape_a) + " -> " + format_shape(c.shape_b) + "\n";
  }
  for (const auto& c : d.changed_type) out += "type: " + c.name + ": " + or_absent(c.a) + " -> " + or_absent(c.b) + "\n";
  for (const auto& c : d.changed_top)
    out += "description: " + c.name + ": " + or_absent(c.a) + " -> " + or_absent(c.b) + "\n";
  for (const auto& v : d.values) {
    out += "values: " + v.name + ": ";
    if (v.identical) out += "identical\n";
    else if (!v.comparable) out += "not comparable\n";
    else out += "max_abs_diff " + fmt_g(v.max_abs_diff) + " cosine " + fmt_g(v.cosine) + "\n";
  }
  if (d.equal()) return out + "equal\n";
  return out + different_line(d) + "\n";
}

std::string different_line(const CheckpointDiff& d) {
  size_t differing_values = 0;
  for (const auto& v : d.values) differing_values += !v.identical;
  std::string out = "different: " + std::to_string(d.only_a.size()) + " only in A, " + std::to_string(d.only_b.size()) +
                    " only in B, " + std::to_string(d.changed.size()) + " dtype/shape changed, " +
                    std::to_string(d.changed_type.size()) + " type changed, " + std::to_string(d.changed_top.size()) +
                    " description keys changed";
  if (d.values_compared) out += ", " + std::to_string(differing_values) + " values differ";
  return out;
}

ojson diff_json(const CheckpointDiff& d) {
  ojson j = ojson::object();
  j["a"] = d.a;
  j["b"] = d.b;
  j["equal"] = d.equal();
  j["only_a"] = d.only_a;
  j["only_b"] = d.only_b;
  j["changed"] = ojson::array();
  for (const auto& c : d.changed) {
    ojson x = ojson::object();
    x["name"] = c.name;
    x["a"] = {{"dtype", dtype_name(c.dtype_a)}, {"shape", shape_json(c.shape_a)}};
    x["b"] = {{"dtype", dtype_name(c.dtype_b)}, {"shape", shape_json(c.shape_b)}};
    j["changed"].push_back(std::move(x));
  }
  j["changed_type"] = ojson::array();
  for (const auto& c : d.changed_type) j["changed_type"].push_back({{"name", c.name}, {"a", or_null(c.a)}, {"b", or_null(c.b)}});
  j["changed_top"] = ojson::array();
  for (const auto& c : d.changed_top) j["changed_top"].push_back({{"key", c.name}, {"a", or_null(c.a)}, {"b", or_null(c.b)}});
  j["summary"] = diff_summary_json(d);
  if (d.values_compared) {
    j["values"] = ojson::array();
    for (const auto& v : d.values) {
      ojson x = ojson::object();
      x["name"] = v.name;
      x["identical"] = v.identical;
      x["comparable"] = v.comparable;
      x["max_abs_diff"] = v.comparable ? num(v.max_abs_diff) : ojson(nullptr);
      x["cosine"] = v.comparable ? num(v.cosine) : ojson(nullptr);
      j["values"].push_back(std::move(x));
    }
  }
  return j;
}

}  // namespace st
