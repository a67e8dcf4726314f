// Rebuilding the smoothed float weights: column scales from the stored norms, row scales from
// up_proj's weight_scale.
#include "libst/verify/smoothing.hpp"

#include <cmath>

#include "libst/quant/w8a8.hpp"
#include "libst/verify/checker.hpp"

namespace st::verify_detail {
namespace {

constexpr double kUnknown = INFINITY;

// Half an ulp of v stored in dtype t, relative to v (F16 subnormals have a fixed absolute ulp).
double stored_rounding(float v, DType t) {
  double rel = roundoff(t);
  if (t == DType::F16) rel = std::max(rel, std::ldexp(1.0, -25) / std::fabs(v));
  return rel;
}

}  // namespace

void SmoothScales::apply(float* w, int64_t r0, int64_t rows, int64_t k) const {
  for (int64_t r = 0; r < rows; ++r) {
    float* x = w + r * k;
    if (!col.empty())
      for (int64_t j = 0; j < k; ++j) x[j] = static_cast<float>(x[j] * col[size_t(j)]);
    if (!row.empty())
      for (int64_t j = 0; j < k; ++j) x[j] = static_cast<float>(x[j] / row[size_t(r0 + r)]);
  }
}

SmoothRebuild::SmoothRebuild(const Unit& u, const Checkpoint& against, const Architecture& arch)
    : u_(u), against_(against) {
  SmoothOptions every;  // every pair smoothing may have applied
  every.norms = every.up_down = true;
  pairs_ = smoothing_pairs(arch, every);
  for (size_t i = 0; i < pairs_.size(); ++i) {
    for (const auto* m : pairs_[i].members) consumer_of_[m->prefix] = i;
    if (pairs_[i].source_linear) source_of_[pairs_[i].source_linear->prefix] = i;
  }
}

const SmoothScales* SmoothRebuild::of(const std::string& prefix) {
  auto it = done_.find(prefix);
  if (it == done_.end()) it = done_.emplace(prefix, build(prefix)).first;
  return it->second ? &*it->second : nullptr;
}

std::optional<SmoothScales> SmoothRebuild::build(const std::string& prefix) {
  SmoothScales s;
  if (auto c = consumer_of_.find(prefix); c != consumer_of_.end())
    if (!column_scales(pairs_[c->second], s.col, s.col_err)) return std::nullopt;
  if (auto r = source_of_.find(prefix); r != source_of_.end())
    if (!row_scales(*pairs_[r->second].source_linear, s.row, s.row_err)) return std::nullopt;
  if (s.col.empty() && s.row.empty()) return std::nullopt;
  return s;
}

bool SmoothRebuild::column_scales(const SmoothPair& p, std::vector<double>& col, std::vector<double>& err) {
  if (p.source_linear) {  // down_proj: the rows by which its up_proj (or gate_up's up half) was divided
    const SmoothScales* up = of(p.source_linear->prefix);
    const int64_t k = p.members.front()->in_features;
    if (!up || int64_t(up->row.size()) < p.row0 + k) return false;
    col.assign(up->row.begin() + p.row0, up->row.begin() + p.row0 + k);
    err.assign(up->row_err.begin() + p.row0, up->row_err.begin() + p.row0 + k);
    return true;
  }
  const TensorEntry* f = against_.find(p.source);
  const Loc* stored = u_.find(p.source);
  if (!f || !stored) return false;
  auto norm = against_.read_f32(*f);
  const std::vector<float> folded = read_f32(u_, *stored);
  if (!norm || norm->size() != folded.size()) return false;
  col.assign(folded.size(), 1.0), err.assign(folded.size(), 0.0);
  for (size_t j = 0; j < folded.size(); ++j) {
    const float a = (*norm)[j], b = folded[j];
    if (a == 0) continue;  // a dead channel: its input is zero whatever the scale
    if (b == 0 || !std::isfinite(b) || !std::isfinite(a)) {
      err[j] = kUnknown;
      continue;
    }
    col[j] = double(a) / double(b);
    err[j] = stored_rounding(b, stored->info->dtype);
  }
  return true;
}

bool SmoothRebuild::row_scales(const LinearInfo& up, std::vector<double>& row, std::vector<double>& err) {
  const int64_t n = up.out_features, k = up.in_features;
  const TensorEntry* f = against_.find(up.weight_name());
  const Loc* w = u_.find(up.weight_name());
  if (!f || !w || !u_.desc) return false;
  auto W = against_.read_f32(*f);
  against_.release(*f);
  if (!W || static_cast<int64_t>(W->size()) != n * k) return false;
  double col_err = 0;
  if (auto c = consumer_of_.find(up.prefix); c != consumer_of_.end()) {  // up's own input scales first
    std::vector<double> col, cerr;
    if (!column_scales(pairs_[c->second], col, cerr) || static_cast<int64_t>(col.size()) != k) return false;
    for (int64_t j = 0; j < k; ++j) {
      if (std::isinf(cerr[j])) cerr[j] = 0;  // an unknown channel's weight is compared elsewhere
      col_err = std::max(col_err, cerr[j]);
    }
    SmoothScales{col, {}, {}, {}}.apply(W->data(), 0, n, k);
  }
  const std::string type = u_.desc->type_of(up.weight_name()).value_or("");
  row.assign(size_t(n), 1.0), err.assign(size_t(n), 0.0);
  if (type == "FLOAT") {  // kept float: the stored row is W' rounded to its dtype
    const std::vector<float> stored = read_f32(u_, *w);
    if (static_cast<int64_t>(stored.size()) != n * k) return false;
    for (int64_t r = 0; r < n; ++r) {
      double m = 0, ms = 0;
      for (int64_t j = 0; j < k; ++j) m = std::max(m, std::fabs(double((*W)[r * k + j]))), ms = std::max(ms, std::fabs(double(stored[r * k + j])));
      if (m == 0 || ms == 0) err[r] = kUnknown;
      else row[r] = m / ms, err[r] = col_err + stored_rounding(float(ms), w->info->dtype);
    }
    return true;
  }
  if (!kLinearTypes.count(type)) return false;
  const Loc* ws_loc = u_.find(up.prefix + ".weight_scale");
  if (!ws_loc) return false;
  const std::vector<float> ws = read_f32(u_, *ws_loc);
  std::vector<int8_t> buf;
  auto q = int8_weight(u_, up.prefix, type, n, k, buf);
  if (!q || static_cast<int64_t>(ws.size()) != n) return false;
  for (int64_t r = 0; r < n; ++r) {
    double m = 0;  // the largest kept |W'|: the quantizer's scale is that over 127
    for (int64_t j = 0; j < k; ++j)
      if ((*q)[r * k + j] != 0) m = std::max(m, std::fabs(double((*W)[r * k + j])));
    if (m == 0 || !(ws[size_t(r)] > w8a8::kEps)) err[r] = kUnknown;  // a zero row: its scale is not stored
    else row[r] = m / (127.0 * ws[size_t(r)]), err[r] = col_err + std::ldexp(1.0, -21);
  }
  return true;
}

}  // namespace st::verify_detail
