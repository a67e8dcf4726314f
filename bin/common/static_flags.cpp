// --anti-outlier, --act-method and --fallback: parsed into StaticPrepOptions, notes printed.
#include "bin/common/static_flags.hpp"

#include <cstdio>

#include "bin/common/cli.hpp"

namespace st::cli {

void add_static_flags(CLI::App& app, StaticFlags& f) {
  f.anti_outlier_opt =
      app.add_option("--anti-outlier", f.anti_outlier,
                     "none, smoothquant[:ALPHA] (fold per-channel scales into the q/k/v and gate/up norms), "
                     "smoothquant-all[:ALPHA] (also down_proj's input into up_proj's rows), or search (both, "
                     "alpha chosen per pair from the statistics; the default)")
          ->type_name("METHOD");
  f.act_method_opt = app.add_option("--act-method", f.act_method,
                                    "activation range from minmax (calibration min/max), mse (clip to minimise the "
                                    "estimated input error) or auto (mse, except minmax for smoothed inputs; the "
                                    "default)")
                         ->type_name("METHOD");
  f.fallback_opt = app.add_option("--fallback", f.fallback,
                                  "keep float the N linears (fused groups) whose quantization error is estimated "
                                  "largest, named on stderr (default 0)")
                       ->check(CLI::Range(0, 1 << 20));
}

Result<StaticPrepOptions> static_prep_options(const StaticFlags& f) {
  StaticPrepOptions o;
  ST_CHECK(parse_static_methods(f.anti_outlier, f.act_method, o));
  o.fallback = f.fallback;
  return o;
}

void print_static_notes(const std::vector<std::string>& notes, bool quiet, const StaticFlags& flags) {
  if (quiet && flags.fallback == 0) return;
  for (const auto& n : notes) std::fprintf(stderr, "%s: %s\n", tool_name().c_str(), n.c_str());
}

}  // namespace st::cli
