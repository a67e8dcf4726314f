// Per-linear quantization schemes: ordered GLOB=SCHEME rules (st-quant-w8a8 --scheme, a recipe
// file), the model's default rules, and the resolution of every linear to one scheme with the
// reason, checked fused group by fused group.
//
// Resolution of a linear, first that applies:
//   1. FLOAT with its whole fused group when a member is kept float on its own account: by the
//      loaders (LinearInfo::float_by_default: the MoE router, MLA kv_b_proj), by the caller
//      (float_linears: automatic fallback) or by a --float GLOB
//   2. the first user rule whose glob matches (fnmatch(3) on the prefix or the weight name)
//   3. the model's default rules (default_rules below)
//   4. the mode's scheme (W8A8 with --stats, W8A8_DYNAMIC with --dynamic, W8A8S for st-sparsify)
// A fused group whose members resolve to different schemes is an error naming the group; so is
// a rule that matches no linear, or only linears the loaders keep float.
//
// Recipe file (JSON object; every key optional, an unknown key is an error):
//   { "rules": ["model.layers.*.mlp.*=W8A8_DYNAMIC", "*=W8A8"],   user rules, in order
//     "fa_quant": true, "fa_stat": "absmax", "fa_fallback": 1,  attention quantization
//     "anti_outlier": "search", "act_method": "auto", "fallback": 0 }   static accuracy options
// Options given on the command line win over the recipe's; --scheme rules come before its rules.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/core/error.hpp"

namespace st {

// What one linear becomes. W8A8 and W8A8S (static) store input_scale, input_offset, deq_scale and
// quant_bias with the float bias folded in. Every scheme keeps the float bias as msModelSlim
// writes it (`.bias`, typed FLOAT): the loaders' model classes, built with a bias, load it.
enum class LinearScheme { floating, w8a8, w8a8_dynamic, w8a8s };
const char* scheme_type(LinearScheme s);  // the description type: "FLOAT", "W8A8", ...
bool scheme_is_static(LinearScheme s);

struct SchemeRule {
  std::string glob;
  LinearScheme scheme = LinearScheme::floating;
  std::string source;  // names the rule in messages: "--scheme 'GLOB=W8A8'", "recipe r.json rule 2", ...
};

// "GLOB=SCHEME", SCHEME one of W8A8, W8A8_DYNAMIC, W8A8S, FLOAT (case-insensitive); the last '='
// splits. W8A8S (pruned) is st-sparsify's: its rules are W8A8S or FLOAT (resolve_schemes checks).
// Errc::usage naming `source` on a bad rule.
Result<SchemeRule> parse_scheme_rule(std::string_view text, const std::string& source);

struct QuantRecipe {
  std::vector<SchemeRule> rules;
  std::optional<bool> fa_quant;
  std::optional<std::string> fa_stat;  // "absmax" or "recall" (attention_scales.hpp)
  std::optional<int> fa_fallback;
  std::optional<std::string> anti_outlier, act_method;
  std::optional<int> fallback;
};

// A recipe's JSON text (errors name `path`), or the file at `path`.
Result<QuantRecipe> parse_recipe(std::string_view text, const std::string& path);
Result<QuantRecipe> load_recipe(const std::string& path);

// Whether a glob selects this linear (by prefix or weight name).
bool linear_matches(const std::string& glob, const LinearInfo& l);

// The model's default rules for a mode whose scheme is `base`, all for a static base (vllm-ascend
// has no static MoE scheme). MLA models (deepseek_v2/v3) get msModelSlim's DeepSeek mix: every MLP
// linear (dense, shared and routed experts) W8A8_DYNAMIC, attention static. Other MoE models
// (qwen3_moe, mixtral) get their routed experts W8A8_DYNAMIC, everything else static (MindIE loads
// the experts by moe_quantize, everything else by quantize). Otherwise none.
std::vector<SchemeRule> default_rules(const Architecture& arch, LinearScheme base);

struct SchemeInputs {
  LinearScheme base = LinearScheme::w8a8;  // the mode's scheme
  std::vector<std::string> float_globs;    // --float (whole fused groups)
  std::map<std::string, std::string> float_linears;  // prefix -> why (whole fused groups)
  std::vector<SchemeRule> rules;           // the user's, in order
};

struct ResolvedLinear {
  const LinearInfo* info = nullptr;
  LinearScheme scheme = LinearScheme::floating;
  std::string why;
};

struct SchemePlan {
  std::vector<ResolvedLinear> linears;  // the architecture's order
  std::vector<std::string> notes;       // what the user should know (e.g. static MoE)
  std::map<std::string, LinearScheme> by_prefix() const;
  std::set<std::string> static_groups() const;  // the fused groups of the static linears
  bool any_static() const;
};

// Errors (Errc::usage, naming `path`): a --float glob or rule that matches no linear, a rule that
// matches only linears the loaders keep float, a rule whose scheme is not of the mode's kind
// (W8A8S and FLOAT for a W8A8S base; anything but W8A8S otherwise), a float_linears prefix that
// is no linear, a fused group split across schemes.
Result<SchemePlan> resolve_schemes(const Architecture& arch, const SchemeInputs& in, const std::string& path);

// The checkpoint-level types of a set of schemes, as msModelSlim and the loaders use them:
//   model_quant_type: the one quantized scheme; a W8A8 + W8A8_DYNAMIC mix is W8A8_DYNAMIC on MLA
//     models (msModelSlim's DeepSeek example; MindIE requires it) and W8A8 otherwise (msModelSlim's
//     AscendV1 priority); nothing quantized: the mode's type.
//   quantize: model_quant_type lowercased (config.json; MindIE picks its loader by it);
//   mla_quantize: on MLA models, the attention's scheme when it differs from quantize; moe_quantize:
//     the routed experts' scheme when it differs from quantize (MindIE loads those modules by
//     them); "" otherwise;
//   fa_quant_type: with attention quantization, FAKQuant on MLA models, else FAQuant; "" without.
struct CheckpointTypes {
  std::string model_quant_type, quantize, mla_quantize, moe_quantize, fa_quant_type;
};
CheckpointTypes checkpoint_types(const Architecture& arch, const std::map<std::string, LinearScheme>& schemes,
                                 LinearScheme base, bool fa_quant);

}  // namespace st
