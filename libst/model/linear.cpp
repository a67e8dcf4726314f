// Linear layers: float GEMM, and the integer arithmetic of W8A8 static and W8A8_DYNAMIC consumers.
#include "libst/model/linear.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "libst/core/blas.hpp"
#include "libst/core/parallel.hpp"

namespace st::model {

namespace {

// Integer products summed by sgemm are exact while every partial sum stays below 2^24:
// 1024 products of at most 128 * 128.
constexpr int64_t kExactK = (int64_t(1) << 24) / (128 * 128);

Result<const TensorEntry*> need(const Checkpoint& ck, const std::string& name) {
  const TensorEntry* e = ck.find(name);
  if (!e) return make_error(Errc::format, "tensor missing", ck.path(), name);
  return e;
}

Status check_numel(const Checkpoint& ck, const TensorEntry& e, uint64_t n) {
  if (e.info->numel() != n)
    return make_error(Errc::format, "expected " + std::to_string(n) + " elements, found " + std::to_string(e.info->numel()),
                      ck.path(), e.name());
  return {};
}

// deq_scale: int64 holding the fp32 bit pattern in its low 32 bits (fp16 models) or float.
Result<std::vector<float>> read_deq_scale(const Checkpoint& ck, const TensorEntry& e) {
  if (e.info->dtype != DType::I64) return ck.read_f32(e);
  const ByteView v = ck.data(e);
  std::vector<float> out(e.info->numel());
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t q;
    std::memcpy(&q, v.data + 8 * i, 8);
    const uint32_t bits = uint32_t(uint64_t(q) & 0xffffffffu);
    std::memcpy(&out[i], &bits, 4);
  }
  return out;
}

Result<std::vector<int32_t>> read_i32(const Checkpoint& ck, const TensorEntry& e) {
  if (e.info->dtype != DType::I32)
    return make_error(Errc::format, std::string("expected I32, found ") + dtype_name(e.info->dtype), ck.path(), e.name());
  const ByteView v = ck.data(e);
  std::vector<int32_t> out(e.info->numel());
  std::memcpy(out.data(), v.data, out.size() * 4);
  return out;
}

Status check_finite(const Checkpoint& ck, const std::string& name, const std::vector<float>& v) {
  for (float f : v)
    if (!std::isfinite(f)) return make_error(Errc::numeric, "NaN or Inf value", ck.path(), name);
  return {};
}

// acc[rows, out] = xq · wq^T exactly (integers held in floats): sgemm over slices of at most
// kExactK columns, whose sums of int8 x int8 products stay below 2^24 and so are exact in fp32,
// added up in double.
void int_gemm(const float* xq, int64_t rows, int64_t in, const float* wq, int64_t out, std::vector<double>& acc) {
  acc.assign(size_t(rows * out), 0.0);
  std::vector<float> y(size_t(rows * out));
  for (int64_t k0 = 0; k0 < in; k0 += kExactK) {
    gemm_nt(rows, out, std::min(kExactK, in - k0), 1.0f, xq + k0, in, wq + k0, in, 0.0f, y.data(), out);
    for (size_t i = 0; i < y.size(); ++i) acc[i] += y[i];
  }
}

}  // namespace

const char* linear_kind_name(LinearKind k) {
  switch (k) {
    case LinearKind::floating: return "FLOAT";
    case LinearKind::w8a8: return "W8A8";
    case LinearKind::w8a8_dynamic: return "W8A8_DYNAMIC";
  }
  return "?";
}

Linear Linear::from_float(std::string name, int64_t out, int64_t in, std::vector<float> w, std::vector<float> bias) {
  Linear l;
  l.name_ = std::move(name);
  l.out_ = out, l.in_ = in;
  l.w_dec_ = *FloatDecoder::plain(DType::F32, {out, in});
  l.w_.resize(w.size() * 4);
  std::memcpy(l.w_.data(), w.data(), l.w_.size());
  l.bias_ = std::move(bias);
  return l;
}

void Linear::weight_rows(int64_t n0, int64_t n1, float* dst) const { w_dec_.rows(w_.data(), n0, n1, dst); }

Status Linear::keep_weight(const Checkpoint& ck, const TensorEntry& e) {
  ST_ASSIGN(w_dec_, ck.decoder(e));
  const ByteView v = ck.data(e);
  const DType t = e.info->dtype;
  if (t == DType::F16 || t == DType::BF16 || t == DType::F32 || t == DType::I8 || w_dec_.block_scaled()) {
    w_.assign(v.data, v.data + v.size);
  } else {  // F64 and wider integers: as F32 values
    const std::vector<float> f = w_dec_.all(v.data);
    w_.resize(f.size() * 4);
    std::memcpy(w_.data(), f.data(), w_.size());
    w_dec_ = *FloatDecoder::plain(DType::F32, e.info->shape);
  }
  if (kind_ != LinearKind::floating) return {};
  std::vector<float> tile;
  for (int64_t n0 = 0; n0 < out_; n0 += tile_rows()) {
    const int64_t n1 = std::min(out_, n0 + tile_rows());
    tile.resize(size_t((n1 - n0) * in_));
    weight_rows(n0, n1, tile.data());
    for (float f : tile)
      if (!std::isfinite(f)) return make_error(Errc::numeric, "NaN or Inf value", ck.path(), e.name());
  }
  return {};
}

int64_t Linear::tile_rows() const { return std::clamp<int64_t>((int64_t(1) << 20) / std::max<int64_t>(in_, 1), 64, std::max<int64_t>(out_, 1)); }

Result<Linear> Linear::load(const Checkpoint& ck, const std::string& prefix) {
  Linear l;
  l.name_ = prefix;
  const std::string wname = prefix + ".weight";
  ST_ASSIGN(const TensorEntry* we, need(ck, wname));
  if (we->info->shape.size() != 2)
    return make_error(Errc::format, "a linear weight must be 2-D", ck.path(), wname);
  l.out_ = we->info->shape[0], l.in_ = we->info->shape[1];
  std::string type = "FLOAT";
  if (ck.description()) type = ck.description()->type_of(wname).value_or("FLOAT");
  if (type == "W8A8" || type == "W8A8S") l.kind_ = LinearKind::w8a8;
  else if (type == "W8A8_DYNAMIC") l.kind_ = LinearKind::w8a8_dynamic;
  else if (type == "W8A8SC")
    return make_error(Errc::unsupported, "compressed W8A8SC weights cannot be run; decompress them with st-compress -d",
                      ck.path(), wname);
  else if (type != "FLOAT")
    return make_error(Errc::unsupported, "linear weight of type '" + type + "' cannot be run", ck.path(), wname);
  if (l.kind_ == LinearKind::floating && !dtype_is_float(we->info->dtype) && !is_block_fp8(we->info->dtype))
    return make_error(Errc::format, std::string("a FLOAT weight must be a float dtype, found ") + dtype_name(we->info->dtype),
                      ck.path(), wname);
  if (l.kind_ != LinearKind::floating && we->info->dtype != DType::I8)
    return make_error(Errc::format, "a " + type + " weight must be I8, found " + dtype_name(we->info->dtype), ck.path(),
                      wname);
  ST_CHECK(l.keep_weight(ck, *we));
  ck.release(*we);  // its bytes are copied: do not keep the pages mapped as well

  const bool static_q = l.kind_ == LinearKind::w8a8;
  if (const TensorEntry* be = ck.find(prefix + ".bias"); be && !static_q) {
    ST_CHECK(check_numel(ck, *be, uint64_t(l.out_)));
    ST_ASSIGN(l.bias_, ck.read_f32(*be));
  }
  if (l.kind_ == LinearKind::floating) return l;

  // W8A8S has no weight_scale (msModelSlim's layout): it is derived below from deq_scale.
  if (const TensorEntry* wse = ck.find(prefix + ".weight_scale"); wse || !static_q) {
    ST_ASSIGN(wse, need(ck, prefix + ".weight_scale"));
    ST_CHECK(check_numel(ck, *wse, uint64_t(l.out_)));
    ST_ASSIGN(l.weight_scale_, ck.read_f32(*wse));
    ST_CHECK(check_finite(ck, wse->name(), l.weight_scale_));
  }
  if (!static_q) return l;

  ST_ASSIGN(const TensorEntry* ise, need(ck, prefix + ".input_scale"));
  ST_ASSIGN(const TensorEntry* ioe, need(ck, prefix + ".input_offset"));
  ST_ASSIGN(const TensorEntry* dse, need(ck, prefix + ".deq_scale"));
  ST_ASSIGN(const TensorEntry* qbe, need(ck, prefix + ".quant_bias"));
  ST_CHECK(check_numel(ck, *ise, 1));
  ST_CHECK(check_numel(ck, *ioe, 1));
  ST_CHECK(check_numel(ck, *dse, uint64_t(l.out_)));
  ST_CHECK(check_numel(ck, *qbe, uint64_t(l.out_)));
  ST_ASSIGN(auto is, ck.read_f32(*ise));
  ST_ASSIGN(auto io, ck.read_f32(*ioe));
  if (!(std::isfinite(is[0]) && is[0] > 0)) return make_error(Errc::numeric, "input_scale must be positive", ck.path(), ise->name());
  if (!std::isfinite(io[0])) return make_error(Errc::numeric, "input_offset is not finite", ck.path(), ioe->name());
  l.input_scale_ = is[0], l.input_offset_ = io[0];
  ST_ASSIGN(l.deq_scale_, read_deq_scale(ck, *dse));
  ST_CHECK(check_finite(ck, dse->name(), l.deq_scale_));
  ST_ASSIGN(l.quant_bias_, read_i32(ck, *qbe));
  if (l.weight_scale_.empty())  // libst/quant/w8a8.hpp: weight_scale = f32(deq_scale / input_scale)
    for (float d : l.deq_scale_) l.weight_scale_.push_back(d / l.input_scale_);
  return l;
}

void Linear::forward(const float* x, int64_t rows, float* y) const {
  if (rows == 0) return;
  // Per-thread fp32 scratch for one tile of weight rows (forward runs on several workers at once).
  thread_local std::vector<float> wt;
  const int64_t tile = tile_rows();
  wt.resize(size_t(tile * in_));
  if (kind_ == LinearKind::floating) {
    for (int64_t n0 = 0; n0 < out_; n0 += tile) {
      const int64_t n1 = std::min(out_, n0 + tile);
      weight_rows(n0, n1, wt.data());
      gemm_nt(rows, n1 - n0, in_, 1.0f, x, in_, wt.data(), in_, 0.0f, y + n0, out_);
    }
    if (!bias_.empty())
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t n = 0; n < out_; ++n) y[r * out_ + n] += bias_[size_t(n)];
    return;
  }
  // Quantize the activations.
  std::vector<float> xq(size_t(rows * in_));
  std::vector<float> token_scale(size_t(rows), 0.0f);
  parallel_for(rows, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * in_;
      float* q = &xq[size_t(r * in_)];
      if (kind_ == LinearKind::w8a8) {
        for (int64_t k = 0; k < in_; ++k)
          q[k] = std::clamp(std::nearbyint(xr[k] / input_scale_ + input_offset_), -128.0f, 127.0f);
      } else {
        float amax = 0;
        for (int64_t k = 0; k < in_; ++k) amax = std::max(amax, std::fabs(xr[k]));
        const float s = amax / 127.0f;
        token_scale[size_t(r)] = s;
        for (int64_t k = 0; k < in_; ++k)
          q[k] = s > 0 ? std::clamp(std::nearbyint(xr[k] / s), -128.0f, 127.0f) : 0.0f;
      }
    }
  }, 16);
  std::vector<double> acc;
  for (int64_t n0 = 0; n0 < out_; n0 += tile) {
    const int64_t n1 = std::min(out_, n0 + tile), width = n1 - n0;
    weight_rows(n0, n1, wt.data());
    int_gemm(xq.data(), rows, in_, wt.data(), width, acc);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = n0; n < n1; ++n) {
        const double a = acc[size_t(r * width + n - n0)];
        float& o = y[r * out_ + n];
      if (kind_ == LinearKind::w8a8) {
        const int32_t sum = int32_t(int64_t(a) + quant_bias_[size_t(n)]);
        o = float(sum) * deq_scale_[size_t(n)];
      } else {
        o = float(int32_t(a)) * token_scale[size_t(r)] * weight_scale_[size_t(n)];
        if (!bias_.empty()) o += bias_[size_t(n)];
      }
      }
  }
}

void Linear::set_weight(const std::vector<float>& w) {
  w_dec_ = *FloatDecoder::plain(DType::F32, {out_, in_});
  w_.resize(w.size() * 4);
  std::memcpy(w_.data(), w.data(), w_.size());
}

std::vector<float> Linear::float_weight() const {
  std::vector<float> w(size_t(out_ * in_));
  weight_rows(0, out_, w.data());
  if (kind_ != LinearKind::floating)
    for (int64_t n = 0; n < out_; ++n)
      for (int64_t k = 0; k < in_; ++k) w[size_t(n * in_ + k)] *= weight_scale_[size_t(n)];
  return w;
}

}  // namespace st::model
