// Per-linear scheme flags of st-quant-w8a8 and st-sparsify (--scheme, --recipe, --dry-run) and the plan printed as a table or JSON.
#include "bin/common/scheme_flags.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"

namespace st::cli {

void add_scheme_flags(CLI::App& app, SchemeFlags& f, const std::string& schemes) {
  app.add_option("--scheme", f.schemes,
                 "GLOB=SCHEME: linears whose prefix or weight name matches GLOB become SCHEME (" + schemes +
                     "); repeatable, the first matching rule wins")
      ->type_name("GLOB=SCHEME")
      ->allow_extra_args(false);
  app.add_option("--recipe", f.recipe,
                 "JSON recipe: \"rules\" (GLOB=SCHEME strings, after --scheme's), \"fa_quant\", \"fa_stat\", \"fa_fallback\", \"anti_outlier\", "
                 "\"act_method\", \"fallback\" (the command line wins)")
      ->type_name("FILE")
      ->check(st::cli::not_stdin());
  app.add_flag("--dry-run", f.dry_run,
               "print every linear's scheme and why (a table; --json: JSON) and the checkpoint's types; write nothing");
}

Result<std::vector<SchemeRule>> scheme_rules(SchemeFlags& f, StaticFlags& sf, bool& fa_quant) {
  std::vector<SchemeRule> rules;
  for (const auto& text : f.schemes) {
    ST_ASSIGN(SchemeRule r, parse_scheme_rule(text, "--scheme '" + text + "'"));
    rules.push_back(std::move(r));
  }
  if (f.recipe.empty()) return rules;
  ST_ASSIGN(QuantRecipe recipe, load_recipe(f.recipe));
  for (auto& r : recipe.rules) {
    r.source = "recipe " + f.recipe + ": " + r.source.substr(std::string("recipe ").size());
    rules.push_back(std::move(r));
  }
  if (recipe.fa_quant && !fa_quant) fa_quant = *recipe.fa_quant;
  f.recipe_fa_stat = recipe.fa_stat;
  f.recipe_fa_fallback = recipe.fa_fallback;
  if (recipe.anti_outlier && !sf.anti_outlier_opt->count()) sf.anti_outlier = *recipe.anti_outlier;
  if (recipe.act_method && !sf.act_method_opt->count()) sf.act_method = *recipe.act_method;
  if (recipe.fallback && !sf.fallback_opt->count()) sf.fallback = *recipe.fallback;
  return rules;
}

namespace {

nlohmann::ordered_json plan_json(const SchemePlan& plan, const CheckpointTypes& t) {
  nlohmann::ordered_json j;
  j["model_quant_type"] = t.model_quant_type;
  if (!t.fa_quant_type.empty()) j["fa_quant_type"] = t.fa_quant_type;
  nlohmann::ordered_json cfg;
  cfg["quantize"] = t.quantize;
  if (!t.mla_quantize.empty()) cfg["mla_quantize"] = t.mla_quantize;
  if (!t.moe_quantize.empty()) cfg["moe_quantize"] = t.moe_quantize;
  j["config"] = cfg;
  std::map<std::string, size_t> counts;
  for (const auto& l : plan.linears) counts[scheme_type(l.scheme)]++;
  j["schemes"] = counts;
  auto& rows = j["linears"] = nlohmann::ordered_json::array();
  for (const auto& l : plan.linears)
    rows.push_back({{"linear", l.info->prefix}, {"scheme", scheme_type(l.scheme)}, {"why", l.why}});
  j["notes"] = plan.notes;
  return j;
}

}  // namespace

void print_scheme_plan(const SchemePlan& plan, const CheckpointTypes& t, bool json) {
  if (json) {
    print_json(plan_json(plan, t));
    return;
  }
  size_t width = 6;
  for (const auto& l : plan.linears) width = std::max(width, l.info->prefix.size());
  const int w = static_cast<int>(width);
  std::printf("%-*s  %-12s  %s\n", w, "LINEAR", "SCHEME", "WHY");
  for (const auto& l : plan.linears) std::printf("%-*s  %-12s  %s\n", w, l.info->prefix.c_str(), scheme_type(l.scheme), l.why.c_str());
  std::printf("model_quant_type %s; config.json quantize %s", t.model_quant_type.c_str(), t.quantize.c_str());
  if (!t.mla_quantize.empty()) std::printf(", mla_quantize %s", t.mla_quantize.c_str());
  if (!t.moe_quantize.empty()) std::printf(", moe_quantize %s", t.moe_quantize.c_str());
  if (!t.fa_quant_type.empty()) std::printf("; fa_quant_type %s", t.fa_quant_type.c_str());
  std::printf("\n");
  for (const auto& n : plan.notes) std::printf("note: %s\n", n.c_str());
}

}  // namespace st::cli
