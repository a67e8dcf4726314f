// Clipping the static activation range by an error estimate from the statistics.
#include "libst/quant/act_range.hpp"

#include <algorithm>
#include <cmath>

namespace st {

bool parse_act_method(const std::string& s, ActMethod& out) {
  if (s == "minmax") out = ActMethod::minmax;
  else if (s == "mse") out = ActMethod::mse;
  else if (s == "auto") out = ActMethod::auto_;
  else return false;
  return true;
}

double act_range_error(const LinearStats& s, float c) {
  const size_t k = s.absmax.size();
  if (k == 0 || s.tokens <= 0) return 0;
  const double lo = std::min(0.0f, s.min) * double(c), hi = std::max(0.0f, s.max) * double(c);
  const double step = (hi - lo) / 255.0;
  double err = double(k) * step * step / 12.0;
  const bool ch = s.chmin.size() == k && s.chmax.size() == k;
  for (size_t j = 0; j < k; ++j) {
    const double rms = std::sqrt(s.sumsq[j] / double(s.tokens));
    const double b = rms / std::sqrt(2.0);
    if (!(b > 0)) continue;
    const double top = ch ? s.chmax[j] : s.absmax[j], bottom = ch ? -s.chmin[j] : s.absmax[j];
    // One side of a Laplace(0, b): E[(x - T)^2; x > T] = b^2 exp(-T/b) (half of 2 b^2 exp(-T/b)),
    // only where the channel was seen past T.
    if (top > hi) err += b * b * std::exp(-hi / b);
    if (bottom > -lo) err += b * b * std::exp(lo / b);
  }
  return err;
}

ActRangeResult choose_act_ranges(ActivationStats& stats, ActMethod method, const std::vector<std::string>& smoothed) {
  ActRangeResult r;
  for (auto& [prefix, s] : stats.linears) {
    float best_c = 1.0f;
    const bool skip = method == ActMethod::auto_ && std::find(smoothed.begin(), smoothed.end(), prefix) != smoothed.end();
    if (method != ActMethod::minmax && !skip && std::isfinite(s.min) && std::isfinite(s.max)) {
      double best = act_range_error(s, 1.0f);
      for (int i = 1; i <= 25; ++i) {
        const float c = 1.0f - 0.02f * float(i);
        const double e = act_range_error(s, c);
        if (e < best) best = e, best_c = c;
      }
    }
    r.clip[prefix] = best_c;
    if (best_c != 1.0f) s.min *= best_c, s.max *= best_c;
  }
  return r;
}

}  // namespace st
