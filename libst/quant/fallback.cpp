// Ranking linears for automatic fallback to float.
#include "libst/quant/fallback.hpp"

#include <algorithm>
#include <cmath>
#include <map>

namespace st {

std::vector<FallbackPick> pick_fallback(const Architecture& arch, const ActivationStats& stats, int n,
                                        const std::set<std::string>* groups) {
  std::vector<FallbackPick> all;
  std::map<std::string, bool> seen;
  for (const auto& l : arch.linears()) {
    if (seen[l.group] || (groups && !groups->count(l.group))) continue;
    seen[l.group] = true;
    bool skip = false;
    double lo = 0, hi = 0, sq = 0, count = 0;
    for (const auto* m : arch.group(l.group)) {
      if (m->float_by_default) skip = true;
      const LinearStats* s = stats.linear(m->prefix);
      if (!s || s->tokens <= 0) continue;
      lo = std::min<double>(lo, s->min), hi = std::max<double>(hi, s->max);
      double t = 0;
      for (double v : s->sumsq) t += v;
      sq += t, count += double(s->tokens) * double(s->sumsq.size());
    }
    if (skip) continue;
    const double rms = count > 0 ? std::sqrt(sq / count) : 0;
    all.push_back({l.group, l.prefix, rms > 0 ? (hi - lo) / rms : 0.0});
  }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
  if (n < int(all.size())) all.resize(size_t(std::max(n, 0)));
  return all;
}

}  // namespace st
