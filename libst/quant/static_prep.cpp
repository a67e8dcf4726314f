// Smoothing, activation ranges and fallback before static quantization.
#include "libst/quant/static_prep.hpp"

#include <cstdio>
#include <cstdlib>

#include "libst/quant/fallback.hpp"

namespace st {

Status parse_static_methods(const std::string& text, const std::string& act_method, StaticPrepOptions& o) {
  if (!parse_act_method(act_method, o.act))
    return make_error(Errc::usage, "--act-method: unknown method '" + act_method + "' (minmax, mse, auto)");
  const auto colon = text.find(':');
  const std::string name = text.substr(0, colon);
  o.smooth = true;
  o.smooth_options = SmoothOptions{};
  o.anti_outlier = text;
  if (colon != std::string::npos) {
    const std::string a = text.substr(colon + 1);
    char* end = nullptr;
    o.smooth_options.alpha = std::strtof(a.c_str(), &end);
    if (a.empty() || *end || !(o.smooth_options.alpha >= 0 && o.smooth_options.alpha <= 1) || name == "none" ||
        name == "search")
      return make_error(Errc::usage,
                        "--anti-outlier: bad alpha in '" + text + "' (smoothquant[:ALPHA], 0 <= ALPHA <= 1)");
  }
  if (name == "none") o.smooth = false;
  else if (name == "smoothquant") o.smooth_options.up_down = false;
  else if (name == "smoothquant-all") o.smooth_options.up_down = true;
  else if (name == "search") o.smooth_options.search = true;
  else
    return make_error(Errc::usage, "--anti-outlier: unknown method '" + text +
                                       "' (none, smoothquant[:ALPHA], smoothquant-all[:ALPHA], search)");
  return Status{};
}

void StaticPrep::attach(QuantizeOptions& q) const {
  if (!overrides.empty()) q.overrides = &overrides;
  if (!weight_scales.empty()) q.weight_scales = &weight_scales;
  q.float_linears.insert(float_linears.begin(), float_linears.end());
}

Result<StaticPrep> prepare_static(const Checkpoint& ckpt, const Architecture& arch, ActivationStats& stats,
                                  const StaticPrepOptions& o) {
  StaticPrep prep;
  char buf[512];
  std::vector<std::string> smoothed;
  const std::set<std::string>* groups = o.static_groups ? &*o.static_groups : nullptr;
  if (o.smooth) {
    SmoothOptions so = o.smooth_options;
    so.groups = groups;
    ST_ASSIGN(SmoothResult r, smooth(ckpt, arch, stats, so, o.progress));
    prep.overrides = std::move(r.tensors);
    prep.weight_scales = std::move(r.scales);
    smoothed = std::move(r.smoothed);
    std::snprintf(buf, sizeof buf, "anti-outlier %s: %zu smoothing pairs", o.anti_outlier.c_str(), r.pairs);
    prep.notes.push_back(buf);
  }
  const ActRangeResult ranges = choose_act_ranges(stats, o.act, smoothed);
  if (o.act != ActMethod::minmax) {
    size_t clipped = 0;
    for (const auto& [p, c] : ranges.clip) clipped += c < 1.0f;
    std::snprintf(buf, sizeof buf, "act-method %s: %zu of %zu input ranges clipped",
                  o.act == ActMethod::mse ? "mse" : "auto", clipped, ranges.clip.size());
    prep.notes.push_back(buf);
  }
  for (const auto& f : pick_fallback(arch, stats, o.fallback, groups)) {
    std::snprintf(buf, sizeof buf, "fallback: input range/rms %.1f", f.score);
    prep.float_linears[f.prefix] = buf;
    std::snprintf(buf, sizeof buf, "fallback: kept %s float (input range/rms %.1f)", f.group.c_str(), f.score);
    prep.notes.push_back(buf);
  }
  return prep;
}

}  // namespace st
