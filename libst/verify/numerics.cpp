// Numeric checks against the float model: every int8 weight within half a step of W / scale,
// SQNR and cosine per linear, FLOAT tensors equal to the float model's (per part: the rows the
// recipe says they came from).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "libst/core/parallel.hpp"
#include "libst/verify/checker.hpp"

namespace st::verify_detail {

// Where each part tensor's rows come from (st-shard's "st.shard.recipe", see libst/shard.hpp):
// for a single checkpoint every tensor is its own source, whole.
std::vector<Piece> UnitChecker::pieces_of(const std::string& name) const {
  if (u_.parts == 1) {
    const Loc* l = u_.find(name);
    return {Piece{name, "replicate", 0, 1, l ? l->info->shape : std::vector<int64_t>{}, 0}};
  }
  const auto it = recipe_.into.find(name);
  return it == recipe_.into.end() ? std::vector<Piece>{} : it->second;
}

// Each int8 weight within half a step of W / weight_scale; SQNR and cosine of W_q * s vs W,
// for every source linear whose rows this (part) linear holds.
void UnitChecker::check_numerics(const Linear& l, const int8_t* wq, const std::vector<float>& ws, DType ws_dt) {
  const std::string wname = l.prefix + ".weight";
  if (skip_numerics_) return;
  if (u_.parts > 1 && !recipe_.present) {
    sink_.note("numerics against the float model need st-shard's st.shard.recipe metadata in part folders: "
               "merge the parts first (st-shard --merge) and verify the merged checkpoint");
    return;
  }
  const auto pieces = pieces_of(wname);
  if (pieces.empty()) return problem("numerics", wname, "not in the part's st.shard.recipe: its float source is unknown");
  for (const Piece& p : pieces) {
    const TensorEntry* e = ctx_.against->find(p.source);
    if (!e) {
      problem("numerics", wname, "the float model has no tensor '" + p.source + "'");
      continue;
    }
    if (e->info->shape != p.shape || p.shape.size() != 2) {
      problem("numerics", wname, "the float model's '" + p.source + "' is " + shape_str(e->info->shape) +
                                     ", the quantized one was " + shape_str(p.shape));
      continue;
    }
    const Slice s = slice_of(p, recipe_.rank, recipe_.tp);
    if (s.nc != l.k || p.at < 0 || p.at + s.nr > l.n) {
      problem("structure", wname, "holds '" + p.source + "' rows " + std::to_string(p.at) + ".." +
                                      std::to_string(p.at + s.nr) + " x " + std::to_string(s.nc) +
                                      " columns, which do not fit its shape " + shape_str({l.n, l.k}));
      continue;
    }
    auto W = ctx_.against->read_f32(*e);
    ctx_.against->release(*e);
    if (!W) {
      problem("numerics", wname, "cannot read the float weight: " + W.error().message);
      continue;
    }
    const int64_t cols = p.shape[1];
    const std::string src = split_last(p.source).first;
    Reference ref{W->data() + s.r0 * cols + s.c0, cols};
    if (const SmoothScales* sc = smooth_ ? smooth_->of(l.prefix) : nullptr) {  // single checkpoint: whole
      sc->apply(W->data(), 0, l.n, l.k);
      if (!sc->col_err.empty()) ref.col_err = sc->col_err.data();
      if (!sc->row_err.empty()) ref.row_err = sc->row_err.data();
    }
    compare_weights(u_.parts > 1 ? u_.label + "/" + src : src, l.type, wname, ref, wq + p.at * l.k, ws.data() + p.at,
                    s.nr, s.nc, ws_dt);
  }
}

void UnitChecker::compare_weights(const std::string& name, const std::string& type, const std::string& tensor,
                                  Reference ref, const int8_t* wq, const float* ws, int64_t rows, int64_t cols,
                                  DType ws_dt) {
  const float* W = ref.w;
  const int64_t w_stride = ref.stride;
  const bool sparse = type == "W8A8S" || type == "W8A8SC";
  const double u = roundoff(ws_dt) * 1.01;
  LinearNumerics r;
  r.name = name;
  r.type = type;
  r.elements = static_cast<uint64_t>(rows * cols);
  struct Partial {
    double sw2 = 0, se2 = 0, sq2 = 0, swq = 0, worst = 0;
    int64_t worst_r = 0, worst_c = 0;
    uint64_t pruned = 0, off_step = 0;
  };
  auto scan = [&](int64_t r0, int64_t r1, Partial& p) {
    for (int64_t i = r0; i < r1; ++i) {
      const double s = ws[i], re = ref.row_err ? ref.row_err[i] : 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double e = re + (ref.col_err ? ref.col_err[c] : 0);  // the reference's own uncertainty
        if (std::isinf(e)) continue;  // a smoothed channel whose scale cannot be told
        const double w = W[i * w_stride + c], q = wq[i * cols + c], t = w / s, deq = q * s;
        p.sw2 += w * w, p.sq2 += deq * deq, p.swq += w * deq, p.se2 += (w - deq) * (w - deq);
        const double tol = 0.5 + std::fabs(t) * (u + e) + 1e-3;
        double err;
        if (t > 127.0 + tol - 0.5) err = std::fabs(q - 127);         // clamped high
        else if (t < -128.0 - tol + 0.5) err = std::fabs(q + 128);   // clamped low
        else err = std::fabs(q - t);
        if (sparse && q == 0 && err > tol) {
          ++p.pruned;
          continue;
        }
        if (err > tol || !std::isfinite(err)) ++p.off_step;
        if (err > p.worst || !std::isfinite(err)) p.worst = err, p.worst_r = i, p.worst_c = c;
      }
    }
  };
  // Rows in fixed blocks of about 2^20 elements, in parallel; the blocks' partial sums are
  // combined in block order, so the numbers do not depend on the thread count.
  const int64_t block = std::max<int64_t>(1, ((int64_t{1} << 20) + cols - 1) / std::max<int64_t>(cols, 1));
  std::vector<Partial> parts(static_cast<size_t>((rows + block - 1) / block));
  parallel_for(static_cast<int64_t>(parts.size()), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) scan(i * block, std::min(rows, (i + 1) * block), parts[static_cast<size_t>(i)]);
  });
  double sw2 = 0, se2 = 0, sq2 = 0, swq = 0, worst = 0;
  int64_t worst_r = 0, worst_c = 0;
  for (const auto& p : parts) {
    sw2 += p.sw2, se2 += p.se2, sq2 += p.sq2, swq += p.swq;
    r.pruned += p.pruned, r.off_step += p.off_step;
    if (p.worst > worst || !std::isfinite(p.worst)) worst = p.worst, worst_r = p.worst_r, worst_c = p.worst_c;
  }
  r.max_step_error = worst;
  r.sqnr_db = se2 == 0 ? INFINITY : 10 * std::log10(sw2 / se2);
  r.cosine = (sw2 == 0 || sq2 == 0) ? (sw2 == sq2 ? 1 : 0) : swq / std::sqrt(sw2 * sq2);
  if (r.off_step && u_.weights_updated) {
    sink_.note("the weights were updated after pruning (metadata '*.weights_updated' = 1): int8 values are not "
               "round(W / scale) of the float model, so only SQNR and cosine are reported");
  } else if (r.off_step) {
    const std::string source = name.substr(name.find('/') + 1);  // without the "partI-of-N/" label
    const std::string of = split_last(tensor).first != source ? " in the rows from '" + source + "'" : "";
    problem("numerics", tensor,
            std::to_string(r.off_step) + " of " + std::to_string(r.elements) +
                " int8 values are further than half a step from " + (smooth_ ? "W' / weight_scale (W' the smoothed float weights)" : "W / weight_scale") + of + " (worst [" +
                std::to_string(worst_r) + "," + std::to_string(worst_c) + "]: " +
                std::to_string(wq[worst_r * cols + worst_c]) + " for " + fmt(W[worst_r * w_stride + worst_c] / ws[worst_r]) +
                ")" + (r.off_step * 100 > r.elements ? "; not quantized from this float model?" : ""));
  }
  sink_.report->numerics.push_back(r);
}

// A smoothed checkpoint: what the numeric checks compare with (see smoothing.hpp), or why they
// are skipped.
void UnitChecker::start_smoothing() {
  if (!u_.smoothed || !ctx_.against) return;
  if (u_.parts > 1) {
    skip_numerics_ = true;
    return sink_.note("anti-outlier smoothing rescaled the weights (metadata 'st.quant.weights_updated' = 1): their "
                      "numerics are compared in the merged checkpoint only (st-shard --merge, then verify it)");
  }
  if (!ctx_.float_arch) {
    skip_numerics_ = true;
    return sink_.note("anti-outlier smoothing rescaled the weights (metadata 'st.quant.weights_updated' = 1) and the "
                      "float model's architecture is unknown, so the smoothed weights cannot be rebuilt: no numerics");
  }
  smooth_ = std::make_unique<SmoothRebuild>(u_, *ctx_.against, *ctx_.float_arch);
  sink_.note("anti-outlier smoothing rescaled the weights (metadata 'st.quant.weights_updated' = 1): linears are "
             "compared with the smoothed float weights W' = W diag(s), s rebuilt from the stored norms and up_proj scales");
}

// A float-kept linear weight of a smoothed checkpoint: W' rounded to its dtype, within the
// rebuilt scales' uncertainty. False when `name` is no such weight (compared byte for byte).
bool UnitChecker::compare_smoothed_float(const std::string& name, const Loc& l) {
  if (!smooth_ || !ctx_.float_arch) return false;
  const LinearInfo* li = ctx_.float_arch->linear_of_tensor(name);
  const SmoothScales* sc = li && li->weight_name() == name ? smooth_->of(li->prefix) : nullptr;
  const TensorEntry* e = sc ? ctx_.against->find(name) : nullptr;
  if (!e) return false;
  auto W = ctx_.against->read_f32(*e);
  ctx_.against->release(*e);
  const std::vector<float> got = read_f32(u_, l);
  const int64_t n = li->out_features, k = li->in_features;
  if (!W || got.size() != W->size() || static_cast<int64_t>(got.size()) != n * k) return false;
  sc->apply(W->data(), 0, n, k);
  uint64_t off = 0;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < k; ++j) {
      const double e2 = (sc->row_err.empty() ? 0 : sc->row_err[r]) + (sc->col_err.empty() ? 0 : sc->col_err[j]);
      // The stored value's rounding (an F16 subnormal's ulp is absolute) and the scales'.
      const double want = (*W)[r * k + j],
                   tol = std::fabs(want) * (roundoff(l.info->dtype) + e2) * 1.01 +
                         (l.info->dtype == DType::F16 ? std::ldexp(1.0, -25) : 0.0);
      off += !std::isinf(e2) && !(std::fabs(got[r * k + j] - want) <= tol);
    }
  if (off)
    problem("numerics", name, std::to_string(off) + " of " + std::to_string(n * k) +
                                  " values differ from the smoothed float weights W' = W diag(s)");
  return true;
}

// A FLOAT tensor holds the float model's bytes (its rows of them, in a part).
void UnitChecker::compare_float(const std::string& name, const Loc& l) {
  if (compare_smoothed_float(name, l)) return u_.release(l);
  const ByteView b = u_.data(l);
  const size_t es = dtype_bits(l.info->dtype) / 8;
  bool same = true;
  for (const Piece& p : pieces_of(name)) {
    const TensorEntry* e = ctx_.against->find(p.source);
    if (!e) continue;  // a tensor the quantizer added
    if (ctx_.against->value_dtype(*e) != l.info->dtype || e->info->shape != p.shape || es == 0) {
      same = false;
      break;
    }
    const Slice s = slice_of(p, recipe_.rank, recipe_.tp);
    const int64_t part_rows = l.info->shape.empty() ? 1 : l.info->shape[0];
    const int64_t part_cols = l.info->shape.size() > 1 && part_rows > 0 ? static_cast<int64_t>(l.info->numel()) / part_rows : 1;
    if (s.nc != part_cols || p.at < 0 || p.at + s.nr > part_rows) {  // the recipe bounds at + rows: no overflow
      same = false;
      break;
    }
    ByteView a = ctx_.against->data(*e);
    std::vector<uint8_t> cast;  // an FP8 weight kept float is stored as the dtype it reads as
    if (e->scale_inv) {
      const auto v = ctx_.against->read_f32(*e);
      if (!v) {
        same = false;
        break;
      }
      cast.resize(v->size() * es);
      from_f32(l.info->dtype, v->data(), cast.data(), v->size());
      a = ByteView{cast.data(), cast.size()};
    }
    const int64_t cols = s.nc + (p.shape.size() > 1 ? p.shape[1] - s.nc : 0);
    for (int64_t i = 0; i < s.nr && same; ++i)
      same = std::memcmp(a.data + ((s.r0 + i) * cols + s.c0) * es, b.data + (p.at + i) * part_cols * es, s.nc * es) == 0;
    ctx_.against->release(*e);
  }
  u_.release(l);
  if (same) return;
  if (name.find("norm") != std::string::npos)
    sink_.note("FLOAT norm weights differ from the float model (anti-outlier smoothing folds its scales into them)");
  else
    problem("numerics", name, "FLOAT tensor differs from the float model's");
}

}  // namespace st::verify_detail
