// Whole-checkpoint W8A8 quantization: plan the output up front, then stream tensor by tensor
// (compute on the calling thread, writing on a second one, memory bounded by what is in flight).
#include "libst/quant/quantize.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "libst/core/parallel.hpp"
#include "libst/format/output.hpp"
#include "libst/quant/smooth.hpp"
#include "libst/quant/w8a8.hpp"
#include "libst/format/safetensors.hpp"

namespace st {
namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();
// Bytes handed to the writer but not yet written (owned buffers and mapped input pages).
constexpr uint64_t kInFlightCap = 160ull << 20;

uint64_t spec_bytes(const TensorSpec& s) {
  uint64_t n = 1;
  for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
  return n * dtype_bits(s.dtype) / 8;
}

struct OutEntry {
  TensorSpec spec;
  std::string type;
};

// An uninitialised byte buffer (no zero fill: every byte is written before use).
struct Bytes {
  explicit Bytes(size_t n) : p(new uint8_t[n]), size(n) {}
  std::unique_ptr<uint8_t[]> p;
  size_t size;
  uint8_t* data() { return p.get(); }
};
using Owned = std::shared_ptr<Bytes>;
Owned make_owned(size_t n) { return std::make_shared<Bytes>(n); }

struct LinearPlan {
  const LinearInfo* info = nullptr;
  bool quantize = false;
  w8a8::ActivationParams act;
  size_t weight_idx = kNone, bias_idx = kNone, emit_at = kNone;
  // Pending state while waiting for the other half (static: weight or bias).
  bool have_weight = false, have_bias = false;
  Owned q;
  std::vector<float> scale, bias;
  std::vector<int64_t> row_sum;
};

struct Piece {
  std::string name;
  const void* data = nullptr;
  size_t size = 0;
  Owned owned;
};

struct Job {
  std::vector<Piece> pieces;
  std::function<void()> after;  // runs once the pieces are written (releases mapped pages)
  uint64_t bytes = 0;
};

struct FilePlan {
  std::string path;  // where the writer creates it (inside the temporary output directory)
  std::vector<TensorSpec> specs;
  Metadata metadata;
};

// Writes jobs in order on its own thread, opening and finishing the planned files in turn.
class Writer {
 public:
  explicit Writer(std::vector<FilePlan> files) : files_(std::move(files)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Writer() {
    if (thread_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(m_);
        closing_ = true;
      }
      cv_.notify_all();
      thread_.join();
    }
  }

  Status push(Job job) {
    std::unique_lock<std::mutex> lock(m_);
    space_.wait(lock, [&] { return failed_ || in_flight_ == 0 || in_flight_ + job.bytes <= kInFlightCap; });
    if (failed_) return error_;
    in_flight_ += job.bytes;
    queue_.push_back(std::move(job));
    cv_.notify_all();
    return Status{};
  }

  // Waits for every job; when complete, also finishes files that got no tensor (an empty model).
  Status finish(bool complete) {
    {
      std::lock_guard<std::mutex> lock(m_);
      closing_ = true;
    }
    cv_.notify_all();
    thread_.join();
    if (failed_) return error_;
    while (complete && next_file_ < files_.size()) {
      ST_CHECK(open_next());
      ST_CHECK(close_current());
    }
    return Status{};
  }

 private:
  Status open_next() {
    const FilePlan& f = files_[next_file_++];
    ST_ASSIGN(writer_, SafetensorsWriter::create(f.path, f.specs, f.metadata, WriterOptions{}));
    written_ = 0;
    return Status{};
  }
  Status close_current() {
    Status s = writer_->finish();
    writer_.reset();
    return s;
  }
  Status write(const Piece& p) {
    if (!writer_) ST_CHECK(open_next());
    ST_CHECK(writer_->write(p.name, p.data, p.size));
    if (++written_ == files_[next_file_ - 1].specs.size()) ST_CHECK(close_current());
    return Status{};
  }
  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      if (!failed_) {
        for (const Piece& p : job.pieces) {
          Status s = write(p);
          if (!s) {
            std::lock_guard<std::mutex> lock(m_);
            error_ = std::move(s);
            failed_ = true;
            break;
          }
        }
      }
      if (job.after) job.after();
      {
        std::lock_guard<std::mutex> lock(m_);
        in_flight_ -= job.bytes;
      }
      space_.notify_all();
    }
  }

  std::vector<FilePlan> files_;
  size_t next_file_ = 0, written_ = 0;
  std::unique_ptr<SafetensorsWriter> writer_;
  std::thread thread_;
  std::mutex m_;
  std::condition_variable cv_, space_;
  std::deque<Job> queue_;
  uint64_t in_flight_ = 0;
  bool closing_ = false;
  std::atomic<bool> failed_{false};
  Status error_;
};

bool glob_matches(const std::string& glob, const LinearInfo& l) {
  return fnmatch(glob.c_str(), l.prefix.c_str(), 0) == 0 || fnmatch(glob.c_str(), l.weight_name().c_str(), 0) == 0;
}

// Output tensors of a quantized linear, in the order they are written.
std::vector<TensorSpec> linear_specs(const LinearInfo& l, W8A8Mode mode, DType model) {
  const int64_t n = l.out_features, k = l.in_features;
  std::vector<TensorSpec> v = {{l.prefix + ".weight", DType::I8, {n, k}},
                               {l.prefix + ".weight_scale", DType::F32, {n, 1}},
                               {l.prefix + ".weight_offset", DType::F32, {n, 1}}};
  if (mode != W8A8Mode::w8a8_dynamic) {
    v.push_back({l.prefix + ".input_scale", model, {1}});
    v.push_back({l.prefix + ".input_offset", model, {1}});
    v.push_back({l.prefix + ".deq_scale", w8a8::deq_scale_dtype(model), {n}});
    v.push_back({l.prefix + ".quant_bias", DType::I32, {n}});
  }
  return v;
}

Owned owned_bytes(const void* p, size_t n) {
  Owned b = make_owned(n);
  if (n) std::memcpy(b->data(), p, n);
  return b;
}
template <class T>
Owned owned_array(const T* p, size_t count) {
  return owned_bytes(p, count * sizeof(T));
}
Owned owned_scalar(DType dtype, float v) {
  Owned b = make_owned(dtype_bits(dtype) / 8);
  from_f32(dtype, &v, b->data(), 1);
  return b;
}
Owned owned_zeros(size_t n) {
  Owned b = make_owned(n);
  std::memset(b->data(), 0, n);
  return b;
}

Piece piece(std::string name, Owned owned) {
  Piece p;
  p.name = std::move(name);
  p.data = owned->data();
  p.size = owned->size;
  p.owned = std::move(owned);
  return p;
}

Status check_stats_channels(const LinearStats& s, const LinearInfo& l, const std::string& stats_path) {
  if (!s.absmax.empty() && static_cast<int64_t>(s.absmax.size()) != l.in_features)
    return make_error(Errc::format,
                      "statistics cover " + std::to_string(s.absmax.size()) + " input channels, the linear has " +
                          std::to_string(l.in_features) + " (statistics of another model?)",
                      stats_path, l.prefix);
  return Status{};
}

// A routed expert that no calibration token reached has no statistics. All routed experts of a
// layer read the same hidden states, which the shared expert sees in full: gate/up borrow the
// shared expert's range (else the union of the layer's other experts'); down_proj, whose input
// is the expert's own, borrows the union of the layer's other experts' down_proj ranges.
std::optional<std::pair<float, float>> expert_fallback_range(const Architecture& arch, const ActivationStats& stats,
                                                            const LinearInfo& l) {
  if (l.expert < 0) return std::nullopt;
  const size_t cut = l.prefix.rfind(".experts.");
  if (cut == std::string::npos) return std::nullopt;
  const std::string mlp = l.prefix.substr(0, cut);
  const std::string leaf = l.prefix.substr(l.prefix.rfind('.') + 1);
  if (l.role != LinearRole::down) {
    if (const LinearStats* sh = stats.linear(mlp + ".shared_experts." + leaf)) return std::make_pair(sh->min, sh->max);
  }
  std::optional<std::pair<float, float>> r;
  for (const auto& other : arch.linears()) {
    if (other.layer != l.layer || other.expert < 0 || other.role != l.role) continue;
    const LinearStats* s = stats.linear(other.prefix);
    if (!s) continue;
    r = r ? std::make_pair(std::min(r->first, s->min), std::max(r->second, s->max)) : std::make_pair(s->min, s->max);
  }
  return r;
}

// Tensor t as fp32 values: a copy of its replacement values, or its bytes converted (rows in
// parallel: weights are the big tensors).
Result<std::vector<float>> f32_values(const TensorInfo& t, ByteView bytes, const std::vector<float>* over,
                                      const std::string& path) {
  if (over) return *over;
  std::vector<float> v(t.numel());
  const int64_t rows = t.shape.empty() ? 1 : t.shape[0];
  const int64_t per_row = rows > 0 ? static_cast<int64_t>(v.size()) / rows : 0;
  const size_t row_bytes = static_cast<size_t>(per_row) * dtype_bits(t.dtype) / 8;
  std::atomic<bool> ok{true};
  parallel_for(
      rows,
      [&](int64_t r0, int64_t r1) {
        if (!to_f32(t.dtype, bytes.data + r0 * row_bytes, v.data() + r0 * per_row,
                    static_cast<size_t>((r1 - r0) * per_row)))
          ok = false;
      },
      16);
  if (!ok)
    return make_error(Errc::unsupported, std::string("cannot read a tensor of dtype ") + dtype_name(t.dtype), path,
                      t.name);
  return v;
}

// One attention-quantization tensor, its bytes computed from the statistics.
struct FaTensor {
  TensorSpec spec;
  Owned bytes;
};

// FAQuant (standard attention): A.fa_{q,k,v}.scale [heads or kv_heads, 1] in the model dtype;
// FAKQuant (MLA): A.fa_q.scale [heads,1], A.fa_k.scale and A.fa_v.scale [1,1] in F32, from the
// absorbed-q and KV-latent absmax. scale = max(absmax / 127, eps); offsets int8 zeros.
Result<std::vector<FaTensor>> fa_tensors(const Architecture& arch, const ActivationStats& stats,
                                         const std::string& stats_path) {
  std::vector<FaTensor> out;
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
    FaTensor scale{{base + ".scale", sdt, {rows, 1}}, make_owned(rows * (dtype_bits(sdt) / 8))};
    std::vector<float> v(rows);
    for (int64_t i = 0; i < rows; ++i)
      v[i] = w8a8::round_to(sdt, std::max(absmax[absmax.size() == 1 ? 0 : i] / 127.0f, w8a8::kEps));
    from_f32(sdt, v.data(), scale.bytes->data(), rows);
    out.push_back(std::move(scale));
    out.push_back({{base + ".offset", DType::I8, {rows, 1}}, owned_zeros(rows)});
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

}  // namespace

const char* w8a8_type_name(W8A8Mode mode) {
  switch (mode) {
    case W8A8Mode::w8a8_static: return "W8A8";
    case W8A8Mode::w8a8_dynamic: return "W8A8_DYNAMIC";
    case W8A8Mode::w8a8s: return "W8A8S";
  }
  return "?";
}
std::string w8a8_file_stem(W8A8Mode mode) {
  std::string stem = w8a8_type_name(mode);
  for (auto& c : stem) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return "quant_model_weight_" + stem;
}

Result<QuantizeSummary> quantize_w8a8(Checkpoint& ckpt, const QuantizeOptions& o) {
  const bool is_static = o.mode != W8A8Mode::w8a8_dynamic;
  const std::string qtype = w8a8_type_name(o.mode);
  if (ckpt.description() || ckpt.layout() == Layout::quantized)
    return make_error(Errc::usage, "input is already quantized (it has a quant_model_description)", ckpt.path());
  if (ckpt.layout() == Layout::parts)
    return make_error(Errc::unsupported, "input is a set of part folders: merge them first (st-shard --merge)",
                      ckpt.path());
  for (const auto& e : ckpt.tensors())
    if (e.info->dtype == DType::I8)
      return make_error(Errc::usage, "input is already quantized (int8 tensor)", ckpt.path(), e.name());
  ST_ASSIGN(Architecture arch, Architecture::of(ckpt));
  const DType model = arch.dtype();
  if (model != DType::F16 && model != DType::BF16)
    return make_error(Errc::unsupported,
                      std::string("model dtype ") + dtype_name(model) +
                          ": the " + qtype + " layout is defined for F16 and BF16 models",
                      ckpt.path());
  if (is_static && !o.stats) return make_error(Errc::usage, "static W8A8 needs activation statistics");
  if (!o.output) return make_error(Errc::usage, "no output given");

  // Float or quantized, group by group.
  std::map<std::string, bool> group_float;
  std::vector<bool> glob_used(o.float_globs.size(), false);
  for (const auto& l : arch.linears()) {
    bool f = l.float_by_default;
    for (size_t g = 0; g < o.float_globs.size(); ++g)
      if (glob_matches(o.float_globs[g], l)) f = glob_used[g] = true;
    group_float[l.group] = group_float[l.group] || f;
  }
  for (size_t g = 0; g < o.float_globs.size(); ++g)
    if (!glob_used[g])
      return make_error(Errc::usage, "--float '" + o.float_globs[g] + "' matches no linear", ckpt.path());

  QuantizeSummary summary;
  std::map<std::string, LinearPlan> plans;
  std::map<std::string, w8a8::ActivationParams> group_act;
  for (const auto& l : arch.linears()) {
    LinearPlan& p = plans[l.prefix];
    p.info = &l;
    p.quantize = !group_float[l.group];
    (p.quantize ? summary.linears_quantized : summary.linears_float)++;
  }
  if (is_static) {
    // Validate every statistic before writing anything.
    w8a8::GroupRanges ranges;
    size_t borrowed = 0;
    for (const auto& l : arch.linears()) {
      if (!plans[l.prefix].quantize) continue;
      const LinearStats* s = o.stats->linear(l.prefix);
      std::pair<float, float> r;
      if (s) {
        ST_CHECK(check_stats_channels(*s, l, o.stats_path));
        r = {s->min, s->max};
      } else {
        auto fb = expert_fallback_range(arch, *o.stats, l);
        if (!fb)
          return make_error(Errc::format, "no statistics for this linear (calibrate the same model)", o.stats_path,
                            l.prefix);
        if (!std::isfinite(fb->first) || !std::isfinite(fb->second))
          return make_error(Errc::numeric, "borrowed expert statistics are not finite", o.stats_path, l.prefix);
        r = *fb;
        ++borrowed;
      }
      ranges.add(l.group, r.first, r.second);
    }
    if (borrowed && o.warn)
      o.warn(std::to_string(borrowed) +
             " routed-expert linears have no statistics (no calibration token was routed to them): gate/up use "
             "their layer's shared-expert input range, down_proj the union of the layer's other experts'");
    ST_ASSIGN(group_act, ranges.params(model, o.stats_path));
    for (auto& [prefix, p] : plans)
      if (p.quantize) p.act = group_act[p.info->group];
  }

  // Where each linear's tensors are in storage order, and where its outputs go.
  const auto& ents = ckpt.tensors();
  std::vector<LinearPlan*> plan_of(ents.size(), nullptr);
  std::vector<bool> is_bias(ents.size(), false);
  for (size_t i = 0; i < ents.size(); ++i) {
    const LinearInfo* l = arch.linear_of_tensor(ents[i].name());
    if (!l) continue;
    LinearPlan& p = plans[l->prefix];
    plan_of[i] = &p;
    is_bias[i] = ents[i].name() == l->bias_name();
    (is_bias[i] ? p.bias_idx : p.weight_idx) = i;
  }
  for (auto& [prefix, p] : plans) {
    p.emit_at = p.weight_idx;
    if (is_static && p.bias_idx != kNone) p.emit_at = std::max(p.weight_idx, p.bias_idx);
  }

  std::vector<OutEntry> out;
  for (size_t i = 0; i < ents.size(); ++i) {
    const TensorInfo& t = *ents[i].info;
    LinearPlan* p = plan_of[i];
    if (!p || !p->quantize) {
      out.push_back({{t.name, t.dtype, t.shape}, "FLOAT"});
    } else if (is_bias[i] && !is_static) {
      out.push_back({{t.name, t.dtype, t.shape}, qtype});
    }
    if (p && p->quantize && p->emit_at == i)
      for (auto& s : linear_specs(*p->info, o.mode, model)) out.push_back({std::move(s), qtype});
  }

  // Attention quantization: per-head scales from the statistics, after every other tensor.
  std::vector<FaTensor> fa;
  if (o.fa_quant) {
    if (!o.stats) return make_error(Errc::usage, "--fa-quant needs activation statistics (--stats)");
    ST_ASSIGN(fa, fa_tensors(arch, *o.stats, o.stats_path));
    for (const auto& t : fa) out.push_back({t.spec, "FAQuant"});
  }

  // Description and side files.
  Description desc;
  desc.set_top("model_quant_type", qtype);
  if (o.fa_quant) {
    desc.set_top("fa_quant_type", arch.mla() ? "FAKQuant" : "FAQuant");
    if (arch.mla())
      for (const auto& a : arch.attention()) desc.set_top(a.prefix + ".quant_type", "INT8");
  }
  for (const auto& e : out) desc.set_type(e.spec.name, e.type);
  const std::string stem = w8a8_file_stem(o.mode);
  std::map<std::string, std::string> side = ckpt.side_files();
  side.erase(kDescriptionFile);
  if (auto it = side.find("config.json"); it != side.end()) {
    try {
      auto cfg = nlohmann::ordered_json::parse(it->second);
      cfg["quantize"] = stem.substr(std::string("quant_model_weight_").size());
      it->second = cfg.dump(2) + "\n";
    } catch (const nlohmann::json::exception& e) {
      return make_error(Errc::format, std::string("config.json is not valid JSON: ") + e.what(), ckpt.path());
    }
  }
  const std::string desc_text = desc.dump();

  // Files: split greedily in output order above max_file_size.
  std::vector<std::vector<TensorSpec>> groups(1);
  uint64_t in_file = 0;
  for (const auto& e : out) {
    const uint64_t b = spec_bytes(e.spec);
    if (!o.output->is_stdout() && o.max_file_size > 0 && !groups.back().empty() && in_file + b > o.max_file_size) {
      groups.emplace_back();
      in_file = 0;
    }
    groups.back().push_back(e.spec);
    in_file += b;
    summary.output_bytes += b;
  }
  std::vector<FilePlan> files;
  std::vector<std::string> final_names;
  if (o.output->is_stdout()) {
    FilePlan f{"-", groups[0], {}};
    f.metadata[std::string(kSideFilePrefix) + kDescriptionFile] = desc_text;
    for (const auto& [name, text] : side) f.metadata[std::string(kSideFilePrefix) + name] = text;
    files.push_back(std::move(f));
    final_names.push_back("-");
  } else {
    const std::string& dir = o.output->directory();
    const size_t n = groups.size();
    nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
    for (size_t i = 0; i < n; ++i) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu", i + 1, n);
      const std::string name = n == 1 ? stem + ".safetensors" : stem + buf + ".safetensors";
      for (const auto& s : groups[i]) weight_map[s.name] = name;
      files.push_back({dir + "/" + name, groups[i], {}});
      final_names.push_back(o.output->path() + "/" + name);
    }
    ST_CHECK(write_file(dir + "/" + kDescriptionFile, desc_text));
    for (const auto& [name, text] : side) ST_CHECK(write_file(dir + "/" + name, text, ckpt.side_file_mode(name)));
    if (n > 1) {
      nlohmann::ordered_json index;
      index["metadata"]["total_size"] = summary.output_bytes;
      index["weight_map"] = weight_map;
      ST_CHECK(write_file(dir + "/" + stem + ".safetensors.index.json", index.dump(2) + "\n"));
    }
  }

  // Smoothing rewrote weights before quantization: say so, as st-sparsify's SparseGPT does, so that
  // st-verify --against knows W_q is not round(W / scale) of the original float weights.
  for (auto& f : files) {
    if ((o.overrides && !o.overrides->empty()) || (o.weight_scales && !o.weight_scales->empty()))
      f.metadata["st.quant.weights_updated"] = "1";
    for (const auto& [key, value] : o.metadata) f.metadata[key] = value;
  }

  // Stream the tensors.
  Writer writer(std::move(files));
  const bool mapped = !ents.empty() && (ckpt.layout() != Layout::stream || ckpt.data(ents.front()).data != nullptr);
  uint64_t done_bytes = 0;
  size_t done = 0;

  auto emit_linear = [&](LinearPlan& p) -> Status {
    const LinearInfo& l = *p.info;
    const auto specs = linear_specs(l, o.mode, model);
    Job job;
    job.pieces.push_back(piece(specs[0].name, p.q));
    job.pieces.push_back(piece(specs[1].name, owned_array(p.scale.data(), p.scale.size())));
    job.pieces.push_back(piece(specs[2].name, owned_zeros(p.scale.size() * 4)));
    if (is_static) {
      const int64_t n = l.out_features;
      std::vector<float> deq(n);
      w8a8::deq_scale(p.act.scale, p.scale.data(), n, deq.data());
      Owned deq_bytes = make_owned(n * (dtype_bits(w8a8::deq_scale_dtype(model)) / 8));
      w8a8::encode_deq_scale(model, deq.data(), n, deq_bytes->data());
      std::vector<int32_t> qb(n);
      Status s = w8a8::quant_bias(p.have_bias ? p.bias.data() : nullptr, deq.data(), p.row_sum.data(), p.act.offset,
                                  n, qb.data());
      if (!s) return std::move(s).error().in_file(ckpt.path()).in_tensor(l.prefix + ".quant_bias");
      job.pieces.push_back(piece(specs[3].name, owned_scalar(model, p.act.scale)));
      job.pieces.push_back(piece(specs[4].name, owned_scalar(model, p.act.offset)));
      job.pieces.push_back(piece(specs[5].name, deq_bytes));
      job.pieces.push_back(piece(specs[6].name, owned_array(qb.data(), qb.size())));
    }
    for (const auto& pc : job.pieces) job.bytes += pc.size;
    p.q.reset();
    p.scale = {};
    p.bias = {};
    p.row_sum = {};
    return writer.push(std::move(job));
  };

  auto visit = [&](size_t i, ByteView bytes, bool from_map) -> Status {
    const TensorEntry& e = ents[i];
    const TensorInfo& t = *e.info;
    LinearPlan* p = plan_of[i];
    bool released = false;
    auto release = [&ckpt, &e, from_map, &released] {
      if (from_map && !released) ckpt.release(e);
      released = true;
    };
    const std::vector<float>* over = nullptr;
    if (o.overrides) {
      auto it = o.overrides->find(t.name);
      if (it != o.overrides->end()) {
        if (it->second.size() != t.numel())
          return make_error(Errc::format, "replacement values do not match the tensor's size", ckpt.path(), t.name);
        over = &it->second;
      }
    }
    const bool copied = !p || !p->quantize || (is_bias[i] && !is_static);
    // A linear kept float still gets the smoothing of the norm before it.
    const bool rescaled = copied && p && !is_bias[i] && o.weight_scales && o.weight_scales->has(p->info->prefix);
    if (copied && (over || rescaled)) {
      ST_ASSIGN(std::vector<float> v, f32_values(t, bytes, over, ckpt.path()));
      if (rescaled) apply_weight_scales(*o.weight_scales, p->info->prefix, p->info->out_features, p->info->in_features, v.data());
      Job job;
      Owned b = make_owned(bytes.size);
      if (!from_f32(t.dtype, v.data(), b->data(), v.size()))
        return make_error(Errc::unsupported, std::string("cannot store a rewritten tensor of dtype ") + dtype_name(t.dtype),
                          ckpt.path(), t.name);
      release();
      job.bytes = b->size;
      job.pieces.push_back(piece(t.name, std::move(b)));
      ST_CHECK(writer.push(std::move(job)));
    } else if (copied) {
      Job job;
      Piece pc;
      pc.name = t.name;
      pc.size = bytes.size;
      if (from_map) {
        pc.data = bytes.data;
        job.after = [&ckpt, &e] { ckpt.release(e); };
      } else {
        pc.owned = owned_bytes(bytes.data, bytes.size);
        pc.data = pc.owned->data();
      }
      job.bytes = pc.size;
      job.pieces.push_back(std::move(pc));
      ST_CHECK(writer.push(std::move(job)));
    } else if (is_bias[i]) {
      p->bias.resize(t.numel());
      if (over) p->bias = *over;
      else if (!to_f32(t.dtype, bytes.data, p->bias.data(), p->bias.size()))
        return make_error(Errc::unsupported, std::string("cannot read a bias of dtype ") + dtype_name(t.dtype),
                          ckpt.path(), t.name);
      for (float b : p->bias)
        if (!std::isfinite(b)) return make_error(Errc::numeric, "bias has NaN or Inf", ckpt.path(), t.name);
      p->have_bias = true;
      release();
    } else {
      const int64_t n = p->info->out_features, k = p->info->in_features;
      p->q = make_owned(static_cast<size_t>(n * k));
      p->scale.resize(n);
      p->row_sum.resize(n);
      DType src_dtype = over ? DType::F32 : t.dtype;
      const void* src = over ? static_cast<const void*>(over->data()) : bytes.data;
      std::vector<float> changed;
      const bool scaled = o.weight_scales && o.weight_scales->has(p->info->prefix);
      if (o.transform_weight || scaled) {
        ST_ASSIGN(changed, f32_values(t, bytes, over, ckpt.path()));
        release();
        if (scaled) apply_weight_scales(*o.weight_scales, p->info->prefix, n, k, changed.data());
        if (o.transform_weight) ST_CHECK(o.transform_weight(*p->info, changed));
        src_dtype = DType::F32;
        src = changed.data();
      }
      Status s = w8a8::quantize_rows(src_dtype, src, n, k, reinterpret_cast<int8_t*>(p->q->data()), p->scale.data(),
                                     p->row_sum.data());
      release();
      if (!s) return std::move(s).error().in_file(ckpt.path()).in_tensor(t.name);
      const int8_t* q = reinterpret_cast<const int8_t*>(p->q->data());
      summary.weight_zeros[p->info->prefix] = static_cast<uint64_t>(std::count(q, q + n * k, int8_t{0}));
      p->have_weight = true;
    }
    if (p && p->quantize && i == p->emit_at) ST_CHECK(emit_linear(*p));
    done_bytes += bytes.size;
    if (o.progress) o.progress({"tensors", ++done, ents.size(), done_bytes});
    return Status{};
  };

  Status status;
  if (ents.empty()) {
    status = Status{};
  } else if (mapped) {
    for (size_t i = 0; i < ents.size() && status; ++i) status = visit(i, ckpt.data(ents[i]), true);
  } else {
    size_t i = 0;
    status = ckpt.for_each([&](const TensorEntry&, ByteView b) { return visit(i++, b, false); });
  }
  if (status && !fa.empty()) {
    Job job;
    for (auto& t : fa) {
      job.bytes += t.bytes->size;
      job.pieces.push_back(piece(t.spec.name, t.bytes));
    }
    status = writer.push(std::move(job));
  }
  Status wstatus = writer.finish(status.ok());
  if (!status) return std::move(status).error();
  if (!wstatus) return std::move(wstatus).error();
  summary.input_bytes = done_bytes;
  ST_CHECK(o.output->commit());
  summary.files = final_names;
  return summary;
}

}  // namespace st
