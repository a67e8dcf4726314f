// Reading and writing the activation-statistics safetensors file.
#include "libst/format/stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace st {
namespace {

const char* const kSuffixes[] = {".input_min", ".input_max", ".input_absmax", ".input_sumsq", ".tokens",
                                 ".input_chmin", ".input_chmax"};

bool split_linear_key(const std::string& name, std::string& prefix, std::string& field) {
  for (const char* s : kSuffixes) {
    const size_t n = std::strlen(s);
    if (name.size() > n && name.compare(name.size() - n, n, s) == 0) {
      prefix = name.substr(0, name.size() - n);
      field = s + 1;
      return true;
    }
  }
  return false;
}

// The one check that statistics describe real activations: finite values, ordered ranges,
// non-negative magnitudes, and a linear input range that is not all zero or denormal (its
// quantization scale would be floored at epsilon and the model wrecked: perplexity 8196 for
// 10.86 with good statistics).
Status check_linear(const std::string& path, const std::string& prefix, const LinearStats& ls) {
  auto bad = [&](const char* field, const std::string& why) {
    return make_error(Errc::numeric, "statistics " + why, path, prefix + "." + field);
  };
  auto all_finite = [](const auto& v) {
    for (const auto x : v)
      if (!std::isfinite(x)) return false;
    return true;
  };
  auto min_of = [](const auto& v) { return v.empty() ? 0.0 : double(*std::min_element(v.begin(), v.end())); };
  if (!std::isfinite(ls.min)) return bad("input_min", "hold NaN or Inf");
  if (!std::isfinite(ls.max)) return bad("input_max", "hold NaN or Inf");
  if (ls.min > ls.max) return bad("input_min", "range is inverted: input_min is above input_max");
  if (!all_finite(ls.absmax) || min_of(ls.absmax) < 0) return bad("input_absmax", "hold NaN, Inf or a negative magnitude");
  if (!all_finite(ls.sumsq) || min_of(ls.sumsq) < 0) return bad("input_sumsq", "hold NaN, Inf or a negative sum of squares");
  if (!all_finite(ls.chmin) || !all_finite(ls.chmax)) return bad("input_chmin", "hold NaN or Inf");
  for (size_t i = 0; i < ls.chmin.size(); ++i)
    if (ls.chmin[i] > ls.chmax[i]) return bad("input_chmin", "range of channel " + std::to_string(i) + " is inverted");
  if (std::max(std::fabs(ls.min), std::fabs(ls.max)) < std::numeric_limits<float>::min() ||
      *std::max_element(ls.absmax.begin(), ls.absmax.end()) < std::numeric_limits<float>::min())
    return bad("input_max", "range is all zero or denormal: no activation was measured");
  if (ls.tokens <= 0) return bad("tokens", "count no tokens");
  return Status{};
}

Status check_extra(const std::string& path, const std::string& name, const std::vector<float>& v) {
  for (const float x : v)
    if (!std::isfinite(x) || (x < 0 && name.find("absmax") != std::string::npos))
      return make_error(Errc::numeric, "statistics hold NaN, Inf or a negative magnitude", path, name);
  return Status{};
}

}  // namespace

Result<ActivationStats> load_stats(const std::string& path) {
  ST_ASSIGN(auto file, SafetensorsFile::open(path));
  ActivationStats s;
  s.metadata = file->header().metadata;
  for (const auto& t : file->header().tensors) {
    const ByteView v = file->data(t);
    std::string prefix, field;
    auto need = [&](DType dt, uint64_t n) -> Status {
      if (t.dtype != dt || t.numel() != n)
        return make_error(Errc::format, std::string("statistics tensor must be ") + dtype_name(dt) + " with " +
                                            std::to_string(n) + " elements", path, t.name);
      return Status{};
    };
    if (split_linear_key(t.name, prefix, field)) {
      LinearStats& ls = s.linears[prefix];
      if (field == "input_min") {
        ST_CHECK(need(DType::F32, 1));
        std::memcpy(&ls.min, v.data, 4);
      } else if (field == "input_max") {
        ST_CHECK(need(DType::F32, 1));
        std::memcpy(&ls.max, v.data, 4);
      } else if (field == "input_absmax") {
        ST_CHECK(need(DType::F32, t.numel()));
        ls.absmax.resize(t.numel());
        std::memcpy(ls.absmax.data(), v.data, v.size);
      } else if (field == "input_sumsq") {
        ST_CHECK(need(DType::F64, t.numel()));
        ls.sumsq.resize(t.numel());
        std::memcpy(ls.sumsq.data(), v.data, v.size);
      } else if (field == "input_chmin" || field == "input_chmax") {
        ST_CHECK(need(DType::F32, t.numel()));
        auto& dst = field == "input_chmin" ? ls.chmin : ls.chmax;
        dst.resize(t.numel());
        std::memcpy(dst.data(), v.data, v.size);
      } else {
        ST_CHECK(need(DType::I64, 1));
        std::memcpy(&ls.tokens, v.data, 8);
      }
    } else {
      if (t.dtype != DType::F32) return make_error(Errc::format, "statistics tensor must be F32", path, t.name);
      auto& out = s.extra[t.name];
      out.resize(t.numel());
      std::memcpy(out.data(), v.data, v.size);
      s.extra_shapes[t.name] = t.shape;
    }
  }
  for (const auto& [prefix, ls] : s.linears) {
    if (ls.absmax.empty() || ls.sumsq.size() != ls.absmax.size())
      return make_error(Errc::format, "linear statistics incomplete (need input_min, input_max, input_absmax, "
                                      "input_sumsq of equal length, tokens)", path, prefix);
    if (ls.chmin.size() != ls.chmax.size() || (!ls.chmin.empty() && ls.chmin.size() != ls.absmax.size()))
      return make_error(Errc::format, "input_chmin and input_chmax must both be present with input_absmax's length",
                        path, prefix);
    ST_CHECK(check_linear(path, prefix, ls));
  }
  for (const auto& [name, values] : s.extra) ST_CHECK(check_extra(path, name, values));
  return s;
}

Status save_stats(const ActivationStats& stats, const std::string& path) {
  std::vector<TensorSpec> plan;
  for (const auto& [p, ls] : stats.linears) {
    const auto k = static_cast<int64_t>(ls.absmax.size());
    plan.push_back({p + ".input_min", DType::F32, {1}});
    plan.push_back({p + ".input_max", DType::F32, {1}});
    plan.push_back({p + ".input_absmax", DType::F32, {k}});
    plan.push_back({p + ".input_sumsq", DType::F64, {k}});
    plan.push_back({p + ".tokens", DType::I64, {1}});
    if (!ls.chmin.empty()) {
      plan.push_back({p + ".input_chmin", DType::F32, {k}});
      plan.push_back({p + ".input_chmax", DType::F32, {k}});
    }
  }
  for (const auto& [name, values] : stats.extra) {
    auto shape_it = stats.extra_shapes.find(name);
    std::vector<int64_t> shape = shape_it != stats.extra_shapes.end()
                                     ? shape_it->second
                                     : std::vector<int64_t>{static_cast<int64_t>(values.size())};
    plan.push_back({name, DType::F32, shape});
  }
  Metadata md = stats.metadata;
  md["st.stats.version"] = "1";
  ST_ASSIGN(auto w, SafetensorsWriter::create(path, plan, md));
  for (const auto& [p, ls] : stats.linears) {
    ST_CHECK(w->write(p + ".input_min", &ls.min, 4));
    ST_CHECK(w->write(p + ".input_max", &ls.max, 4));
    ST_CHECK(w->write(p + ".input_absmax", ls.absmax.data(), ls.absmax.size() * 4));
    ST_CHECK(w->write(p + ".input_sumsq", ls.sumsq.data(), ls.sumsq.size() * 8));
    ST_CHECK(w->write(p + ".tokens", &ls.tokens, 8));
    if (!ls.chmin.empty()) {
      ST_CHECK(w->write(p + ".input_chmin", ls.chmin.data(), ls.chmin.size() * 4));
      ST_CHECK(w->write(p + ".input_chmax", ls.chmax.data(), ls.chmax.size() * 4));
    }
  }
  for (const auto& [name, values] : stats.extra) ST_CHECK(w->write(name, values.data(), values.size() * 4));
  return w->finish();
}

}  // namespace st
