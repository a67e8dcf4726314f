// FAQuant / FAKQuant scales and offsets from the attention statistics, and the fallback blocks.
#include "libst/quant/attention_scales.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "libst/quant/w8a8.hpp"

namespace st {

bool parse_fa_stat(const std::string& text, FaStat& out) {
  if (text == "recall") out = FaStat::recall;
  else if (text == "absmax") out = FaStat::absmax;
  else return false;
  return true;
}

std::string fallback_note(const FaBlock& b) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", b.noise);
  return "fa-fallback: " + b.prefix + " kept float (estimated int8 q/k/v noise/signal " + buf + ")";
}

std::vector<std::string> AttentionScales::rolled_back() const {
  std::vector<std::string> v;
  for (const auto& b : blocks)
    if (!b.quantized) v.push_back(b.prefix);
  return v;
}

namespace {

struct Branch {  // one of fa_q, fa_k, fa_v of a block
  std::string name;
  const std::vector<float>* magnitude = nullptr;  // per head (or one value)
  const std::vector<float>* rms = nullptr;
  int64_t rows = 0;
};

// The mean over heads of the int8 rounding noise to signal power, (scale^2 / 12) / rms^2.
double noise_of(const Branch& br) {
  double sum = 0;
  for (int64_t h = 0; h < br.rows; ++h) {
    const double s = std::max((*br.magnitude)[size_t(h)] / 127.0, double(w8a8::kEps));
    const double r = std::max(double((*br.rms)[size_t(h)]), double(w8a8::kEps));
    sum += s * s / 12.0 / (r * r);
  }
  return sum / double(br.rows);
}

// The branch's scale (in `dtype`) and offset tensors.
void add_tensors(const Branch& br, DType dtype, std::vector<AttentionTensor>& out) {
  AttentionTensor scale{{br.name + ".scale", dtype, {br.rows, 1}},
                        std::vector<uint8_t>(size_t(br.rows) * (dtype_bits(dtype) / 8))};
  std::vector<float> v(static_cast<size_t>(br.rows));
  for (int64_t h = 0; h < br.rows; ++h)
    v[size_t(h)] = w8a8::round_to(dtype, std::max((*br.magnitude)[size_t(h)] / 127.0f, w8a8::kEps));
  from_f32(dtype, v.data(), scale.bytes.data(), size_t(br.rows));
  // The offset copies the scale's spec: a second braced shape here trips GCC 12's
  // -Wmaybe-uninitialized (a false positive, but -Werror in CI).
  AttentionTensor offset{scale.spec, std::vector<uint8_t>(size_t(br.rows), 0)};
  offset.spec.name = br.name + ".offset";
  offset.spec.dtype = DType::I8;
  out.push_back(std::move(scale));
  out.push_back(std::move(offset));
}

}  // namespace

Result<AttentionScales> attention_scales(const Architecture& arch, const ActivationStats& stats,
                                         const std::string& stats_path, FaStat stat, int fallback) {
  const DType sdt = arch.mla() ? DType::F32 : arch.dtype();
  auto get = [&](const std::string& name, int64_t n) -> Result<const std::vector<float>*> {
    auto it = stats.extra.find(name);
    if (it == stats.extra.end())
      return make_error(Errc::format,
                        "no attention statistics (calibrate with an st-calibrate that records " +
                            name.substr(name.rfind('.') + 1) +
                            (stat == FaStat::recall ? ", or give --fa-stat absmax)" : ")"),
                        stats_path, name);
    if (static_cast<int64_t>(it->second.size()) != n)
      return make_error(Errc::format,
                        "has " + std::to_string(it->second.size()) + " values, the model needs " + std::to_string(n) +
                            (arch.mla() ? " (MLA)" : ""),
                        stats_path, name);
    return &it->second;
  };
  const bool recall = stat == FaStat::recall;
  const bool noise = fallback > 0;  // the rms statistics are needed only to rank the blocks
  std::vector<std::vector<Branch>> branches;
  AttentionScales out;
  for (const auto& a : arch.attention()) {
    const std::string p = a.prefix + ".";
    const int64_t kv = arch.mla() ? 1 : a.kv_heads;
    const std::string k = arch.mla() ? "kv" : "k", v = arch.mla() ? "kv" : "v";
    std::vector<Branch> b = {{p + "fa_q", nullptr, nullptr, a.heads},
                             {p + "fa_k", nullptr, nullptr, kv},
                             {p + "fa_v", nullptr, nullptr, kv}};
    ST_ASSIGN(b[0].magnitude, get(p + (recall ? "q_recall" : "q_absmax"), a.heads));
    ST_ASSIGN(b[1].magnitude, get(p + k + (recall ? "_recall" : "_absmax"), kv));
    ST_ASSIGN(b[2].magnitude, get(p + v + "_absmax", kv));  // msModelSlim does not clip v
    if (noise) {
      ST_ASSIGN(b[0].rms, get(p + "q_rms", a.heads));
      ST_ASSIGN(b[1].rms, get(p + k + "_rms", kv));
      ST_ASSIGN(b[2].rms, get(p + v + "_rms", kv));
    }
    FaBlock block{a.prefix};
    if (noise)
      for (const auto& br : b) block.noise += noise_of(br);
    out.blocks.push_back(std::move(block));
    branches.push_back(std::move(b));
  }
  // The fallback blocks: the largest estimated noise (the earlier block on a tie).
  std::vector<size_t> order(out.blocks.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return out.blocks[x].noise > out.blocks[y].noise; });
  for (size_t i = 0; i < order.size() && i < size_t(std::max(fallback, 0)); ++i) out.blocks[order[i]].quantized = false;
  for (size_t i = 0; i < out.blocks.size(); ++i)
    if (out.blocks[i].quantized)
      for (const auto& br : branches[i]) add_tensors(br, sdt, out.tensors);
  return out;
}

}  // namespace st
