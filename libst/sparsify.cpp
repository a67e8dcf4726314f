// W8A8S: row-wise pruning (magnitude, Wanda, N:M) followed by W8A8 static quantization.
#include "libst/sparsify.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "libst/architecture.hpp"
#include "libst/output.hpp"
#include "libst/quant/w8a8.hpp"
#include "libst/safetensors.hpp"
#include "libst/sparsegpt.hpp"

namespace st {
namespace {

constexpr const char* kType = "W8A8S";
constexpr const char* kWeightFile = "quant_model_weight_w8a8s.safetensors";

void parallel_rows(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  if (t <= 1) {
    body(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t per = (n + t - 1) / t;
  for (int64_t i = 0; i < t; ++i) {
    const int64_t a = i * per, b = std::min(n, a + per);
    if (a < b) pool.emplace_back(body, a, b);
  }
  for (auto& th : pool) th.join();
}

// Zeroes the `quota` lowest (score, column) entries among cand; returns how many it zeroed.
uint64_t zero_lowest(float* w, const float* score, std::vector<int32_t>& cand, int64_t quota) {
  quota = std::min<int64_t>(quota, static_cast<int64_t>(cand.size()));
  if (quota <= 0) return 0;
  auto less = [score](int32_t a, int32_t b) { return score[a] < score[b] || (score[a] == score[b] && a < b); };
  if (quota < static_cast<int64_t>(cand.size())) std::nth_element(cand.begin(), cand.begin() + (quota - 1), cand.end(), less);
  for (int64_t i = 0; i < quota; ++i) w[cand[i]] = 0.f;
  return static_cast<uint64_t>(quota);
}

uint64_t prune_row(float* w, int64_t k, const float* norm, const PruneSpec& s, std::vector<float>& score,
                   std::vector<int32_t>& cand, std::vector<char>& prot) {
  score.resize(k);
  for (int64_t j = 0; j < k; ++j) score[j] = std::fabs(w[j]) * (norm ? norm[j] : 1.f);
  prot.assign(k, 0);
  const int64_t keep = std::llround(s.protect * static_cast<double>(k));
  if (keep > 0) {
    cand.resize(k);
    for (int64_t j = 0; j < k; ++j) cand[j] = static_cast<int32_t>(j);
    auto more = [w](int32_t a, int32_t b) {
      const float x = std::fabs(w[a]), y = std::fabs(w[b]);
      return x > y || (x == y && a < b);
    };
    const int64_t m = std::min(keep, k);
    if (m < k) std::nth_element(cand.begin(), cand.begin() + (m - 1), cand.end(), more);
    for (int64_t i = 0; i < m; ++i) prot[cand[i]] = 1;
  }
  uint64_t pruned = 0;
  if (s.method == SparsifyMethod::nm) {
    const int64_t M = s.nm_m, drop = s.nm_m - s.nm_n;
    for (int64_t g0 = 0; g0 < k; g0 += M) {
      const int64_t len = std::min(M, k - g0);
      cand.clear();
      for (int64_t j = g0; j < g0 + len; ++j)
        if (!prot[j]) cand.push_back(static_cast<int32_t>(j));
      pruned += zero_lowest(w, score.data(), cand, len == M ? drop : len * drop / M);
    }
  } else {
    cand.clear();
    for (int64_t j = 0; j < k; ++j)
      if (!prot[j]) cand.push_back(static_cast<int32_t>(j));
    const auto quota = static_cast<int64_t>(std::floor(s.ratio * static_cast<double>(k) + 1e-9));
    pruned += zero_lowest(w, score.data(), cand, quota);
  }
  return pruned;
}

struct LinearPlan {
  const LinearInfo* info = nullptr;
  bool quantize = false;
  w8a8::ActivationParams act;
  std::vector<float> norm;  // ||x_j||_2 for Wanda / N:M scores
  bool fallback = false;    // an expert without statistics: magnitude, range from its peers
};

std::vector<TensorSpec> linear_specs(const LinearInfo& l, DType model) {
  const int64_t n = l.out_features, k = l.in_features;
  return {{l.prefix + ".weight", DType::I8, {n, k}},
          {l.prefix + ".weight_scale", DType::F32, {n, 1}},
          {l.prefix + ".weight_offset", DType::F32, {n, 1}},
          {l.prefix + ".input_scale", model, {1}},
          {l.prefix + ".input_offset", model, {1}},
          {l.prefix + ".deq_scale", w8a8::deq_scale_dtype(model), {n}},
          {l.prefix + ".quant_bias", DType::I32, {n}}};
}

Status write_text(const std::string& path, const std::string& text) {
  ST_ASSIGN(auto f, OutputFile::create(path));
  ST_CHECK(f->write(text.data(), text.size()));
  return f->commit();
}

}  // namespace

const char* sparsify_method_name(SparsifyMethod m) {
  switch (m) {
    case SparsifyMethod::magnitude: return "magnitude";
    case SparsifyMethod::wanda: return "wanda";
    case SparsifyMethod::nm: return "nm";
    case SparsifyMethod::sparsegpt: return "sparsegpt";
  }
  return "?";
}

Status check_prune_spec(const PruneSpec& s) {
  if (!(s.ratio >= 0 && s.ratio < 1)) return make_error(Errc::usage, "--ratio must be in [0, 1)");
  if (!(s.protect >= 0 && s.protect <= 1)) return make_error(Errc::usage, "--protect must be in [0, 1]");
  if (s.method == SparsifyMethod::nm && !(s.nm_n > 0 && s.nm_n < s.nm_m && s.nm_m <= 64))
    return make_error(Errc::usage, "--nm N:M needs 0 < N < M <= 64");
  return Status{};
}

uint64_t prune_rows(float* w, int64_t n, int64_t k, const float* col_norm, const PruneSpec& spec, int threads) {
  std::atomic<uint64_t> total{0};
  parallel_rows(n, threads, [&](int64_t a, int64_t b) {
    std::vector<float> score;
    std::vector<int32_t> cand;
    std::vector<char> prot;
    uint64_t local = 0;
    for (int64_t r = a; r < b; ++r)
      local += prune_row(w + r * k, k, col_norm, spec, score, cand, prot);
    total += local;
  });
  return total;
}

Result<SparsifySummary> sparsify(Checkpoint& ckpt, const SparsifyOptions& o) {
  ST_CHECK(check_prune_spec(o.prune));
  if (ckpt.description() || ckpt.layout() == Layout::quantized)
    return make_error(Errc::usage, "input is already quantized (it has a quant_model_description); give the float model",
                      ckpt.path());
  if (ckpt.layout() == Layout::parts)
    return make_error(Errc::unsupported, "input is a set of part folders: merge them first (st-shard --merge)", ckpt.path());
  for (const auto& e : ckpt.tensors())
    if (e.info->dtype == DType::I8) return make_error(Errc::usage, "input is already quantized (int8 tensor)", ckpt.path(), e.name());
  if (!o.stats) return make_error(Errc::usage, "W8A8S needs activation statistics (st-calibrate)");
  if (o.output.empty()) return make_error(Errc::usage, "no output given");
  if (same_file(o.output, ckpt.path())) return make_error(Errc::usage, "output is the input", o.output);
  ST_ASSIGN(Architecture arch, Architecture::of(ckpt));
  const DType model = arch.dtype();
  if (model != DType::F16 && model != DType::BF16)
    return make_error(Errc::unsupported,
                      std::string("model dtype ") + dtype_name(model) + ": the W8A8S layout is defined for F16 and BF16 models",
                      ckpt.path());

  // Which linears, their activation parameters and Wanda norms; every statistic checked first.
  const bool need_norm = o.prune.method != SparsifyMethod::magnitude && o.prune.method != SparsifyMethod::sparsegpt;
  const bool sparsegpt = o.prune.method == SparsifyMethod::sparsegpt;
  if (sparsegpt && !o.gram) return make_error(Errc::usage, "sparsegpt needs calibration data (--data)");
  std::map<std::string, bool> group_float;
  std::vector<bool> glob_used(o.float_globs.size(), false);
  for (const auto& l : arch.linears()) {
    bool f = l.float_by_default;
    for (size_t i = 0; i < o.float_globs.size(); ++i)
      if (fnmatch(o.float_globs[i].c_str(), l.prefix.c_str(), 0) == 0 ||
          fnmatch(o.float_globs[i].c_str(), l.weight_name().c_str(), 0) == 0)
        f = glob_used[i] = true;
    group_float[l.group] = group_float[l.group] || f;
  }
  for (size_t i = 0; i < o.float_globs.size(); ++i)
    if (!glob_used[i]) return make_error(Errc::usage, "--float '" + o.float_globs[i] + "' matches no linear", ckpt.path());
  std::map<std::string, LinearPlan> plans;
  w8a8::GroupRanges ranges;
  SparsifySummary sum;
  for (const auto& l : arch.linears()) {
    LinearPlan& p = plans[l.prefix];
    p.info = &l;
    p.quantize = !group_float[l.group];
    if (!p.quantize) {
      ++sum.linears_float;
      continue;
    }
    const LinearStats* s = o.stats->linear(l.prefix);
    if ((!s || s->tokens == 0) && l.expert >= 0) {
      // A routed expert no calibration token reached: its input range is taken from the same
      // role in the layer's other experts (gate/up read the same hidden states; down the same
      // kind of activation) and it is pruned by magnitude.
      bool found = false;
      float lo = 0, hi = 0;
      for (const auto& other : arch.linears()) {
        if (other.layer != l.layer || other.role != l.role || !other.is_expert() || other.prefix == l.prefix) continue;
        const LinearStats* os = o.stats->linear(other.prefix);
        if (!os || os->tokens == 0 || !std::isfinite(os->min) || !std::isfinite(os->max)) continue;
        lo = found ? std::min(lo, os->min) : os->min;
        hi = found ? std::max(hi, os->max) : os->max;
        found = true;
      }
      if (!found)
        return make_error(Errc::format, "no statistics for this expert nor for any other expert of its layer", o.stats_path,
                          l.prefix);
      p.fallback = true;
      sum.fallbacks.push_back(l.prefix);
      ranges.add(l.group, lo, hi);
      continue;
    }
    if (!s) return make_error(Errc::format, "no statistics for this linear (calibrate the same model)", o.stats_path, l.prefix);
    if (!std::isfinite(s->min) || !std::isfinite(s->max))
      return make_error(Errc::numeric, "statistics input_min/input_max are not finite (NaN or Inf)", o.stats_path, l.prefix);
    if (need_norm) {
      if (static_cast<int64_t>(s->sumsq.size()) != l.in_features)
        return make_error(Errc::format, "statistics hold " + std::to_string(s->sumsq.size()) +
                                            " input_sumsq values, the linear has " + std::to_string(l.in_features) +
                                            " input channels (Wanda needs them; statistics of another model?)",
                          o.stats_path, l.prefix);
      p.norm.resize(s->sumsq.size());
      for (size_t j = 0; j < s->sumsq.size(); ++j) {
        if (!std::isfinite(s->sumsq[j]) || s->sumsq[j] < 0)
          return make_error(Errc::numeric, "input_sumsq[" + std::to_string(j) + "] is negative, NaN or Inf", o.stats_path,
                            l.prefix);
        p.norm[j] = static_cast<float>(std::sqrt(s->sumsq[j]));
      }
    }
    ranges.add(l.group, s->min, s->max);
  }
  ST_ASSIGN(auto group_act, ranges.params(model, o.stats_path));
  for (auto& [prefix, p] : plans)
    if (p.quantize) p.act = group_act[p.info->group];

  // Output plan: input order; a pruned linear's tensors where its weight was, its bias folded.
  Description desc;
  desc.set_top("model_quant_type", kType);
  std::vector<TensorSpec> specs;
  for (const auto& e : ckpt.tensors()) {
    const LinearInfo* l = arch.linear_of_tensor(e.name());
    if (l && plans[l->prefix].quantize) {
      if (e.name() == l->bias_name()) continue;
      for (auto& s : linear_specs(*l, model)) {
        desc.set_type(s.name, kType);
        specs.push_back(std::move(s));
      }
    } else {
      desc.set_type(e.name(), "FLOAT");
      specs.push_back({e.name(), e.info->dtype, e.info->shape});
    }
  }
  ST_ASSIGN(auto dir, OutputDir::create(o.output, o.force));
  // Says how the weights were pruned: with sparsegpt the kept weights were updated, so they are
  // not round(W / scale) of the float model (st-verify --against must not expect that).
  Metadata md;
  md["st.sparsify.method"] = sparsify_method_name(o.prune.method);
  md["st.sparsify.pattern"] = o.prune.method == SparsifyMethod::nm
                                  ? std::to_string(o.prune.nm_n) + ":" + std::to_string(o.prune.nm_m)
                                  : std::to_string(o.prune.ratio);
  md["st.sparsify.protect"] = std::to_string(o.prune.protect);
  md["st.sparsify.weights_updated"] = sparsegpt ? "1" : "0";
  ST_ASSIGN(auto writer, SafetensorsWriter::create(dir->file(kWeightFile), specs, md, WriterOptions{}));
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const uint64_t total = arch.linears().size() - sum.linears_float;
  for (const auto& e : ckpt.tensors()) {
    const LinearInfo* l = arch.linear_of_tensor(e.name());
    if (!l || !plans[l->prefix].quantize) {
      const ByteView v = ckpt.data(e);
      if (!v.data && v.size == 0 && e.info->nbytes() != 0)
        return make_error(Errc::usage, "input must be readable in any order (a file or directory)", ckpt.path(), e.name());
      ST_CHECK(writer->write(e.name(), v.data, v.size));
      ckpt.release(e);
      continue;
    }
    if (e.name() == l->bias_name()) continue;
    const LinearPlan& p = plans[l->prefix];
    const int64_t n = l->out_features, k = l->in_features;
    ST_ASSIGN(std::vector<float> w, ckpt.read_f32(e));
    ckpt.release(e);
    for (float x : w)
      if (!std::isfinite(x)) return make_error(Errc::numeric, "weight has NaN or Inf", ckpt.path(), e.name());
    LinearSparsity ls;
    ls.prefix = l->prefix;
    ls.layer = l->layer;
    ls.n = n;
    ls.k = k;
    const bool use_norm = need_norm && !p.norm.empty();
    const auto g = sparsegpt ? o.gram->by_group.find(l->group) : std::map<std::string, std::vector<double>>::const_iterator{};
    const bool have_gram = sparsegpt && g != o.gram->by_group.end() && o.gram->dim.at(l->group) == k;
    if (sparsegpt && !have_gram && !p.fallback) {
      if (l->expert < 0)
        return make_error(Errc::format, "no input Gram matrix for this linear (the calibration data never reached it)",
                          ckpt.path(), l->prefix);
      sum.fallbacks.push_back(l->prefix);  // an expert the --data tokens never reached: magnitude
    }
    if (p.fallback || (sparsegpt && !have_gram)) {
      PruneSpec mag = o.prune;
      if (mag.method != SparsifyMethod::nm) mag.method = SparsifyMethod::magnitude;
      ls.pruned = prune_rows(w.data(), n, k, nullptr, mag, threads);
    } else if (sparsegpt) {
      auto pr = sparsegpt_prune(w.data(), n, k, g->second.data(), o.prune, threads);
      if (!pr) return std::move(pr.error()).in_file(ckpt.path()).in_tensor(e.name());
      ls.pruned = *pr;
    } else {
      ls.pruned = prune_rows(w.data(), n, k, use_norm ? p.norm.data() : nullptr, o.prune, threads);
    }
    std::vector<int8_t> q(static_cast<size_t>(n * k));
    std::vector<float> scale(n), deq(n), zeros(n, 0.f);
    std::vector<int64_t> row_sum(n);
    Status s = w8a8::quantize_rows(DType::F32, w.data(), n, k, q.data(), scale.data(), row_sum.data(), threads);
    if (!s) return std::move(s).error().in_file(ckpt.path()).in_tensor(e.name());
    for (int8_t x : q) ls.zeros += x == 0;
    std::vector<float> bias;
    if (const TensorEntry* b = ckpt.find(l->bias_name())) {
      ST_ASSIGN(bias, ckpt.read_f32(*b));
      for (float x : bias)
        if (!std::isfinite(x)) return make_error(Errc::numeric, "bias has NaN or Inf", ckpt.path(), b->name());
    }
    w8a8::deq_scale(p.act.scale, scale.data(), n, deq.data());
    std::vector<uint8_t> deq_bytes(static_cast<size_t>(n) * (dtype_bits(w8a8::deq_scale_dtype(model)) / 8));
    w8a8::encode_deq_scale(model, deq.data(), n, deq_bytes.data());
    std::vector<int32_t> qb(n);
    s = w8a8::quant_bias(bias.empty() ? nullptr : bias.data(), deq.data(), row_sum.data(), p.act.offset, n, qb.data());
    if (!s) return std::move(s).error().in_file(ckpt.path()).in_tensor(l->prefix + ".quant_bias");
    uint8_t in_scale[4] = {}, in_offset[4] = {};
    from_f32(model, &p.act.scale, in_scale, 1);
    from_f32(model, &p.act.offset, in_offset, 1);
    const size_t d = dtype_bits(model) / 8;
    ST_CHECK(writer->write(l->prefix + ".weight", q.data(), q.size()));
    ST_CHECK(writer->write(l->prefix + ".weight_scale", scale.data(), scale.size() * 4));
    ST_CHECK(writer->write(l->prefix + ".weight_offset", zeros.data(), zeros.size() * 4));
    ST_CHECK(writer->write(l->prefix + ".input_scale", in_scale, d));
    ST_CHECK(writer->write(l->prefix + ".input_offset", in_offset, d));
    ST_CHECK(writer->write(l->prefix + ".deq_scale", deq_bytes.data(), deq_bytes.size()));
    ST_CHECK(writer->write(l->prefix + ".quant_bias", qb.data(), qb.size() * 4));
    sum.elements += static_cast<uint64_t>(n * k);
    sum.pruned += ls.pruned;
    sum.zeros += ls.zeros;
    sum.linears.push_back(std::move(ls));
    if (o.progress) o.progress(sum.linears.size(), total);
  }
  ST_CHECK(writer->finish());

  std::map<std::string, std::string> side = ckpt.side_files();
  side.erase(kDescriptionFile);
  if (auto it = side.find("config.json"); it != side.end()) {
    try {
      auto cfg = nlohmann::ordered_json::parse(it->second);
      cfg["quantize"] = "w8a8s";
      it->second = cfg.dump(2) + "\n";
    } catch (const nlohmann::json::exception& ex) {
      return make_error(Errc::format, std::string("config.json is not valid JSON: ") + ex.what(), ckpt.path());
    }
  }
  ST_CHECK(write_text(dir->file(kDescriptionFile), desc.dump()));
  for (const auto& [name, text] : side) ST_CHECK(write_text(dir->file(name), text));
  ST_CHECK(dir->commit());
  return sum;
}

}  // namespace st
