// FAQuant / FAKQuant scales and offsets from the attention statistics.
#include "libst/quant/attention_scales.hpp"

#include <algorithm>

#include "libst/quant/w8a8.hpp"

namespace st {

Result<std::vector<AttentionTensor>> attention_scales(const Architecture& arch, const ActivationStats& stats,
                                                      const std::string& stats_path) {
  std::vector<AttentionTensor> out;
  const DType sdt = arch.mla() ? DType::F32 : arch.dtype();
  auto get = [&](const std::string& name, int64_t n) -> Result<const std::vector<float>*> {
    auto it = stats.extra.find(name);
    if (it == stats.extra.end())
      return make_error(Errc::format,
                        std::string("no attention statistics (calibrate with an st-calibrate that records ") +
                            (arch.mla() ? "q_absmax and kv_absmax" : "q/k/v_absmax") + ")",
                        stats_path, name);
    if (static_cast<int64_t>(it->second.size()) != n)
      return make_error(Errc::format,
                        "has " + std::to_string(it->second.size()) + " values, the model needs " + std::to_string(n) +
                            (arch.mla() ? " (MLA)" : ""),
                        stats_path, name);
    return &it->second;
  };
  auto add = [&](const std::string& base, const std::vector<float>& absmax, int64_t rows) {
    AttentionTensor scale{{base + ".scale", sdt, {rows, 1}}, std::vector<uint8_t>(size_t(rows) * (dtype_bits(sdt) / 8))};
    std::vector<float> v(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i)
      v[i] = w8a8::round_to(sdt, std::max(absmax[absmax.size() == 1 ? 0 : i] / 127.0f, w8a8::kEps));
    from_f32(sdt, v.data(), scale.bytes.data(), size_t(rows));
    out.push_back(std::move(scale));
    out.push_back({{base + ".offset", DType::I8, {rows, 1}}, std::vector<uint8_t>(size_t(rows), 0)});
  };
  for (const auto& a : arch.attention()) {
    if (arch.mla()) {
      ST_ASSIGN(const auto* q, get(a.prefix + ".q_absmax", a.heads));
      ST_ASSIGN(const auto* kv, get(a.prefix + ".kv_absmax", 1));
      add(a.prefix + ".fa_q", *q, a.heads);
      add(a.prefix + ".fa_k", *kv, 1);
      add(a.prefix + ".fa_v", *kv, 1);
    } else {
      ST_ASSIGN(const auto* q, get(a.prefix + ".q_absmax", a.heads));
      ST_ASSIGN(const auto* k, get(a.prefix + ".k_absmax", a.kv_heads));
      ST_ASSIGN(const auto* v, get(a.prefix + ".v_absmax", a.kv_heads));
      add(a.prefix + ".fa_q", *q, a.heads);
      add(a.prefix + ".fa_k", *k, a.kv_heads);
      add(a.prefix + ".fa_v", *v, a.kv_heads);
    }
  }
  return out;
}

}  // namespace st
