// Planning a W8A8 quantization: schemes, activation parameters, output tensors, files and texts.
#include "libst/quant/quant_plan.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "libst/format/description.hpp"
#include "libst/format/side_files.hpp"
#include "libst/quant/smooth.hpp"

namespace st {
namespace {

uint64_t spec_bytes(const TensorSpec& s) {
  uint64_t n = 1;
  for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
  return n * dtype_bits(s.dtype) / 8;
}

// Output tensors of a quantized linear, in the order they are written. W8A8S has no weight_scale /
// weight_offset: msModelSlim writes none, and a reader derives weight_scale = deq_scale / input_scale.
std::vector<TensorSpec> linear_specs(const LinearInfo& l, LinearScheme scheme, DType model) {
  const int64_t n = l.out_features, k = l.in_features;
  std::vector<TensorSpec> v = {{l.prefix + ".weight", DType::I8, {n, k}}};
  if (scheme != LinearScheme::w8a8s) {
    v.push_back({l.prefix + ".weight_scale", DType::F32, {n, 1}});
    v.push_back({l.prefix + ".weight_offset", DType::F32, {n, 1}});
  }
  if (scheme_is_static(scheme)) {
    v.push_back({l.prefix + ".input_scale", model, {1}});
    v.push_back({l.prefix + ".input_offset", model, {1}});
    v.push_back({l.prefix + ".deq_scale", w8a8::deq_scale_dtype(model), {n}});
    v.push_back({l.prefix + ".quant_bias", DType::I32, {n}});
  }
  return v;
}

Status check_stats_channels(const LinearStats& s, const LinearInfo& l, const std::string& stats_path) {
  if (!s.absmax.empty() && static_cast<int64_t>(s.absmax.size()) != l.in_features)
    return make_error(Errc::format,
                      "statistics cover " + std::to_string(s.absmax.size()) + " input channels, the linear has " +
                          std::to_string(l.in_features) + " (statistics of another model?)",
                      stats_path, l.prefix);
  return Status{};
}

// A routed expert that no calibration token reached has no statistics. All routed experts of a
// layer read the same hidden states, which the shared expert sees in full: gate/up borrow the
// shared expert's range (else the union of the layer's other experts'); down_proj, whose input
// is the expert's own, borrows the union of the layer's other experts' down_proj ranges.
std::optional<std::pair<float, float>> expert_fallback_range(const Architecture& arch, const ActivationStats& stats,
                                                            const LinearInfo& l) {
  if (l.expert < 0) return std::nullopt;
  const size_t cut = l.prefix.rfind(".experts.");
  if (cut == std::string::npos) return std::nullopt;
  const std::string mlp = l.prefix.substr(0, cut);
  const std::string leaf = l.prefix.substr(l.prefix.rfind('.') + 1);
  if (l.role != LinearRole::down) {
    if (const LinearStats* sh = stats.linear(mlp + ".shared_experts." + leaf)) return std::make_pair(sh->min, sh->max);
  }
  std::optional<std::pair<float, float>> r;
  for (const auto& other : arch.linears()) {
    if (other.layer != l.layer || other.expert < 0 || other.role != l.role) continue;
    const LinearStats* s = stats.linear(other.prefix);
    if (!s) continue;
    r = r ? std::make_pair(std::min(r->first, s->min), std::max(r->second, s->max)) : std::make_pair(s->min, s->max);
  }
  return r;
}

// The static linears' activation parameters, shared by fused group, after every statistic they
// need is checked (nothing is written before).
Status plan_activations(const Architecture& arch, const QuantizeOptions& o, QuantPlan& plan) {
  w8a8::GroupRanges ranges;
  size_t borrowed = 0;
  for (auto& p : plan.linears) {
    if (!scheme_is_static(p.scheme)) continue;
    const LinearInfo& l = p.linear;
    const LinearStats* s = o.stats->linear(l.prefix);
    std::pair<float, float> r;
    if (s) {
      ST_CHECK(check_stats_channels(*s, l, o.stats_path));
      r = {s->min, s->max};
    } else {
      auto fb = expert_fallback_range(arch, *o.stats, l);
      if (!fb)
        return make_error(Errc::format, "no statistics for this linear (calibrate the same model)", o.stats_path,
                          l.prefix);
      if (!std::isfinite(fb->first) || !std::isfinite(fb->second))
        return make_error(Errc::numeric, "borrowed expert statistics are not finite", o.stats_path, l.prefix);
      r = *fb;
      p.borrowed_range = true;
      ++borrowed;
    }
    ranges.add(l.group, r.first, r.second);
  }
  if (borrowed && o.warn)
    o.warn(std::to_string(borrowed) +
           " routed-expert linears have no statistics (no calibration token was routed to them): gate/up use "
           "their layer's shared-expert input range (without one, the union of the other experts'), down_proj the "
           "union of the layer's other experts'");
  ST_ASSIGN(const auto group_act, ranges.params(plan.model, o.stats_path));
  for (auto& p : plan.linears)
    if (scheme_is_static(p.scheme)) p.act = group_act.at(p.linear.group);
  return Status{};
}

// Where each linear's tensors are in storage order, and the output tensors in write order: a
// quantized linear's after its weight (static: after weight and bias, the bias being folded).
void plan_outputs(const Checkpoint& ckpt, const Architecture& arch, QuantPlan& plan) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < plan.linears.size(); ++i) index[plan.linears[i].linear.prefix] = i;
  const auto& ents = ckpt.tensors();
  plan.linear_of_input.assign(ents.size(), kNoTensor);
  for (size_t i = 0; i < ents.size(); ++i) {
    const LinearInfo* l = arch.linear_of_tensor(ents[i].name());
    if (!l) continue;
    PlannedLinear& p = plan.linears[index.at(l->prefix)];
    plan.linear_of_input[i] = index.at(l->prefix);
    (ents[i].name() == l->bias_name() ? p.bias : p.weight) = i;
  }
  for (auto& p : plan.linears) {
    p.emit_at = p.weight;
    if (scheme_is_static(p.scheme) && p.bias != kNoTensor) p.emit_at = std::max(p.weight, p.bias);
  }
  for (size_t i = 0; i < ents.size(); ++i) {
    const TensorInfo& t = *ents[i].info;
    const PlannedLinear* p = plan.linear_of(i);
    if (ents[i].is_block_scale()) continue;  // consumed by its FP8 weight
    if (!p || !p->quantized()) plan.outputs.push_back({{t.name, ckpt.value_dtype(ents[i]), t.shape}, "FLOAT"});
    else if (i == p->bias) plan.outputs.push_back({{t.name, t.dtype, t.shape}, "FLOAT"});
    if (p && p->quantized() && p->emit_at == i)
      for (auto& s : linear_specs(p->linear, p->scheme, plan.model)) plan.outputs.push_back({std::move(s), scheme_type(p->scheme)});
  }
  for (const auto& t : plan.attention.tensors) plan.outputs.push_back({t.spec, "FAQuant"});
}

// The description and the side files: config.json gains "quantize" and, for a DeepSeek mix,
// "mla_quantize" / "moe_quantize" (MindIE picks each module's loader by them), "torch_dtype" the output's
// float dtype, and loses the input's quantization_config (DeepSeek's fp8: the weights are no longer in it).
Status plan_texts(const Checkpoint& ckpt, const Architecture& arch, const QuantizeOptions& o, QuantPlan& plan) {
  Description desc;
  desc.set_top("model_quant_type", plan.types.model_quant_type);
  if (o.fa_quant && !plan.attention.tensors.empty()) {  // every block kept float: no attention quantization
    desc.set_top("fa_quant_type", plan.types.fa_quant_type);
    if (arch.mla())
      for (const auto& b : plan.attention.blocks)
        if (b.quantized) desc.set_top(b.prefix + ".quant_type", "INT8");
  }
  for (const auto& e : plan.outputs) desc.set_type(e.spec.name, e.type);
  plan.description = desc.dump();
  plan.side_files = ckpt.side_files();
  plan.side_files.erase(kDescriptionFile);
  if (auto it = plan.side_files.find("config.json"); it != plan.side_files.end()) {
    nlohmann::ordered_json patch = {{"quantization_config", nullptr}, {"quantize", plan.types.quantize}};
    if (!plan.types.mla_quantize.empty()) patch["mla_quantize"] = plan.types.mla_quantize;
    if (!plan.types.moe_quantize.empty()) patch["moe_quantize"] = plan.types.moe_quantize;
    ST_ASSIGN(it->second, output_config(it->second, patch, plan.model, ckpt.path()));
  }
  return Status{};
}

// The weight files: outputs split greedily in write order above max_file_size (never for a
// stream), named STEM.safetensors or STEM-0000i-of-0000N.safetensors with an index.
void plan_files(const Checkpoint& ckpt, const QuantizeOptions& o, const std::string& stem, bool to_stdout,
                QuantPlan& plan) {
  std::vector<std::vector<TensorSpec>> groups(1);
  uint64_t in_file = 0;
  for (const auto& e : plan.outputs) {
    const uint64_t b = spec_bytes(e.spec);
    if (!to_stdout && o.max_file_size > 0 && !groups.back().empty() && in_file + b > o.max_file_size) {
      groups.emplace_back();
      in_file = 0;
    }
    groups.back().push_back(e.spec);
    in_file += b;
    plan.output_bytes += b;
  }
  Metadata md = o.metadata;
  // Smoothing rewrote weights before quantization: say so (st-verify --against rebuilds them).
  if ((o.overrides && !o.overrides->empty()) || (o.weight_scales && !o.weight_scales->empty()))
    md["st.quant.weights_updated"] = "1";
  std::string rolled_back;  // st-verify accepts these blocks' missing attention scales
  for (const auto& b : plan.attention.rolled_back()) rolled_back += (rolled_back.empty() ? "" : ",") + b;
  if (!rolled_back.empty()) md[kFaFallbackKey] = rolled_back;
  for (const auto& [key, value] : carried_metadata(ckpt)) md.emplace(key, value);  // "format": "pt"
  if (to_stdout) {
    PlannedFile f{"-", groups[0], md};
    put_side_file(f.metadata, kDescriptionFile, plan.description);
    for (const auto& [name, text] : plan.side_files) put_side_file(f.metadata, name, text);
    plan.files.push_back(std::move(f));
    return;
  }
  const size_t n = groups.size();
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  for (size_t i = 0; i < n; ++i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu", i + 1, n);
    const std::string name = n == 1 ? stem + ".safetensors" : stem + buf + ".safetensors";
    for (const auto& s : groups[i]) weight_map[s.name] = name;
    plan.files.push_back({name, groups[i], md});
  }
  if (n > 1) {
    nlohmann::ordered_json index;
    index["metadata"]["total_size"] = plan.output_bytes;
    index["weight_map"] = weight_map;
    plan.index = index.dump(2) + "\n";
    plan.index_name = stem + ".safetensors.index.json";
  }
}

}  // namespace

Result<SchemePlan> choose_schemes(const Architecture& arch, const QuantizeOptions& o, const std::string& path) {
  SchemeInputs in;
  in.base = scheme_of_mode(o.mode);
  in.float_globs = o.float_globs;
  in.float_linears = o.float_linears;
  in.rules = o.scheme_rules;
  return resolve_schemes(arch, in, path);
}

LinearScheme scheme_of_mode(W8A8Mode mode) {
  switch (mode) {
    case W8A8Mode::w8a8_static: return LinearScheme::w8a8;
    case W8A8Mode::w8a8_dynamic: return LinearScheme::w8a8_dynamic;
    case W8A8Mode::w8a8s: return LinearScheme::w8a8s;
  }
  return LinearScheme::floating;
}

Status check_float_input(const Checkpoint& ckpt) {
  if (ckpt.description() || ckpt.layout() == Layout::quantized)
    return make_error(Errc::usage, "input is already quantized (it has a quant_model_description)", ckpt.path());
  if (ckpt.layout() == Layout::parts)
    return make_error(Errc::unsupported, "input is a set of part folders: merge them first (st-shard --merge)",
                      ckpt.path());
  for (const auto& e : ckpt.tensors())
    if (e.info->dtype == DType::I8)
      return make_error(Errc::usage, "input is already quantized (int8 tensor)", ckpt.path(), e.name());
  return Status{};
}

Result<QuantPlan> plan_quantization(const Checkpoint& ckpt, const QuantizeOptions& o) {
  ST_CHECK(check_float_input(ckpt));
  ST_ASSIGN(const Architecture arch, Architecture::of(ckpt));
  QuantPlan plan;
  plan.mode = o.mode;
  plan.model = arch.dtype();
  if (plan.model != DType::F16 && plan.model != DType::BF16)
    return make_error(Errc::unsupported,
                      std::string("model dtype ") + dtype_name(plan.model) + ": the " + w8a8_type_name(o.mode) +
                          " layout is defined for F16 and BF16 models",
                      ckpt.path());
  ST_ASSIGN(const SchemePlan schemes, choose_schemes(arch, o, ckpt.path()));
  bool any_static = false;
  for (const auto& r : schemes.linears) {
    PlannedLinear p;
    p.linear = *r.info;
    p.scheme = r.scheme;
    p.why = r.why;
    (p.quantized() ? plan.linears_quantized : plan.linears_float)++;
    if (scheme_is_static(p.scheme) && !any_static && !o.stats)
      return make_error(Errc::usage, std::string("static ") + scheme_type(p.scheme) +
                                         " needs activation statistics (--stats): " + p.linear.prefix + " is " +
                                         scheme_type(p.scheme) + " (" + p.why + ")");
    any_static = any_static || scheme_is_static(p.scheme);
    plan.linears.push_back(std::move(p));
  }
  plan.types = checkpoint_types(arch, schemes.by_prefix(), scheme_of_mode(o.mode), o.fa_quant);
  plan.notes = schemes.notes;
  if (o.warn)
    for (const auto& n : plan.notes) o.warn(n);
  if (any_static) ST_CHECK(plan_activations(arch, o, plan));
  if (o.fa_quant) {
    if (!o.stats) return make_error(Errc::usage, "--fa-quant needs activation statistics (--stats)");
    ST_ASSIGN(plan.attention, attention_scales(arch, *o.stats, o.stats_path, o.fa_stat, o.fa_fallback));
    if (o.warn)
      for (const auto& b : plan.attention.blocks)
        if (!b.quantized) o.warn(fallback_note(b));
    if (o.warn && o.fa_fallback > 0 && !arch.mla())
      o.warn("fa-fallback on FAQuant (non-MLA): MindIE's loader reads every layer's attention scales and vllm-ascend "
             "quantizes attention only on MLA models: neither loads a layer kept float");
  }
  plan_outputs(ckpt, arch, plan);
  const std::string stem = "quant_model_weight_" + plan.types.quantize;
  ST_CHECK(plan_texts(ckpt, arch, o, plan));
  plan_files(ckpt, o, stem, o.output && o.output->is_stdout(), plan);
  return plan;
}

}  // namespace st
