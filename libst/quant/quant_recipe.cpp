// Scheme rules and recipes: parsing, the model's defaults, resolution per linear and the
// checkpoint-level types of the result.
#include "libst/quant/quant_recipe.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "libst/core/paths.hpp"
#include "libst/format/json.hpp"
#include "libst/quant/attention_scales.hpp"

namespace st {
namespace {

std::string upper(std::string_view s) {
  std::string u(s);
  for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

std::string lower(std::string_view s) {
  std::string u(s);
  for (auto& c : u) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return u;
}

bool is_attention(const LinearInfo& l) { return l.prefix.find(".self_attn.") != std::string::npos; }

// The one scheme of a set of linears, when they share one (floating ignored); nullopt otherwise.
std::optional<LinearScheme> common_scheme(const std::vector<LinearScheme>& v) {
  std::optional<LinearScheme> s;
  for (LinearScheme x : v) {
    if (x == LinearScheme::floating) continue;
    if (s && *s != x) return std::nullopt;
    s = x;
  }
  return s;
}

Error recipe_error(const std::string& path, const std::string& what) {
  return make_error(Errc::usage, what, path);
}

}  // namespace

const char* scheme_type(LinearScheme s) {
  switch (s) {
    case LinearScheme::floating: return "FLOAT";
    case LinearScheme::w8a8: return "W8A8";
    case LinearScheme::w8a8_dynamic: return "W8A8_DYNAMIC";
    case LinearScheme::w8a8s: return "W8A8S";
  }
  return "?";
}

bool scheme_is_static(LinearScheme s) { return s == LinearScheme::w8a8 || s == LinearScheme::w8a8s; }

Result<SchemeRule> parse_scheme_rule(std::string_view text, const std::string& source) {
  const size_t eq = text.rfind('=');
  if (eq == std::string_view::npos || eq == 0)
    return make_error(Errc::usage, source + ": not GLOB=SCHEME: '" + std::string(text) + "'");
  SchemeRule r;
  r.glob = std::string(text.substr(0, eq));
  r.source = source;
  const std::string name = upper(text.substr(eq + 1));
  if (name == "W8A8") r.scheme = LinearScheme::w8a8;
  else if (name == "W8A8_DYNAMIC") r.scheme = LinearScheme::w8a8_dynamic;
  else if (name == "W8A8S") r.scheme = LinearScheme::w8a8s;
  else if (name == "FLOAT") r.scheme = LinearScheme::floating;
  else
    return make_error(Errc::usage, source + ": unknown scheme '" + std::string(text.substr(eq + 1)) +
                                       "' (W8A8, W8A8_DYNAMIC, W8A8S or FLOAT)");
  return r;
}

Result<QuantRecipe> parse_recipe(std::string_view text, const std::string& path) {
  auto parsed = parse_json(text, JsonRules{"recipe", 8, true});
  if (!parsed) return std::move(parsed).error().in_file(path);
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return recipe_error(path, "recipe is not a JSON object");
  QuantRecipe r;
  for (const auto& [key, v] : j.items()) {
    const std::string where = "recipe key '" + key + "'";
    if (key == "rules") {
      if (!v.is_array()) return recipe_error(path, where + " is not a list of \"GLOB=SCHEME\" strings");
      for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string()) return recipe_error(path, "recipe rule " + std::to_string(i + 1) + " is not a string");
        const std::string text = v[i].get<std::string>();
        auto rule = parse_scheme_rule(text, "recipe rule " + std::to_string(i + 1) + " '" + text + "'");
        if (!rule) return std::move(rule).error().in_file(path);
        r.rules.push_back(std::move(*rule));
      }
    } else if (key == "fa_quant") {
      if (!v.is_boolean()) return recipe_error(path, where + " is not true or false");
      r.fa_quant = v.get<bool>();
    } else if (key == "fa_stat") {
      FaStat stat;
      if (!v.is_string() || !parse_fa_stat(v.get<std::string>(), stat))
        return recipe_error(path, where + " is not \"absmax\" or \"recall\"");
      r.fa_stat = v.get<std::string>();
    } else if (key == "anti_outlier" || key == "act_method") {
      if (!v.is_string()) return recipe_error(path, where + " is not a string");
      (key == "anti_outlier" ? r.anti_outlier : r.act_method) = v.get<std::string>();
    } else if (key == "fallback" || key == "fa_fallback") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 20))
        return recipe_error(path, where + " is not a count (0 to 1048576)");
      (key == "fallback" ? r.fallback : r.fa_fallback) = static_cast<int>(v.get<int64_t>());
    } else {
      return recipe_error(path, "unknown recipe key '" + key +
                                    "' (rules, fa_quant, fa_stat, fa_fallback, anti_outlier, act_method, fallback)");
    }
  }
  return r;
}

Result<QuantRecipe> load_recipe(const std::string& path) {
  ST_ASSIGN(std::string text, read_file_text(path));
  return parse_recipe(text, path);
}

bool linear_matches(const std::string& glob, const LinearInfo& l) {
  return glob_match(glob, l.prefix) || glob_match(glob, l.weight_name());
}

std::vector<SchemeRule> default_rules(const Architecture& arch, LinearScheme base) {
  if (base != LinearScheme::w8a8) return {};
  if (arch.mla())
    return {{"*.mlp.*", LinearScheme::w8a8_dynamic,
             arch.model_type() + " default: MLPs and experts W8A8_DYNAMIC (msModelSlim's DeepSeek mix)"}};
  const bool moe = std::any_of(arch.linears().begin(), arch.linears().end(),
                               [](const LinearInfo& l) { return l.expert >= 0; });
  if (!moe) return {};
  return {{"*.experts.*", LinearScheme::w8a8_dynamic,
           arch.model_type() + " default: routed experts W8A8_DYNAMIC (vllm-ascend has no static MoE scheme)"}};
}

std::map<std::string, LinearScheme> SchemePlan::by_prefix() const {
  std::map<std::string, LinearScheme> m;
  for (const auto& l : linears) m[l.info->prefix] = l.scheme;
  return m;
}

std::set<std::string> SchemePlan::static_groups() const {
  std::set<std::string> groups;
  for (const auto& l : linears)
    if (scheme_is_static(l.scheme)) groups.insert(l.info->group);
  return groups;
}

bool SchemePlan::any_static() const {
  return std::any_of(linears.begin(), linears.end(), [](const ResolvedLinear& l) { return scheme_is_static(l.scheme); });
}

namespace {

// Why a linear is kept float on its own account ("" when it is not): by the loaders, the caller's
// float_linears, a --float glob (each marked used in glob_used).
std::string own_float_reason(const LinearInfo& l, const SchemeInputs& in, std::vector<bool>& glob_used) {
  std::string why;
  for (size_t g = 0; g < in.float_globs.size(); ++g)
    if (linear_matches(in.float_globs[g], l)) {
      if (why.empty()) why = "--float '" + in.float_globs[g] + "'";
      glob_used[g] = true;
    }
  if (auto it = in.float_linears.find(l.prefix); it != in.float_linears.end()) why = it->second;
  if (l.float_by_default)
    why = l.role == LinearRole::kv_b ? "kv_b_proj: the MLA loaders need it float" : "MoE router: float by default";
  return why;
}

// The linears kept float with their fused groups: prefix -> why.
Result<std::map<std::string, std::string>> float_linears_of(const Architecture& arch, const SchemeInputs& in,
                                                           const std::string& path) {
  std::vector<bool> glob_used(in.float_globs.size(), false);
  std::map<std::string, std::string> own, group_first, out;
  for (const auto& l : arch.linears()) {
    std::string why = own_float_reason(l, in, glob_used);
    if (why.empty()) continue;
    group_first.emplace(l.group, l.prefix);
    own[l.prefix] = std::move(why);
  }
  for (size_t g = 0; g < in.float_globs.size(); ++g)
    if (!glob_used[g]) return make_error(Errc::usage, "--float '" + in.float_globs[g] + "' matches no linear", path);
  for (const auto& [prefix, why] : in.float_linears)
    if (!arch.linear(prefix)) return make_error(Errc::usage, "no such linear to keep float (" + why + ")", path, prefix);
  for (const auto& l : arch.linears()) {
    if (auto it = own.find(l.prefix); it != own.end()) out[l.prefix] = it->second;
    else if (auto g = group_first.find(l.group); g != group_first.end())
      out[l.prefix] = "fused with " + g->second + " (" + own.at(g->second) + ")";
  }
  return out;
}

const SchemeRule* first_match(const std::vector<SchemeRule>& rules, const LinearInfo& l) {
  for (const auto& r : rules)
    if (linear_matches(r.glob, l)) return &r;
  return nullptr;
}

// Every rule names a scheme of the mode's kind of checkpoint (a sparse one holds W8A8S and FLOAT
// linears: MindIE reads every int8 linear of a W8A8SC model as W8A8SC), matches a linear, and a
// non-FLOAT rule one the loaders do not keep float.
Status check_rules_match(const Architecture& arch, const std::vector<SchemeRule>& rules, LinearScheme base,
                         const std::string& path) {
  for (const auto& r : rules) {
    const bool sparse_rule = r.scheme == LinearScheme::w8a8s;
    if (base == LinearScheme::w8a8s && !sparse_rule && r.scheme != LinearScheme::floating)
      return make_error(Errc::usage, r.source + ": a sparse (W8A8S) checkpoint takes W8A8S or FLOAT rules", path);
    if (base != LinearScheme::w8a8s && sparse_rule)
      return make_error(Errc::usage, r.source + ": W8A8S is the pruned scheme of st-sparsify", path);
    bool any = false, free = false;
    for (const auto& l : arch.linears())
      if (linear_matches(r.glob, l)) {
        any = true;
        free = free || !l.float_by_default;
      }
    if (!any) return make_error(Errc::usage, r.source + " matches no linear", path);
    if (!free && r.scheme != LinearScheme::floating)
      return make_error(Errc::usage, r.source + " matches only linears the loaders keep float", path);
  }
  return Status{};
}

// One scheme per fused group.
Status check_groups(const SchemePlan& plan, const std::string& path) {
  std::map<std::string, const ResolvedLinear*> first;
  for (const auto& r : plan.linears) {
    const auto [it, fresh] = first.emplace(r.info->group, &r);
    if (fresh || it->second->scheme == r.scheme) continue;
    const ResolvedLinear& a = *it->second;
    return make_error(Errc::usage,
                      "fused group '" + r.info->group + "' split: " + a.info->prefix + " is " + scheme_type(a.scheme) +
                          " (" + a.why + "), " + r.info->prefix + " is " + scheme_type(r.scheme) + " (" + r.why +
                          "); linears sharing one input take one scheme",
                      path);
  }
  return Status{};
}

}  // namespace

Result<SchemePlan> resolve_schemes(const Architecture& arch, const SchemeInputs& in, const std::string& path) {
  ST_ASSIGN(const auto floats, float_linears_of(arch, in, path));
  ST_CHECK(check_rules_match(arch, in.rules, in.base, path));
  const std::vector<SchemeRule> defaults = default_rules(arch, in.base);
  SchemePlan plan;
  for (const auto& l : arch.linears()) {
    ResolvedLinear r{&l, in.base, std::string("the mode's scheme (") + scheme_type(in.base) + ")"};
    if (auto f = floats.find(l.prefix); f != floats.end()) r = {&l, LinearScheme::floating, f->second};
    else if (const SchemeRule* u = first_match(in.rules, l)) r = {&l, u->scheme, u->source};
    else if (const SchemeRule* d = first_match(defaults, l)) r = {&l, d->scheme, d->source};
    plan.linears.push_back(std::move(r));
  }
  ST_CHECK(check_groups(plan, path));
  size_t static_experts = 0;
  for (const auto& r : plan.linears) static_experts += r.info->expert >= 0 && scheme_is_static(r.scheme);
  if (static_experts)
    plan.notes.push_back(std::to_string(static_experts) +
                         " routed-expert linears are static: vllm-ascend has no static W8A8 MoE scheme and cannot load "
                         "them (MindIE can)");
  return plan;
}

CheckpointTypes checkpoint_types(const Architecture& arch, const std::map<std::string, LinearScheme>& schemes,
                                 LinearScheme base, bool fa_quant) {
  std::set<LinearScheme> used;
  std::vector<LinearScheme> attention, experts;
  for (const auto& l : arch.linears()) {
    const auto it = schemes.find(l.prefix);
    const LinearScheme s = it == schemes.end() ? LinearScheme::floating : it->second;
    if (s != LinearScheme::floating) used.insert(s);
    if (is_attention(l)) attention.push_back(s);
    if (l.expert >= 0) experts.push_back(s);
  }
  LinearScheme top = base;
  if (used.size() == 1) top = *used.begin();
  else if (used.count(LinearScheme::w8a8s)) top = LinearScheme::w8a8s;
  else if (used.size() > 1) top = arch.mla() ? LinearScheme::w8a8_dynamic : LinearScheme::w8a8;
  CheckpointTypes t;
  t.model_quant_type = scheme_type(top);
  t.quantize = lower(t.model_quant_type);
  if (fa_quant) t.fa_quant_type = arch.mla() ? "FAKQuant" : "FAQuant";
  if (auto a = common_scheme(attention); arch.mla() && a && lower(scheme_type(*a)) != t.quantize)
    t.mla_quantize = lower(scheme_type(*a));
  if (auto e = common_scheme(experts); e && lower(scheme_type(*e)) != t.quantize) t.moe_quantize = lower(scheme_type(*e));
  return t;
}

}  // namespace st
