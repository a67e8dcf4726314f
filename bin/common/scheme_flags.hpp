// Per-linear scheme flags of st-quant-w8a8 and st-sparsify: --scheme GLOB=SCHEME, --recipe FILE,
// --dry-run, and the printing of a resolved plan (libst/quant/quant_recipe.hpp) as a table or JSON.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bin/common/static_flags.hpp"
#include "libst/core/error.hpp"
#include "libst/quant/quant_recipe.hpp"

namespace st::cli {

struct SchemeFlags {
  std::vector<std::string> schemes;  // --scheme, in order
  std::string recipe;                // --recipe FILE
  bool dry_run = false;
  // The recipe's attention options (scheme_rules fills them; the command line's win).
  std::optional<std::string> recipe_fa_stat;
  std::optional<int> recipe_fa_fallback;
};

// `schemes` names the tool's schemes in the help ("W8A8, W8A8_DYNAMIC or FLOAT").
void add_scheme_flags(CLI::App& app, SchemeFlags& flags, const std::string& schemes);

// The rules: --scheme's, then the recipe's. The recipe's options fill what the command line left
// unset: fa_quant (when --fa-quant was not given) and the static flags.
Result<std::vector<SchemeRule>> scheme_rules(SchemeFlags& flags, StaticFlags& static_flags, bool& fa_quant);

// The resolved plan on stdout: one row per linear (linear, scheme, why), the checkpoint's types and
// the notes, as a table or one JSON document.
void print_scheme_plan(const SchemePlan& plan, const CheckpointTypes& types, bool json);

}  // namespace st::cli
