// st-verify's rules: description <-> tensors, per-type dtypes and shapes, fused groups,
// attention scales, the W8A8 arithmetic, and the numeric comparison with the float model.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <set>

#include "libst/core/parallel.hpp"
#include "libst/verify/internal.hpp"
#include "libst/w8a8sc/codec.hpp"

namespace st::verify_detail {
namespace {

const std::set<std::string> kLinearTypes = {"W8A8", "W8A8S", "W8A8SC", "W8A8_DYNAMIC"};
const std::set<std::string> kLinearSuffixes = {"weight",     "weight_scale", "weight_offset", "deq_scale", "quant_bias",
                                               "input_scale", "input_offset", "bias",         "index",     "info"};
constexpr int kMaxListed = 3;  // elements named per tensor before "and N more"

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
std::optional<DType> dtype_from_config(const nlohmann::json& c) {
  for (const char* key : {"torch_dtype", "dtype"}) {
    const auto it = c.find(key);
    if (it == c.end() || !it->is_string()) continue;
    const std::string v = it->get<std::string>();
    if (v == "float16") return DType::F16;
    if (v == "bfloat16") return DType::BF16;
    if (v == "float32") return DType::F32;
  }
  return std::nullopt;
}

// The float dtype of the model the checkpoint was quantized from.
DType model_dtype(const Unit& u) {
  if (auto d = dtype_from_config(u.config)) return *d;
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

float bits_to_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// One source tensor's rows inside a part tensor (an entry of st-shard's st.shard.recipe).
struct Piece {
  std::string source;  // tensor name in the unsharded checkpoint
  std::string kind;    // replicate | rank0 | split
  int dim = 0;
  int64_t chunks = 1;
  std::vector<int64_t> shape;  // the source's shape
  int64_t at = 0;              // first row (dim 0) inside the part tensor
};

struct Recipe {
  bool present = false;
  int tp = 1, rank = 0;
  std::map<std::string, std::vector<Piece>> into;  // part tensor -> pieces
  std::set<std::string> sources;
};

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
    r.into[e.into].push_back(Piece{e.name, split_kind_name(e.rule.kind), e.rule.dim, e.rule.chunks, e.shape, e.at});
  }
  r.present = true;
  return r;
}

// The block of a 2-D (or 1-D) source that a rank holds: rows r0.. r0+nr, columns c0.. c0+nc.
struct Slice {
  int64_t r0 = 0, nr = 0, c0 = 0, nc = 0;
};
Slice slice_of(const Piece& p, int rank, int tp) {
  const int64_t rows = p.shape.empty() ? 1 : p.shape[0];
  int64_t cols = 1;
  for (size_t i = 1; i < p.shape.size(); ++i) cols *= p.shape[i];
  Slice s{0, rows, 0, cols};
  if (p.kind != "split" || p.chunks <= 0) return s;
  const int64_t chunk = static_cast<int64_t>(rank) * p.chunks / tp;
  if (p.dim == 0) s.nr = rows / p.chunks, s.r0 = chunk * s.nr;
  else if (p.dim == 1 && p.shape.size() == 2) s.nc = cols / p.chunks, s.c0 = chunk * s.nc;
  return s;
}

struct Linear {
  std::string prefix, type;
  std::map<std::string, const Loc*> m;  // suffix -> tensor
  int64_t n = -1, k = -1;
  bool ok = true;  // dtypes and shapes right: arithmetic may read it
  const Loc* get(const char* s) const {
    const auto it = m.find(s);
    return it == m.end() ? nullptr : it->second;
  }
};

class UnitChecker {
 public:
  UnitChecker(const Unit& u, CheckContext& ctx) : u_(u), ctx_(ctx), sink_(ctx.sink), dt_(model_dtype(u)) {}
  void run();

 private:
  void problem(const char* check, const std::string& tensor, std::string msg) {
    sink_.add(check, tensor.empty() ? u_.desc_file : u_.file_of(tensor), tensor, std::move(msg));
  }
  void describe_problem(const std::string& tensor, std::string msg) { sink_.add("structure", u_.desc_file, tensor, std::move(msg)); }
  std::string type_of(const std::string& name) const { return u_.desc->type_of(name).value_or(""); }
  bool expect(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const std::string& why = {});
  void check_description();
  void collect_linears();
  void check_linear_layout(Linear& l);
  void check_linear_values(Linear& l);
  std::optional<std::vector<float>> known_bias(const Linear& l);
  void check_numerics(const Linear& l, const int8_t* wq, const std::vector<float>& ws, DType ws_dtype);
  void compare_weights(const std::string& name, const std::string& type, const std::string& tensor, const float* W,
                       int64_t w_stride, const int8_t* wq, const float* ws, int64_t rows, int64_t cols, DType ws_dt);
  std::vector<Piece> pieces_of(const std::string& name) const;
  // A W8A8SC .info tensor (I64 [5], checked by the caller) copied out of the mapping.
  std::array<int64_t, 5> read_info(const Loc& info) const {
    std::array<int64_t, 5> v{};
    for (size_t i = 0; i < v.size(); ++i) v[i] = load_unaligned<int64_t>(u_.data(info).data, i);
    return v;
  }
  void compare_float(const std::string& name, const Loc& l);
  void check_fused_groups();
  void check_attention();
  void check_float_tensors();

  const Unit& u_;
  CheckContext& ctx_;
  Sink& sink_;
  DType dt_;
  std::vector<Linear> linears_;
  std::map<std::string, size_t> linear_index_;
  Recipe recipe_;
};

bool UnitChecker::expect(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const std::string& why) {
  const Loc* l = u_.find(name);
  if (!l) return false;
  if (l->info->dtype == dtype && l->info->shape == shape) return true;
  problem("structure", name,
          std::string("is ") + dtype_name(l->info->dtype) + " " + shape_str(l->info->shape) + ", expected " +
              dtype_name(dtype) + " " + shape_str(shape) + (why.empty() ? "" : " (" + why + ")"));
  return false;
}

void UnitChecker::check_description() {
  const Description& d = *u_.desc;
  for (const auto& name : u_.order) {
    if (d.type_of(name)) continue;
    if (auto top = d.top(name)) describe_problem(name, "described as '" + *top + "', which is not a known type");
    else problem("structure", name, "stored but not in the description");
  }
  if (u_.unreadable)  // its tensors are somewhere in the file that does not parse
    sink_.note("described tensors not matched to weights: a weight file does not parse");
  else
    for (const auto& [name, type] : d.tensor_entries())
      if (!u_.find(name)) describe_problem(name, "described as " + type + " but not stored in any weight file");
  const std::string mqt = d.model_quant_type();
  std::set<std::string> used;
  for (const auto& [name, type] : d.tensor_entries())
    if (kLinearTypes.count(type) && split_last(name).second == "weight") used.insert(type);
  for (const auto& t : used)
    if (t != mqt) describe_problem("", "model_quant_type is '" + mqt + "' but linears are typed " + t);
  if (!is_quant_type(mqt) || mqt == "FAQuant" || mqt == "C8")
    describe_problem("", "model_quant_type '" + mqt + "' is not a linear quantization type");
}

void UnitChecker::collect_linears() {
  for (const auto& name : u_.order) {
    const std::string type = type_of(name);
    auto [prefix, suffix] = split_last(name);
    if (suffix == "weight" && kLinearTypes.count(type)) {
      linear_index_[prefix] = linears_.size();
      linears_.push_back(Linear{prefix, type, {}, -1, -1, true});
    }
  }
  for (const auto& name : u_.order) {
    const std::string type = type_of(name);
    auto [prefix, suffix] = split_last(name);
    const auto it = linear_index_.find(prefix);
    if (it == linear_index_.end()) {
      if (kLinearTypes.count(type))
        problem("structure", name, "typed " + type + " but '" + prefix + ".weight' is not a quantized linear weight");
      continue;
    }
    Linear& l = linears_[it->second];
    if (!kLinearSuffixes.count(suffix)) {
      if (kLinearTypes.count(type)) problem("structure", name, "unexpected tensor of a " + l.type + " linear");
      continue;
    }
    l.m[suffix] = u_.find(name);
    std::set<std::string> allowed = {l.type};
    if (l.type == "W8A8SC" && suffix != "weight") allowed.insert("W8A8S");
    if (suffix == "bias") allowed.insert("FLOAT");
    if (!type.empty() && !allowed.count(type)) describe_problem(name, "typed " + (type.empty() ? std::string("nothing") : type) +
                                                         " but belongs to the " + l.type + " linear '" + prefix + "'");
  }
}

void UnitChecker::check_linear_layout(Linear& l) {
  const bool dynamic = l.type == "W8A8_DYNAMIC", sc = l.type == "W8A8SC";
  std::vector<const char*> required = {"weight", "weight_scale", "weight_offset"};
  if (!dynamic) for (const char* s : {"deq_scale", "quant_bias", "input_scale", "input_offset"}) required.push_back(s);
  if (sc) for (const char* s : {"index", "info"}) required.push_back(s);
  for (const char* s : required)
    if (!l.get(s)) {
      describe_problem(l.prefix + "." + s, std::string("missing: a ") + l.type + " linear needs it");
      l.ok = false;
    }
  const Loc* w = l.get("weight");
  if (!w) return;
  if (sc) {
    const Loc* info = l.get("info");
    if (!info || !expect(l.prefix + ".info", DType::I64, {5})) return void(l.ok = false);
    const auto info_values = read_info(*info);
    auto grid = w8a8sc::grid_from_info(info_values.data(), info_values.size());
    if (!grid) {
      problem("structure", l.prefix + ".info", grid.error().message);
      return void(l.ok = false);
    }
    l.n = grid->n;
    l.k = grid->k;
    if (w->info->dtype != DType::I8 || w->info->shape.size() != 1) {
      problem("structure", l.prefix + ".weight", std::string("is ") + dtype_name(w->info->dtype) + " " +
                                                     shape_str(w->info->shape) + ", expected a 1-D I8 tile stream");
      l.ok = false;
    }
    if (l.get("index") && !expect(l.prefix + ".index", DType::I8, {static_cast<int64_t>(grid->index_bytes())},
                                  "ceil(k/256) * ceil(n/128) * 8"))
      l.ok = false;
  } else {
    if (w->info->dtype != DType::I8 || w->info->shape.size() != 2) {
      problem("structure", l.prefix + ".weight", std::string("is ") + dtype_name(w->info->dtype) + " " +
                                                     shape_str(w->info->shape) + ", expected I8 [n,k]");
      return void(l.ok = false);
    }
    l.n = w->info->shape[0];
    l.k = w->info->shape[1];
  }
  const int64_t n = l.n;
  for (const char* s : {"weight_scale", "weight_offset"}) {
    const Loc* t = l.get(s);
    if (t && (!dtype_is_float(t->info->dtype) || t->info->shape != std::vector<int64_t>{n, 1})) {
      problem("structure", l.prefix + "." + s, std::string("is ") + dtype_name(t->info->dtype) + " " +
                                                   shape_str(t->info->shape) + ", expected float [" + std::to_string(n) + ",1]");
      l.ok = false;
    }
  }
  if (dynamic) return;
  const DType deq = dt_ == DType::F16 ? DType::I64 : DType::F32;
  const std::string model = dt_ == DType::F16 ? "fp16" : dt_ == DType::BF16 ? "bf16" : "fp32";
  bool ok = true;
  if (l.get("deq_scale"))
    ok &= expect(l.prefix + ".deq_scale", deq, {n},
                 dt_ == DType::F16 ? "an fp16 model stores fp32 bits in int64" : "a " + model + " model stores fp32");
  if (l.get("quant_bias")) ok &= expect(l.prefix + ".quant_bias", DType::I32, {n});
  for (const char* s : {"input_scale", "input_offset"})
    if (l.get(s)) ok &= expect(l.prefix + "." + s, dt_, {1}, "the " + model + " model's dtype");
  if (l.get("bias")) {
    const Loc* b = l.get("bias");
    if (!dtype_is_float(b->info->dtype) || b->info->shape != std::vector<int64_t>{n}) {
      problem("structure", l.prefix + ".bias", "is " + std::string(dtype_name(b->info->dtype)) + " " +
                                                   shape_str(b->info->shape) + ", expected float [" + std::to_string(n) + "]");
      ok = false;
    }
  }
  l.ok = l.ok && ok;
}

bool is_attention_leaf(const std::string& leaf) {
  static const std::set<std::string> a = {"q_proj", "k_proj", "v_proj", "o_proj", "query_key_value", "q_a_proj",
                                          "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj"};
  return a.count(leaf) > 0;
}
bool is_row_parallel(const std::string& prefix) {
  const std::string leaf = split_last(prefix).second;
  return leaf == "o_proj" || leaf == "down_proj";
}

// The float bias of a linear when it is known: stored beside it, from the float model, or zero
// because the architecture has none there.
std::optional<std::vector<float>> UnitChecker::known_bias(const Linear& l) {
  if (const Loc* b = l.get("bias")) return read_f32(u_, *b);
  const bool sliced = u_.parts > 1 && !is_row_parallel(l.prefix);
  if (ctx_.against && sliced && recipe_.present) {  // the float bias rows this part's rows came from
    std::vector<float> out(static_cast<size_t>(l.n), 0.0f);
    for (const Piece& p : pieces_of(l.prefix + ".quant_bias")) {
      const Slice sl = slice_of(p, recipe_.rank, recipe_.tp);
      if (p.at < 0 || p.at + sl.nr > l.n) return std::nullopt;
      const TensorEntry* e = ctx_.against->find(split_last(p.source).first + ".bias");
      if (!e) continue;  // no bias: zeros
      auto v = ctx_.against->read_f32(*e);
      if (!v || static_cast<int64_t>(v->size()) != (p.shape.empty() ? 1 : p.shape[0])) return std::nullopt;
      std::copy(v->begin() + sl.r0, v->begin() + sl.r0 + sl.nr, out.begin() + p.at);
    }
    return out;
  }
  if (ctx_.against && !sliced) {
    if (const TensorEntry* e = ctx_.against->find(l.prefix + ".bias")) {
      auto v = ctx_.against->read_f32(*e);
      if (v && static_cast<int64_t>(v->size()) == l.n) return std::move(v.value());
      return std::nullopt;
    }
    return std::vector<float>(static_cast<size_t>(l.n), 0.0f);
  }
  if (!u_.model) return std::nullopt;  // no valid config of a known family: the bias is unknown
  const std::string leaf = split_last(l.prefix).second;
  const bool attn = is_attention_leaf(leaf);
  const bool qwen2_qkv = u_.model->family == model::Family::qwen2 &&
                         (leaf == "q_proj" || leaf == "k_proj" || leaf == "v_proj" || leaf == "query_key_value");
  if (attn && (u_.model->attention_bias || qwen2_qkv)) return std::nullopt;
  if (!attn && u_.model->mlp_bias) return std::nullopt;
  return std::vector<float>(static_cast<size_t>(l.n), 0.0f);
}

void UnitChecker::check_linear_values(Linear& l) {
  const bool dynamic = l.type == "W8A8_DYNAMIC";
  const size_t n = static_cast<size_t>(l.n), k = static_cast<size_t>(l.k);
  const std::string P = l.prefix + ".";
  // The int8 weight: a view, or the W8A8SC tile stream decoded.
  std::vector<int8_t> decoded;
  const int8_t* wq = nullptr;
  if (l.type == "W8A8SC") {
    decoded.resize(n * k);
    const ByteView w = u_.data(*l.get("weight")), idx = u_.data(*l.get("index"));
    const auto info = read_info(*l.get("info"));
    auto s = w8a8sc::decompress(reinterpret_cast<const int8_t*>(w.data), w.size, reinterpret_cast<const int8_t*>(idx.data),
                                idx.size, info.data(), info.size(), decoded.data());
    if (!s) return problem("integrity", P + "weight", "tile stream does not decode: " + s.error().message);
    wq = decoded.data();
  } else {
    wq = reinterpret_cast<const int8_t*>(u_.data(*l.get("weight")).data);
  }
  // weight_scale > 0 and finite; weight_offset zero (symmetric).
  const std::vector<float> ws = read_f32(u_, *l.get("weight_scale"));
  int bad = 0;
  for (size_t i = 0; i < n; ++i)
    if (!(std::isfinite(ws[i]) && ws[i] > 0) && bad++ < kMaxListed)
      problem("arithmetic", P + "weight_scale", "row " + std::to_string(i) + " is " + fmt(ws[i]) + ", expected finite > 0");
  const std::vector<float> wo = read_f32(u_, *l.get("weight_offset"));
  bad = 0;
  for (size_t i = 0; i < n; ++i)
    if (wo[i] != 0 && bad++ < kMaxListed)
      problem("arithmetic", P + "weight_offset", "row " + std::to_string(i) + " is " + fmt(wo[i]) + ", expected 0 (symmetric)");
  const DType ws_dt = l.get("weight_scale")->info->dtype;

  if (!dynamic) {
    const float s_in = read_f32(u_, *l.get("input_scale"))[0];
    const float off = read_f32(u_, *l.get("input_offset"))[0];
    if (!(std::isfinite(s_in) && s_in > 0)) problem("arithmetic", P + "input_scale", "is " + fmt(s_in) + ", expected finite > 0");
    const bool off_ok = std::isfinite(off) && off == std::nearbyint(off) && off >= -128 && off <= 127;
    if (!off_ok) problem("arithmetic", P + "input_offset", "is " + fmt(off) + ", expected an integer in [-128, 127]");
    // deq_scale = fp32(input_scale * weight_scale), up to the rounding of the stored factors.
    const Loc* dl = l.get("deq_scale");
    const ByteView dv = u_.data(*dl);
    std::vector<float> deq(n);
    int hi_bad = 0, mismatch = 0;
    for (size_t i = 0; i < n; ++i) {
      if (dl->info->dtype == DType::I64) {
        uint64_t raw;
        std::memcpy(&raw, dv.data + 8 * i, 8);
        if ((raw >> 32) != 0 && hi_bad++ < kMaxListed)
          problem("arithmetic", P + "deq_scale", "row " + std::to_string(i) + " has nonzero high 32 bits (0x" +
                                                     fmt(static_cast<double>(raw >> 32)) + "); fp32 bits go in the low 32");
        deq[i] = bits_to_float(static_cast<uint32_t>(raw));
      } else {
        std::memcpy(&deq[i], dv.data + 4 * i, 4);
      }
      const double want = static_cast<double>(s_in) * ws[i];
      const double tol = (roundoff(l.get("input_scale")->info->dtype) + roundoff(ws_dt) + std::ldexp(1.0, -22)) * std::fabs(want);
      if (!(std::isfinite(deq[i]) && std::fabs(deq[i] - want) <= tol) && mismatch++ < kMaxListed)
        problem("arithmetic", P + "deq_scale", "row " + std::to_string(i) + " is " + fmt(deq[i]) +
                                                   ", but input_scale * weight_scale = " + fmt(want));
    }
    // quant_bias = round(b / deq_scale - input_offset * sum_k W_q).
    std::vector<int64_t> rowsum(n, 0);
    for (size_t r = 0; r < n; ++r) {
      int64_t s = 0;
      const int8_t* row = wq + r * k;
      for (size_t c = 0; c < k; ++c) s += row[c];
      rowsum[r] = s;
    }
    const ByteView qv = u_.data(*l.get("quant_bias"));
    std::vector<int32_t> qb(n);
    std::memcpy(qb.data(), qv.data, 4 * n);
    auto bias = known_bias(l);
    if (u_.parts > 1 && is_row_parallel(l.prefix)) {
      RowParallelBias& rp = ctx_.row_parallel[l.prefix];
      const size_t parts = static_cast<size_t>(u_.parts), p = static_cast<size_t>(u_.part);
      if (rp.rowsums.size() != parts) {
        rp.rowsums.resize(parts), rp.quant_bias.resize(parts), rp.deq_scale.resize(parts);
        rp.input_offset.resize(parts), rp.file.resize(parts), rp.present.assign(parts, false);
      }
      if (p < parts) {
        rp.rowsums[p] = rowsum, rp.quant_bias[p] = qb, rp.deq_scale[p] = deq, rp.input_offset[p] = off;
        rp.file[p] = u_.file_of(P + "quant_bias"), rp.present[p] = true;
        if (p == 0 && bias) rp.bias = bias;
      }
    } else if (!bias) {
      ++ctx_.bias_unknown;
    } else if (off_ok) {
      int listed = 0, wrong = 0;
      for (size_t i = 0; i < n; ++i) {
        const double want = std::nearbyint(static_cast<double>((*bias)[i]) / deq[i] - off * static_cast<double>(rowsum[i]));
        if (!std::isfinite(want) || std::fabs(qb[i] - want) <= 1 + std::fabs(want) * std::ldexp(1.0, -22)) continue;
        ++wrong;
        if (listed++ < kMaxListed)
          problem("arithmetic", P + "quant_bias", "row " + std::to_string(i) + " is " + std::to_string(qb[i]) + ", expected " +
                                                      fmt(want) + " = round(bias / deq_scale - input_offset * sum W_q)");
      }
      if (wrong > kMaxListed)
        problem("arithmetic", P + "quant_bias", std::to_string(wrong - kMaxListed) + " more rows wrong (" +
                                                    std::to_string(wrong) + " of " + std::to_string(n) + ")");
    }
  }
  if (ctx_.against) check_numerics(l, wq, ws, ws_dt);
}

// Where each part tensor's rows come from (st-shard's "st.shard.recipe", see libst/shard.hpp):
// for a single checkpoint every tensor is its own source, whole.
std::vector<Piece> UnitChecker::pieces_of(const std::string& name) const {
  if (u_.parts == 1) {
    const Loc* l = u_.find(name);
    return {Piece{name, "replicate", 0, 1, l ? l->info->shape : std::vector<int64_t>{}, 0}};
  }
  const auto it = recipe_.into.find(name);
  return it == recipe_.into.end() ? std::vector<Piece>{} : it->second;
}

// Each int8 weight within half a step of W / weight_scale; SQNR and cosine of W_q * s vs W,
// for every source linear whose rows this (part) linear holds.
void UnitChecker::check_numerics(const Linear& l, const int8_t* wq, const std::vector<float>& ws, DType ws_dt) {
  const std::string wname = l.prefix + ".weight";
  if (u_.parts > 1 && !recipe_.present) {
    sink_.note("numerics against the float model need st-shard's st.shard.recipe metadata in part folders: "
               "merge the parts first (st-shard --merge) and verify the merged checkpoint");
    return;
  }
  const auto pieces = pieces_of(wname);
  if (pieces.empty()) return problem("numerics", wname, "not in the part's st.shard.recipe: its float source is unknown");
  for (const Piece& p : pieces) {
    const TensorEntry* e = ctx_.against->find(p.source);
    if (!e) {
      problem("numerics", wname, "the float model has no tensor '" + p.source + "'");
      continue;
    }
    if (e->info->shape != p.shape || p.shape.size() != 2) {
      problem("numerics", wname, "the float model's '" + p.source + "' is " + shape_str(e->info->shape) +
                                     ", the quantized one was " + shape_str(p.shape));
      continue;
    }
    const Slice s = slice_of(p, recipe_.rank, recipe_.tp);
    if (s.nc != l.k || p.at < 0 || p.at + s.nr > l.n) {
      problem("structure", wname, "holds '" + p.source + "' rows " + std::to_string(p.at) + ".." +
                                      std::to_string(p.at + s.nr) + " x " + std::to_string(s.nc) +
                                      " columns, which do not fit its shape " + shape_str({l.n, l.k}));
      continue;
    }
    auto W = ctx_.against->read_f32(*e);
    ctx_.against->release(*e);
    if (!W) {
      problem("numerics", wname, "cannot read the float weight: " + W.error().message);
      continue;
    }
    const int64_t cols = p.shape[1];
    const std::string src = split_last(p.source).first;
    compare_weights(u_.parts > 1 ? u_.label + "/" + src : src, l.type, wname, W->data() + s.r0 * cols + s.c0, cols,
                    wq + p.at * l.k, ws.data() + p.at, s.nr, s.nc, ws_dt);
  }
}

void UnitChecker::compare_weights(const std::string& name, const std::string& type, const std::string& tensor,
                                  const float* W, int64_t w_stride, const int8_t* wq, const float* ws, int64_t rows,
                                  int64_t cols, DType ws_dt) {
  const bool sparse = type == "W8A8S" || type == "W8A8SC";
  const double u = roundoff(ws_dt) * 1.01;
  LinearNumerics r;
  r.name = name;
  r.type = type;
  r.elements = static_cast<uint64_t>(rows * cols);
  struct Partial {
    double sw2 = 0, se2 = 0, sq2 = 0, swq = 0, worst = 0;
    int64_t worst_r = 0, worst_c = 0;
    uint64_t pruned = 0, off_step = 0;
  };
  auto scan = [&](int64_t r0, int64_t r1, Partial& p) {
    for (int64_t i = r0; i < r1; ++i) {
      const double s = ws[i];
      for (int64_t c = 0; c < cols; ++c) {
        const double w = W[i * w_stride + c], q = wq[i * cols + c], t = w / s, deq = q * s;
        p.sw2 += w * w, p.sq2 += deq * deq, p.swq += w * deq, p.se2 += (w - deq) * (w - deq);
        const double tol = 0.5 + std::fabs(t) * u + 1e-3;
        double err;
        if (t > 127.0 + tol - 0.5) err = std::fabs(q - 127);         // clamped high
        else if (t < -128.0 - tol + 0.5) err = std::fabs(q + 128);   // clamped low
        else err = std::fabs(q - t);
        if (sparse && q == 0 && err > tol) {
          ++p.pruned;
          continue;
        }
        if (err > tol || !std::isfinite(err)) ++p.off_step;
        if (err > p.worst || !std::isfinite(err)) p.worst = err, p.worst_r = i, p.worst_c = c;
      }
    }
  };
  // Rows in fixed blocks of about 2^20 elements, in parallel; the blocks' partial sums are
  // combined in block order, so the numbers do not depend on the thread count.
  const int64_t block = std::max<int64_t>(1, ((int64_t{1} << 20) + cols - 1) / std::max<int64_t>(cols, 1));
  std::vector<Partial> parts(static_cast<size_t>((rows + block - 1) / block));
  parallel_for(static_cast<int64_t>(parts.size()), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) scan(i * block, std::min(rows, (i + 1) * block), parts[static_cast<size_t>(i)]);
  });
  double sw2 = 0, se2 = 0, sq2 = 0, swq = 0, worst = 0;
  int64_t worst_r = 0, worst_c = 0;
  for (const auto& p : parts) {
    sw2 += p.sw2, se2 += p.se2, sq2 += p.sq2, swq += p.swq;
    r.pruned += p.pruned, r.off_step += p.off_step;
    if (p.worst > worst || !std::isfinite(p.worst)) worst = p.worst, worst_r = p.worst_r, worst_c = p.worst_c;
  }
  r.max_step_error = worst;
  r.sqnr_db = se2 == 0 ? INFINITY : 10 * std::log10(sw2 / se2);
  r.cosine = (sw2 == 0 || sq2 == 0) ? (sw2 == sq2 ? 1 : 0) : swq / std::sqrt(sw2 * sq2);
  if (r.off_step && u_.weights_updated) {
    sink_.note("the weights were updated after pruning (metadata '*.weights_updated' = 1): int8 values are not "
               "round(W / scale) of the float model, so only SQNR and cosine are reported");
  } else if (r.off_step) {
    const std::string source = name.substr(name.find('/') + 1);  // without the "partI-of-N/" label
    const std::string of = split_last(tensor).first != source ? " in the rows from '" + source + "'" : "";
    problem("numerics", tensor,
            std::to_string(r.off_step) + " of " + std::to_string(r.elements) +
                " int8 values are further than half a step from W / weight_scale" + of + " (worst [" +
                std::to_string(worst_r) + "," + std::to_string(worst_c) + "]: " +
                std::to_string(wq[worst_r * cols + worst_c]) + " for " + fmt(W[worst_r * w_stride + worst_c] / ws[worst_r]) +
                ")" + (r.off_step * 100 > r.elements ? "; not quantized from this float model?" : ""));
  }
  sink_.report->numerics.push_back(r);
}

void UnitChecker::check_fused_groups() {
  static const std::set<std::string> attn_in = {"q_proj", "k_proj", "v_proj", "q_a_proj", "kv_a_proj_with_mqa"};
  std::map<std::string, std::vector<std::string>> groups;  // key -> linear prefixes
  for (const auto& name : u_.order) {
    auto [prefix, suffix] = split_last(name);
    if (suffix != "weight") continue;
    auto [parent, leaf] = split_last(prefix);
    if (attn_in.count(leaf)) groups[parent + ":attn"].push_back(prefix);
    else if (leaf == "gate_proj" || leaf == "up_proj") groups[parent + ":gate_up"].push_back(prefix);
  }
  for (const auto& [key, members] : groups) {
    if (members.size() < 2) continue;
    const std::string t0 = type_of(members[0] + ".weight");
    for (size_t i = 1; i < members.size(); ++i) {
      const std::string ti = type_of(members[i] + ".weight");
      if (ti != t0)
        describe_problem(members[i] + ".weight", "typed " + ti + " but its fused partner '" + members[0] + "' is " + t0 +
                                                     ": linears sharing one input are quantized together");
    }
    if (t0 == "W8A8_DYNAMIC" || !kLinearTypes.count(t0)) continue;
    for (const char* s : {"input_scale", "input_offset"}) {
      const Loc* a = u_.find(members[0] + "." + s);
      if (!a || a->info->numel() != 1) continue;
      const auto va = read_f32(u_, *a);
      for (size_t i = 1; i < members.size(); ++i) {
        const Loc* b = u_.find(members[i] + "." + s);
        if (!b || b->info->numel() != 1) continue;
        const auto vb = read_f32(u_, *b);
        if (!va.empty() && !vb.empty() && va[0] != vb[0])
          problem("arithmetic", members[i] + "." + s, "is " + fmt(vb[0]) + " but its fused partner '" + members[0] +
                                                          "' has " + fmt(va[0]) + ": one input, one " + s);
      }
    }
  }
}

void UnitChecker::check_attention() {
  std::map<std::string, std::set<std::string>> fa;  // attn prefix -> "q.scale", ...
  for (const auto& name : u_.order) {
    const auto pos = name.rfind(".fa_");
    if (pos == std::string::npos) continue;
    fa[name.substr(0, pos)].insert(name.substr(pos + 4));
  }
  const Description& d = *u_.desc;
  const auto fa_type = d.top("fa_quant_type");
  const bool mla = config_int(u_.config, "kv_lora_rank", 0) > 0;
  if (fa.empty()) {
    if (fa_type) describe_problem("", "fa_quant_type is '" + *fa_type + "' but no attention scales (.fa_q.scale ...) are stored");
    return;
  }
  const std::string want_type = mla ? "FAKQuant" : "FAQuant";
  if (!fa_type) describe_problem("", "attention scales are stored but fa_quant_type is missing");
  else if (*fa_type != want_type)
    describe_problem("", "fa_quant_type is '" + *fa_type + "', expected '" + want_type + "' for " +
                             (mla ? "an MLA" : "a standard-attention") + " model");
  const int64_t H = config_int(u_.config, "num_attention_heads", 0);
  const int64_t KV = config_int(u_.config, "num_key_value_heads", H);
  const int64_t P = u_.parts;
  const int64_t hq = mla ? H / P : H / P, hkv = mla ? 1 : (KV >= P ? KV / P : 1);
  const DType dt = mla ? DType::F32 : dt_;
  // Every attention block gets scales.
  std::set<std::string> attns;
  for (const auto& name : u_.order) {
    auto [prefix, suffix] = split_last(name);
    auto [parent, leaf] = split_last(prefix);
    if (suffix == "weight" && (leaf == "q_proj" || leaf == "q_a_proj" || leaf == "query_key_value")) attns.insert(parent);
  }
  for (const auto& a : attns)
    if (!fa.count(a)) describe_problem(a + ".fa_q.scale", "missing: fa_quant_type is set but this attention has no scales");
  for (const auto& [attn, have] : fa) {
    if (mla && d.top(attn + ".quant_type") != std::optional<std::string>("INT8"))
      describe_problem(attn + ".quant_type", "missing or not \"INT8\": FAKQuant marks each MLA attention");
    for (const char* who : {"q", "k", "v"}) {
      const int64_t rows = std::string(who) == "q" ? hq : hkv;
      const std::string base = attn + ".fa_" + who + ".";
      for (const char* part : {"scale", "offset"}) {
        const std::string name = base + part;
        if (!have.count(std::string(who) + "." + part)) {
          describe_problem(name, "missing: every attention block needs fa_q, fa_k, fa_v scale and offset");
          continue;
        }
        if (type_of(name) != "FAQuant") describe_problem(name, "typed '" + type_of(name) + "', expected FAQuant");
        const bool is_scale = std::string(part) == "scale";
        if (H <= 0) continue;  // no config: shapes unknown
        if (!expect(name, is_scale ? dt : DType::I8, {rows, 1}, is_scale ? "per-head scale" : "int8 zeros")) continue;
        const auto v = read_f32(u_, *u_.find(name));
        for (size_t i = 0; i < v.size(); ++i) {
          const bool ok = is_scale ? (std::isfinite(v[i]) && v[i] > 0) : v[i] == 0;
          if (!ok) {
            problem("arithmetic", name, "head " + std::to_string(i) + " is " + fmt(v[i]) +
                                            (is_scale ? ", expected finite > 0" : ", expected 0 (symmetric)"));
            break;
          }
        }
      }
    }
    for (const auto& h : have) {
      static const std::set<std::string> known = {"q.scale", "q.offset", "k.scale", "k.offset", "v.scale", "v.offset"};
      if (!known.count(h)) problem("structure", attn + ".fa_" + h, "unexpected attention-quantization tensor");
    }
  }
}

void UnitChecker::check_float_tensors() {
  for (const auto& name : u_.order) {
    if (type_of(name) != "FLOAT") continue;
    const Loc* l = u_.find(name);
    if (!dtype_is_float(l->info->dtype))
      problem("structure", name, std::string("typed FLOAT but stored as ") + dtype_name(l->info->dtype));
    if (ctx_.against && (u_.parts == 1 || recipe_.present)) compare_float(name, *l);
  }
  if (!ctx_.against || (u_.parts > 1 && (!recipe_.present || u_.part != 0))) return;
  for (const auto& e : ctx_.against->tensors()) {
    if (u_.parts > 1 ? recipe_.sources.count(e.name()) > 0 : u_.find(e.name()) != nullptr) continue;
    auto [prefix, suffix] = split_last(e.name());
    const bool folded = u_.parts > 1 ? recipe_.sources.count(prefix + ".quant_bias") > 0 || recipe_.sources.count(prefix + ".weight") > 0
                                     : linear_index_.count(prefix) > 0;
    if (suffix == "bias" && folded) continue;  // folded into quant_bias
    sink_.add("structure", u_.desc_file, e.name(), "in the float model but not in the quantized checkpoint");
  }
}

// A FLOAT tensor holds the float model's bytes (its rows of them, in a part).
void UnitChecker::compare_float(const std::string& name, const Loc& l) {
  const ByteView b = u_.data(l);
  const size_t es = dtype_bits(l.info->dtype) / 8;
  bool same = true;
  for (const Piece& p : pieces_of(name)) {
    const TensorEntry* e = ctx_.against->find(p.source);
    if (!e) continue;  // a tensor the quantizer added
    if (e->info->dtype != l.info->dtype || e->info->shape != p.shape || es == 0) {
      same = false;
      break;
    }
    const Slice s = slice_of(p, recipe_.rank, recipe_.tp);
    const int64_t part_rows = l.info->shape.empty() ? 1 : l.info->shape[0];
    const int64_t part_cols = l.info->shape.size() > 1 && part_rows > 0 ? static_cast<int64_t>(l.info->numel()) / part_rows : 1;
    if (s.nc != part_cols || p.at < 0 || p.at + s.nr > part_rows) {  // the recipe bounds at + rows: no overflow
      same = false;
      break;
    }
    const ByteView a = ctx_.against->data(*e);
    const int64_t cols = s.nc + (p.shape.size() > 1 ? p.shape[1] - s.nc : 0);
    for (int64_t i = 0; i < s.nr && same; ++i)
      same = std::memcmp(a.data + ((s.r0 + i) * cols + s.c0) * es, b.data + (p.at + i) * part_cols * es, s.nc * es) == 0;
    ctx_.against->release(*e);
  }
  u_.release(l);
  if (same) return;
  if (name.find("norm") != std::string::npos)
    sink_.note("FLOAT norm weights differ from the float model (anti-outlier smoothing folds scales into them), e.g. '" +
               name + "'");
  else
    problem("numerics", name, "FLOAT tensor differs from the float model's");
}

void UnitChecker::run() {
  if (!u_.desc) {
    if (!u_.order.empty() && u_.parts == 1)
      sink_.note("no quant_model_description.json: a float checkpoint? only integrity was checked");
    return;
  }
  if (u_.parts > 1) recipe_ = parse_recipe(u_, sink_);
  check_description();
  collect_linears();
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

}  // namespace

size_t count_linears(const Unit& u) {
  if (!u.desc) return 0;
  size_t n = 0;
  for (const auto& name : u.order)
    n += split_last(name).second == "weight" && kLinearTypes.count(u.desc->type_of(name).value_or("")) > 0;
  return n;
}

void check_unit(const Unit& u, CheckContext& ctx) { UnitChecker(u, ctx).run(); }

void check_parts(const std::vector<std::unique_ptr<Unit>>& units, CheckContext& ctx) {
  Sink& sink = ctx.sink;
  const Unit* ref = nullptr;
  for (const auto& u : units)
    if (!u->order.empty()) {
      ref = u.get();
      break;
    }
  if (!ref) return;
  const auto ref_dir = ref->desc_file.substr(0, ref->desc_file.rfind('/'));
  for (const auto& u : units) {
    if (u.get() == ref || (u->order.empty() && !u->desc)) continue;
    const std::string dir = u->desc_file.substr(0, u->desc_file.rfind('/'));
    int listed = 0;
    for (const auto& name : ref->order) {
      const Loc* a = ref->find(name);
      const Loc* b = u->find(name);
      if (!b) {
        if (listed++ < 5) sink.add("structure", dir, name, "in '" + ref->label + "' but missing from '" + u->label + "'");
        continue;
      }
      const bool stream = ref->desc && ref->desc->type_of(name) == std::optional<std::string>("W8A8SC") &&
                          split_last(name).second == "weight";
      if (a->info->dtype != b->info->dtype || (!stream && a->info->shape != b->info->shape))
        sink.add("structure", u->file_of(name), name,
                 std::string("is ") + dtype_name(b->info->dtype) + " " + shape_str(b->info->shape) + " but " +
                     dtype_name(a->info->dtype) + " " + shape_str(a->info->shape) + " in '" + ref->label + "'");
    }
    for (const auto& name : u->order)
      if (!ref->find(name) && listed++ < 5)
        sink.add("structure", u->file_of(name), name, "in '" + u->label + "' but not in '" + ref->label + "'");
    if (ref->desc && u->desc) {
      const auto d = compare(*ref->desc, *u->desc);
      if (!d.empty())
        sink.add("structure", u->desc_file, "", "description differs from '" + ref_dir + "/" + kDescriptionFile + "'");
    }
  }
  // Row-parallel linears: the first rank keeps the whole quant_bias (over the full k), the others zero.
  for (const auto& [prefix, rp] : ctx.row_parallel) {
    const size_t parts = rp.rowsums.size();
    bool complete = true;
    for (size_t p = 0; p < parts; ++p) complete = complete && rp.present[p] && rp.rowsums[p].size() == rp.rowsums[0].size();
    for (size_t p = 1; p < parts; ++p) {
      if (!rp.present[p]) continue;
      const auto& qb = rp.quant_bias[p];
      for (size_t i = 0; i < qb.size(); ++i)
        if (qb[i] != 0) {
          sink.add("arithmetic", rp.file[p], prefix + ".quant_bias",
                   "row " + std::to_string(i) + " is " + std::to_string(qb[i]) +
                       ", expected 0: a row-parallel linear keeps quant_bias on the first rank only");
          break;
        }
    }
    if (!complete) continue;
    if (!rp.bias) {
      ++ctx.bias_unknown;
      continue;
    }
    const size_t n = rp.rowsums[0].size();
    int listed = 0;
    for (size_t i = 0; i < n; ++i) {
      int64_t total = 0;
      for (size_t p = 0; p < parts; ++p) total += rp.rowsums[p][i];
      const double want = std::nearbyint(static_cast<double>((*rp.bias)[i]) / rp.deq_scale[0][i] -
                                         rp.input_offset[0] * static_cast<double>(total));
      const int32_t got = rp.quant_bias[0][i];
      if (std::isfinite(want) && std::fabs(got - want) > 1 + std::fabs(want) * std::ldexp(1.0, -22) && listed++ < kMaxListed)
        sink.add("arithmetic", rp.file[0], prefix + ".quant_bias",
                 "row " + std::to_string(i) + " is " + std::to_string(got) + ", expected " + fmt(want) +
                     " = round(bias / deq_scale - input_offset * sum W_q over all ranks)");
    }
  }
}

}  // namespace st::verify_detail
