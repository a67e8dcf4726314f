// The helpers of the checks (names, shapes, dtypes, st-shard's recipe) and the order in which a
// unit is checked.
#include "libst/verify/checker.hpp"

#include "libst/format/side_files.hpp"
#include "libst/w8a8sc/codec.hpp"

#include <cmath>
#include <cstring>

namespace st::verify_detail {

std::pair<std::string, std::string> split_last(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos) return {"", name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  return buf;
}

double roundoff(DType t) {
  switch (t) {
    case DType::F16: return std::ldexp(1.0, -11);
    case DType::BF16: return std::ldexp(1.0, -8);
    default: return std::ldexp(1.0, -24);
  }
}

// config.json values, tolerant of a key of the wrong type (treated as absent).
int64_t config_int(const nlohmann::json& c, const char* key, int64_t fallback) {
  const auto it = c.find(key);
  return it != c.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

// The float dtype of the model the checkpoint was quantized from.
DType model_dtype(const Unit& u) {
  if (auto d = config_dtype(u.config)) return *d;
  for (const auto& name : u.order)
    if (split_last(name).second == "input_scale" && dtype_is_float(u.find(name)->info->dtype)) return u.find(name)->info->dtype;
  for (const auto& name : u.order)
    if (u.desc && u.desc->type_of(name) == std::optional<std::string>("FLOAT") && dtype_is_float(u.find(name)->info->dtype))
      return u.find(name)->info->dtype;
  return DType::F16;
}

std::vector<float> read_f32(const Unit& u, const Loc& l) {
  std::vector<float> out(l.info->numel());
  const ByteView v = u.data(l);
  if (!to_f32(l.info->dtype, v.data, out.data(), out.size())) out.clear();
  return out;
}

std::array<int64_t, 5> read_info(const Unit& u, const Loc& info) {
  std::array<int64_t, 5> v{};
  for (size_t i = 0; i < v.size(); ++i) v[i] = load_unaligned<int64_t>(u.data(info).data, i);
  return v;
}

Result<const int8_t*> int8_weight(const Unit& u, const std::string& prefix, const std::string& type, int64_t n,
                                  int64_t k, std::vector<int8_t>& buf) {
  const Loc* w = u.find(prefix + ".weight");
  if (type != "W8A8SC") return reinterpret_cast<const int8_t*>(u.data(*w).data);
  const Loc* idx = u.find(prefix + ".index");
  const auto info = read_info(u, *u.find(prefix + ".info"));
  buf.resize(static_cast<size_t>(n * k));
  const ByteView wv = u.data(*w), iv = u.data(*idx);
  ST_CHECK(w8a8sc::decompress(reinterpret_cast<const int8_t*>(wv.data), wv.size, reinterpret_cast<const int8_t*>(iv.data),
                              iv.size, info.data(), info.size(), buf.data()));
  return buf.data();
}

float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// The pieces of the part's st-shard recipe (read by verify.cpp into u.shard, libst/shard/recipe.hpp);
// absent (present = false) when the part was not written by st-shard or its recipe is malformed
// (a problem).
Recipe parse_recipe(const Unit& u, Sink& sink) {
  Recipe r;
  if (!u.shard) return r;
  auto entries = st::parse_recipe(u.shard->recipe, u.file_names[0]);
  if (!entries) {
    sink.add("structure", entries.error().file, entries.error().tensor, entries.error().message);
    return r;
  }
  r.tp = u.shard->tp;
  r.rank = u.shard->rank;
  for (const ShardSource& e : *entries) {
    r.sources.insert(e.name);
    if (e.rule.sections.empty()) {
      r.into[e.into].push_back(Piece{e.name, split_kind_name(e.rule.kind), e.rule.dim, e.rule.chunks, e.shape, e.at});
      continue;
    }
    int64_t at = e.at;  // a fused tensor: this rank's rows of each section, one after another
    for (const RowRange& rr : e.rule.rows_of(r.rank, r.tp, e.shape[0])) {
      r.into[e.into].push_back(Piece{e.name, "rows", 0, 1, e.shape, at, rr.first, rr.count});
      at += rr.count;
    }
  }
  r.present = true;
  return r;
}

Slice slice_of(const Piece& p, int rank, int tp) {
  const int64_t rows = p.shape.empty() ? 1 : p.shape[0];
  int64_t cols = 1;
  for (size_t i = 1; i < p.shape.size(); ++i) cols *= p.shape[i];
  Slice s{0, rows, 0, cols};
  if (p.kind == "rows") return Slice{p.r0, p.nr, 0, cols};
  if (p.kind != "split" || p.chunks <= 0) return s;
  const int64_t chunk = static_cast<int64_t>(rank) * p.chunks / tp;
  if (p.dim == 0) s.nr = rows / p.chunks, s.r0 = chunk * s.nr;
  else if (p.dim == 1 && p.shape.size() == 2) s.nc = cols / p.chunks, s.c0 = chunk * s.nc;
  return s;
}

void UnitChecker::run() {
  if (!u_.desc) {
    if (!u_.order.empty() && u_.parts == 1)
      sink_.note("no quant_model_description.json: a float checkpoint? only integrity (and FP8 block scales) was checked");
    return;
  }
  if (u_.parts > 1) recipe_ = parse_recipe(u_, sink_);
  check_description();
  collect_linears();
  start_smoothing();
  for (auto& l : linears_) {
    check_linear_layout(l);
    ++sink_.report->linears;
    if (l.ok) check_linear_values(l);
    const Loc* w = l.get("weight");
    sink_.meter.advance(w ? w->info->nbytes() : 0);
    for (const auto& [s, loc] : l.m) u_.release(*loc);
  }
  check_fused_groups();
  check_attention();
  check_float_tensors();
}

size_t count_linears(const Unit& u) {
  if (!u.desc) return 0;
  size_t n = 0;
  for (const auto& name : u.order)
    n += split_last(name).second == "weight" && kLinearTypes.count(u.desc->type_of(name).value_or("")) > 0;
  return n;
}

void check_unit(const Unit& u, CheckContext& ctx) {
  check_block_scales(u, ctx.sink);
  UnitChecker(u, ctx).run();
}

}  // namespace st::verify_detail
