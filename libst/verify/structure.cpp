// Structure checks: description <-> tensors, per-type dtypes and shapes of the linears, fused
// groups, attention-quantization scales, FLOAT tensors.
#include <cmath>

#include "libst/verify/checker.hpp"
#include "libst/w8a8sc/codec.hpp"

namespace st::verify_detail {

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
  // A mix (per-linear schemes) names one of its types, as msModelSlim does (DeepSeek: W8A8_DYNAMIC).
  if (!used.empty() && !used.count(mqt)) {
    std::string types;
    for (const auto& t : used) types += (types.empty() ? "" : ", ") + t;
    describe_problem("", "model_quant_type is '" + mqt + "' but linears are typed " + types);
  }
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
  // W8A8S / W8A8SC store no weight_scale / weight_offset (msModelSlim's layout; arithmetic.cpp derives it).
  std::vector<const char*> required = {"weight"};
  if (l.type == "W8A8" || dynamic) required.insert(required.end(), {"weight_scale", "weight_offset"});
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
    const auto info_values = read_info(u_, *info);
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

void UnitChecker::check_fused_groups() {
  static const std::set<std::string> attn_in = {"q_proj", "k_proj", "v_proj", "q_a_proj", "kv_a_proj_with_mqa"};
  static const std::set<std::string> gate_up = {"gate_proj", "up_proj", "w1", "w3"};
  std::map<std::string, std::vector<std::string>> groups;  // key -> linear prefixes
  for (const auto& name : u_.order) {
    auto [prefix, suffix] = split_last(name);
    if (suffix != "weight") continue;
    auto [parent, leaf] = split_last(prefix);
    if (attn_in.count(leaf)) groups[parent + ":attn"].push_back(prefix);
    else if (gate_up.count(leaf)) groups[parent + ":gate_up"].push_back(prefix);
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
  const int64_t H = u_.model ? u_.model->heads : config_int(u_.config, "num_attention_heads", 0);
  const int64_t KV = u_.model ? u_.model->kv_heads : config_int(u_.config, "num_key_value_heads", H);
  const int64_t P = u_.parts;
  const int64_t hq = mla ? H / P : H / P, hkv = mla ? 1 : (KV >= P ? KV / P : 1);
  const DType dt = mla ? DType::F32 : dt_;
  // Every attention block gets scales.
  std::set<std::string> attns;
  for (const auto& name : u_.order) {
    auto [prefix, suffix] = split_last(name);
    auto [parent, leaf] = split_last(prefix);
    const std::string& fused = model::tensor_names(u_.model ? u_.model->family : model::Family::llama).qkv;
    if (suffix == "weight" && (leaf == "q_proj" || leaf == "q_a_proj" || leaf == "query_key_value" || (!fused.empty() && leaf == fused)))
      attns.insert(parent);
  }
  for (const auto& a : attns)
    if (!fa.count(a) && !u_.fa_fallback.count(a))
      describe_problem(a + ".fa_q.scale", "missing: fa_quant_type is set but this attention has no scales");
  for (const auto& a : u_.fa_fallback)
    if (fa.count(a)) describe_problem(a + ".fa_q.scale", "stored, but the weight files' '" + std::string(kFaFallbackKey) +
                                                             "' says this attention was kept float");
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
    if (e.is_block_scale()) continue;  // part of its FP8 weight
    if (u_.parts > 1 ? recipe_.sources.count(e.name()) > 0 : u_.find(e.name()) != nullptr) continue;
    auto [prefix, suffix] = split_last(e.name());
    const bool folded = u_.parts > 1 ? recipe_.sources.count(prefix + ".quant_bias") > 0 || recipe_.sources.count(prefix + ".weight") > 0
                                     : linear_index_.count(prefix) > 0;
    if (suffix == "bias" && folded) continue;  // folded into quant_bias
    sink_.add("structure", u_.desc_file, e.name(), "in the float model but not in the quantized checkpoint");
  }
}

}  // namespace st::verify_detail
