// The static-quantization accuracy flags shared by st-quant-w8a8 and st-sparsify:
// --anti-outlier, --act-method, --fallback (libst/quant/static_prep.hpp).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "libst/core/error.hpp"
#include "libst/quant/static_prep.hpp"

namespace st::cli {

struct StaticFlags {
  std::string anti_outlier = "search", act_method = "auto";
  int fallback = 0;
  CLI::Option* anti_outlier_opt = nullptr;
  CLI::Option* act_method_opt = nullptr;
  CLI::Option* fallback_opt = nullptr;
  // Whether the user gave any of them (st-quant-w8a8 --dynamic refuses them).
  bool given() const { return anti_outlier_opt->count() || act_method_opt->count() || fallback_opt->count(); }
};

void add_static_flags(CLI::App& app, StaticFlags& flags);

// The flags as options for prepare_static; a usage error names the bad value.
Result<StaticPrepOptions> static_prep_options(const StaticFlags& flags);

// Prints prepare_static's notes on stderr, one "tool: note" line each: unless quiet, and always
// when --fallback was asked for (they name the groups kept float).
void print_static_notes(const std::vector<std::string>& notes, bool quiet, const StaticFlags& flags);

}  // namespace st::cli
