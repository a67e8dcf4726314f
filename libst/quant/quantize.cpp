// Whole-checkpoint W8A8 quantization: plan the output (quant_plan.hpp), then stream the input
// tensor by tensor, computing on the calling thread while quant_writer.hpp's thread writes.
#include "libst/quant/quantize.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstring>

#include "libst/core/parallel.hpp"
#include "libst/format/output.hpp"
#include "libst/quant/quant_plan.hpp"
#include "libst/quant/quant_writer.hpp"
#include "libst/quant/smooth.hpp"
#include "libst/quant/w8a8.hpp"

namespace st {
namespace {

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

// A tensor as fp32 values in `out`: a copy of its replacement values, or its bytes decoded
// (block-scaled FP8 dequantized). `out` keeps its memory from tensor to tensor: a fresh
// weight-sized buffer would cost a page fault and a zeroing per 4 KiB.
Status f32_values(const Checkpoint& ckpt, const TensorEntry& e, ByteView bytes, const std::vector<float>* over,
                  std::vector<float>& out) {
  if (over) {
    out.assign(over->begin(), over->end());
    return Status{};
  }
  ST_ASSIGN(const FloatDecoder dec, ckpt.decoder(e));
  out.resize(static_cast<size_t>(dec.rows() * dec.cols()));
  dec.all(bytes.data, out.data());
  return Status{};
}

// Streams the input in storage order through the plan: tensors copied (or rewritten by
// smoothing), biases held until their linear is written, weights quantized.
class StreamQuantizer {
 public:
  StreamQuantizer(Checkpoint& ckpt, const QuantPlan& plan, const QuantizeOptions& o, WeightWriter& writer,
                  QuantizeSummary& summary)
      : ckpt_(ckpt), plan_(plan), o_(o), writer_(writer), summary_(summary), pending_(plan.linears.size()) {}

  // Input tensor i, from the mapping (released once used) or a stream's buffer.
  Status visit(size_t i, ByteView bytes, bool from_map);
  // The attention tensors, after every other.
  Status write_attention();
  uint64_t bytes_read() const { return done_bytes_; }

 private:
  // A quantized linear's state between its weight and its bias.
  struct Pending {
    Owned q;
    std::vector<float> scale, bias;
    std::vector<int64_t> row_sum;
    bool have_bias = false;
  };
  Result<const std::vector<float>*> replacement(const TensorInfo& t) const;
  Status copy(size_t i, ByteView bytes, bool from_map);
  Status rewrite(size_t i, ByteView bytes, const std::vector<float>* over, bool rescale);
  Status hold_bias(size_t i, ByteView bytes, const std::vector<float>* over);
  Status quantize_weight(size_t i, ByteView bytes, const std::vector<float>* over);
  Status emit_linear(size_t li);
  void release(size_t i, bool from_map) {
    if (from_map) ckpt_.release(ckpt_.tensors()[i]);
  }

  Checkpoint& ckpt_;
  const QuantPlan& plan_;
  const QuantizeOptions& o_;
  WeightWriter& writer_;
  QuantizeSummary& summary_;
  std::vector<Pending> pending_;
  std::vector<float> scratch_;  // a weight's fp32 values, reused from weight to weight
  uint64_t done_bytes_ = 0;
  size_t done_ = 0;
};

Result<const std::vector<float>*> StreamQuantizer::replacement(const TensorInfo& t) const {
  if (!o_.overrides) return nullptr;
  auto it = o_.overrides->find(t.name);
  if (it == o_.overrides->end()) return nullptr;
  if (it->second.size() != t.numel())
    return make_error(Errc::format, "replacement values do not match the tensor's size", ckpt_.path(), t.name);
  return &it->second;
}

Status StreamQuantizer::visit(size_t i, ByteView bytes, bool from_map) {
  const TensorInfo& t = *ckpt_.tensors()[i].info;
  const PlannedLinear* p = plan_.linear_of(i);
  ST_ASSIGN(const std::vector<float>* over, replacement(t));
  const bool bias = p && i == p->bias;
  // A bias is kept as the float tensor msModelSlim writes (typed FLOAT); a static linear also
  // folds it into its quant_bias.
  const bool copied = !p || !p->quantized() || bias;
  if (bias && p->quantized() && scheme_is_static(p->scheme)) ST_CHECK(hold_bias(i, bytes, over));
  // A linear kept float still gets the smoothing of the norm before it.
  const bool rescaled = copied && p && !bias && o_.weight_scales && o_.weight_scales->has(p->linear.prefix);
  if (ckpt_.tensors()[i].is_block_scale()) {
    release(i, from_map);  // consumed by its FP8 weight
  } else if (copied && (over || rescaled || ckpt_.tensors()[i].scale_inv)) {  // FP8 is stored as the dtype it reads as
    ST_CHECK(rewrite(i, bytes, over, rescaled));
    release(i, from_map);
  } else if (copied) {
    ST_CHECK(copy(i, bytes, from_map));
  } else {
    Status s = quantize_weight(i, bytes, over);
    release(i, from_map);
    ST_CHECK(s);
  }
  if (p && p->quantized() && i == p->emit_at) ST_CHECK(emit_linear(plan_.linear_of_input[i]));
  done_bytes_ += bytes.size;
  if (o_.progress) o_.progress({"tensors", ++done_, ckpt_.tensors().size(), done_bytes_});
  return Status{};
}

// Copied as stored: a view of the mapped pages until written, or a copy of a stream's buffer.
Status StreamQuantizer::copy(size_t i, ByteView bytes, bool from_map) {
  const TensorEntry& e = ckpt_.tensors()[i];
  Job job;
  Piece pc;
  pc.name = e.name();
  pc.size = bytes.size;
  if (from_map) {
    pc.data = bytes.data;
    job.after = [this, &e] { ckpt_.release(e); };
  } else {
    pc.owned = owned_copy(bytes.data, bytes.size);
    pc.data = pc.owned->data();
  }
  job.bytes = pc.size;
  job.pieces.push_back(std::move(pc));
  return writer_.push(std::move(job));
}

// A float tensor with new values (smoothing's norms and biases, a float-kept linear's rescaled
// weight), stored in its own dtype.
Status StreamQuantizer::rewrite(size_t i, ByteView bytes, const std::vector<float>* over, bool rescale) {
  const TensorEntry& e = ckpt_.tensors()[i];
  const TensorInfo& t = *e.info;
  std::vector<float> v;
  ST_CHECK(f32_values(ckpt_, e, bytes, over, v));
  if (rescale) {
    const LinearInfo& l = plan_.linear_of(i)->linear;
    apply_weight_scales(*o_.weight_scales, l.prefix, l.out_features, l.in_features, v.data());
  }
  const DType dtype = ckpt_.value_dtype(e);
  Owned b = make_owned(v.size() * dtype_bits(dtype) / 8);
  if (!from_f32(dtype, v.data(), b->data(), v.size()))
    return make_error(Errc::unsupported, std::string("cannot store a rewritten tensor of dtype ") + dtype_name(dtype),
                      ckpt_.path(), t.name);
  Job job;
  job.bytes = b->size;
  job.pieces.push_back(piece(t.name, std::move(b)));
  return writer_.push(std::move(job));
}

// A static linear's float bias, kept until its quant_bias is computed.
Status StreamQuantizer::hold_bias(size_t i, ByteView bytes, const std::vector<float>* over) {
  const TensorInfo& t = *ckpt_.tensors()[i].info;
  Pending& p = pending_[plan_.linear_of_input[i]];
  p.bias.resize(t.numel());
  if (over) p.bias = *over;
  else if (!to_f32(t.dtype, bytes.data, p.bias.data(), p.bias.size()))
    return make_error(Errc::unsupported, std::string("cannot read a bias of dtype ") + dtype_name(t.dtype),
                      ckpt_.path(), t.name);
  for (float b : p.bias)
    if (!std::isfinite(b)) return make_error(Errc::numeric, "bias has NaN or Inf", ckpt_.path(), t.name);
  p.have_bias = true;
  return Status{};
}

// A weight's int8 rows, per-row scales and row sums; smoothing's scales and the caller's
// transform (st-sparsify's pruning) applied first.
Status StreamQuantizer::quantize_weight(size_t i, ByteView bytes, const std::vector<float>* over) {
  const TensorInfo& t = *ckpt_.tensors()[i].info;
  const LinearInfo& l = plan_.linear_of(i)->linear;
  Pending& p = pending_[plan_.linear_of_input[i]];
  const int64_t n = l.out_features, k = l.in_features;
  p.q = make_owned(static_cast<size_t>(n * k));
  p.scale.resize(n);
  p.row_sum.resize(n);
  DType src_dtype = over ? DType::F32 : t.dtype;
  const void* src = over ? static_cast<const void*>(over->data()) : bytes.data;
  std::vector<float>& changed = scratch_;
  const LinearScales scales = o_.weight_scales ? o_.weight_scales->of(l.prefix) : LinearScales{};
  const bool decoded = scales || ckpt_.tensors()[i].scale_inv;
  auto* q = reinterpret_cast<int8_t*>(p.q->data());
  Status s;
  if (decoded && !over && !o_.transform_weight) {  // a few rows at a time, never the whole weight in fp32
    ST_ASSIGN(const FloatDecoder dec, ckpt_.decoder(ckpt_.tensors()[i]));
    const auto rows = [&](int64_t r0, int64_t r1, float* dst) {
      dec.rows(bytes.data, r0, r1, dst);
      scales.apply(r0, r1, 0, k, dst);
    };
    s = w8a8::quantize_rows(rows, n, k, q, p.scale.data(), p.row_sum.data());
  } else {
    if (decoded || o_.transform_weight) {
      ST_CHECK(f32_values(ckpt_, ckpt_.tensors()[i], bytes, over, changed));
      if (scales) apply_weight_scales(*o_.weight_scales, l.prefix, n, k, changed.data());
      if (o_.transform_weight) ST_CHECK(o_.transform_weight(l, changed));
      src_dtype = DType::F32;
      src = changed.data();
    }
    s = w8a8::quantize_rows(src_dtype, src, n, k, q, p.scale.data(), p.row_sum.data());
  }
  if (!s) return std::move(s).error().in_file(ckpt_.path()).in_tensor(t.name);
  summary_.weight_zeros[l.prefix] = static_cast<uint64_t>(std::count(q, q + n * k, int8_t{0}));
  return Status{};
}

// A quantized linear's output tensors, in the plan's order (linear_specs).
Status StreamQuantizer::emit_linear(size_t li) {
  const PlannedLinear& pl = plan_.linears[li];
  const std::string& P = pl.linear.prefix;
  Pending& p = pending_[li];
  Job job;
  job.pieces.push_back(piece(P + ".weight", p.q));
  if (pl.scheme != LinearScheme::w8a8s) {
    job.pieces.push_back(piece(P + ".weight_scale", owned_copy(p.scale.data(), p.scale.size() * sizeof(float))));
    job.pieces.push_back(piece(P + ".weight_offset", owned_zeros(p.scale.size() * 4)));
  }
  if (scheme_is_static(pl.scheme)) {
    const DType model = plan_.model;
    const int64_t n = pl.linear.out_features;
    std::vector<float> deq(n);
    w8a8::deq_scale(pl.act.scale, p.scale.data(), n, deq.data());
    Owned deq_bytes = make_owned(n * (dtype_bits(w8a8::deq_scale_dtype(model)) / 8));
    w8a8::encode_deq_scale(model, deq.data(), n, deq_bytes->data());
    std::vector<int32_t> qb(n);
    Status s = w8a8::quant_bias(p.have_bias ? p.bias.data() : nullptr, deq.data(), p.row_sum.data(), pl.act.offset, n,
                                qb.data());
    if (!s) return std::move(s).error().in_file(ckpt_.path()).in_tensor(P + ".quant_bias");
    job.pieces.push_back(piece(P + ".input_scale", owned_scalar(model, pl.act.scale)));
    job.pieces.push_back(piece(P + ".input_offset", owned_scalar(model, pl.act.offset)));
    job.pieces.push_back(piece(P + ".deq_scale", deq_bytes));
    job.pieces.push_back(piece(P + ".quant_bias", owned_copy(qb.data(), qb.size() * sizeof(int32_t))));
  }
  for (const auto& pc : job.pieces) job.bytes += pc.size;
  p = Pending{};
  return writer_.push(std::move(job));
}

Status StreamQuantizer::write_attention() {
  if (plan_.attention.tensors.empty()) return Status{};
  Job job;
  for (const auto& t : plan_.attention.tensors) {
    job.bytes += t.bytes.size();
    job.pieces.push_back(piece(t.spec.name, owned_copy(t.bytes.data(), t.bytes.size())));
  }
  return writer_.push(std::move(job));
}

}  // namespace

const char* w8a8_type_name(W8A8Mode mode) { return scheme_type(scheme_of_mode(mode)); }

Result<QuantizeSummary> quantize_w8a8(Checkpoint& ckpt, const QuantizeOptions& o) {
  ST_ASSIGN(const QuantPlan plan, plan_quantization(ckpt, o));
  return write_quantized(ckpt, plan, o);
}

Result<QuantizeSummary> write_quantized(Checkpoint& ckpt, const QuantPlan& plan, const QuantizeOptions& o) {
  if (!o.output) return make_error(Errc::usage, "no output given");
  if (plan.linear_of_input.size() != ckpt.tensors().size())
    return make_error(Errc::usage, "the quantization plan was made for another checkpoint", ckpt.path());
  QuantizeSummary summary;
  summary.linears_quantized = plan.linears_quantized;
  summary.linears_float = plan.linears_float;
  summary.model_quant_type = plan.types.model_quant_type;
  for (const auto& p : plan.linears)
    if (p.quantized()) summary.linears_by_type[scheme_type(p.scheme)]++;
  summary.output_bytes = plan.output_bytes;
  std::string dir;
  if (!o.output->is_stdout()) {
    dir = o.output->directory();
    ST_CHECK(write_plan_texts(plan, ckpt, dir));
  }
  WeightWriter writer(plan.files, dir);
  StreamQuantizer stream(ckpt, plan, o, writer, summary);
  const auto& ents = ckpt.tensors();
  const bool mapped = !ents.empty() && (ckpt.layout() != Layout::stream || ckpt.data(ents.front()).data != nullptr);
  Status status;
  if (mapped) {
    for (size_t i = 0; i < ents.size() && status; ++i) status = stream.visit(i, ckpt.data(ents[i]), true);
  } else if (!ents.empty()) {
    size_t i = 0;
    status = ckpt.for_each([&](const TensorEntry&, ByteView b) { return stream.visit(i++, b, false); });
  }
  if (status) status = stream.write_attention();
  Status wstatus = writer.finish(status.ok());
  if (!status) return std::move(status).error();
  if (!wstatus) return std::move(wstatus).error();
  summary.input_bytes = stream.bytes_read();
  ST_CHECK(o.output->commit());
  for (const auto& f : plan.files) summary.files.push_back(f.name == "-" ? "-" : o.output->path() + "/" + f.name);
  return summary;
}

}  // namespace st
