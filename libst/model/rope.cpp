// RoPE frequency tables: fp32 like HF transformers (inv_freq in fp32, angle = pos * inv_freq in fp32).
#include "libst/model/rope.hpp"

#include <algorithm>
#include <cmath>

namespace st::model {

namespace {

std::vector<float> default_inv_freq(double base, int dim) {
  std::vector<float> inv(dim / 2);
  for (int i = 0; i < dim / 2; ++i) {
    const float e = float(2 * i) / float(dim);
    const float p = float(std::pow(base, double(e)));
    inv[i] = 1.0f / p;
  }
  return inv;
}

void llama3(const RopeConfig& c, std::vector<float>& inv) {
  const double old_len = c.original_max_position_embeddings;
  const double low_wavelen = old_len / c.low_freq_factor, high_wavelen = old_len / c.high_freq_factor;
  for (auto& f : inv) {
    const double wavelen = 2 * M_PI / f;
    double v = wavelen > low_wavelen ? f / c.factor : f;
    if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
      const double smooth = (old_len / wavelen - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
      v = (1 - smooth) * v / c.factor + smooth * v;
    }
    f = float(v);
  }
}

double yarn_mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }

float yarn(const RopeConfig& c, int dim, std::vector<float>& inv) {
  double af;
  if (c.attention_factor) af = *c.attention_factor;
  else if (c.mscale && c.mscale_all_dim && *c.mscale != 0 && *c.mscale_all_dim != 0)
    af = yarn_mscale(c.factor, *c.mscale) / yarn_mscale(c.factor, *c.mscale_all_dim);
  else af = yarn_mscale(c.factor, 1.0);
  auto corr_dim = [&](double rot) {
    return dim * std::log(c.original_max_position_embeddings / (rot * 2 * M_PI)) / (2 * std::log(c.theta));
  };
  double low = corr_dim(c.beta_fast), high = corr_dim(c.beta_slow);
  if (c.truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high) high += 0.001;
  for (int i = 0; i < dim / 2; ++i) {
    const float pos_freq = 1.0f / inv[i];
    const float extrap = inv[i];
    const float interp = float(1.0 / (c.factor * pos_freq));
    const float ramp = std::clamp(float((float(i) - low) / (high - low)), 0.0f, 1.0f);
    const float ext_factor = 1.0f - ramp;
    inv[i] = interp * (1 - ext_factor) + extrap * ext_factor;
  }
  return float(af);
}

}  // namespace

Rope::Rope(const RopeConfig& cfg, int dim, bool interleave) : dim_(dim), interleave_(interleave) {
  inv_freq_ = default_inv_freq(cfg.theta, dim);
  if (cfg.type == "linear") {
    for (auto& f : inv_freq_) f = float(f / cfg.factor);
  } else if (cfg.type == "llama3") {
    llama3(cfg, inv_freq_);
  } else if (cfg.type == "yarn") {
    attention_factor_ = yarn(cfg, dim, inv_freq_);
  }
}

void Rope::prepare(int n) {
  if (n <= positions_) return;
  const int half = dim_ / 2;
  cos_.resize(size_t(n) * half);
  sin_.resize(size_t(n) * half);
  for (int p = positions_; p < n; ++p)
    for (int i = 0; i < half; ++i) {
      const float angle = float(p) * inv_freq_[i];
      cos_[size_t(p) * half + i] = std::cos(angle) * attention_factor_;
      sin_[size_t(p) * half + i] = std::sin(angle) * attention_factor_;
    }
  positions_ = n;
}

void Rope::apply(float* x, int pos) const {
  const int half = dim_ / 2;
  float tmp[1024];
  if (interleave_) {
    for (int i = 0; i < half; ++i) tmp[i] = x[2 * i], tmp[half + i] = x[2 * i + 1];
    std::copy(tmp, tmp + dim_, x);
  }
  const float* c = &cos_[size_t(pos) * half];
  const float* s = &sin_[size_t(pos) * half];
  for (int i = 0; i < half; ++i) {
    const float a = x[i], b = x[half + i];
    x[i] = a * c[i] - b * s[i];
    x[half + i] = b * c[i] + a * s[i];
  }
}

}  // namespace st::model
