// Arithmetic checks: weight and input scales, deq_scale = input_scale * weight_scale, quant_bias
// from the float bias and the int8 row sums, and across part folders the row-parallel quant_bias.
#include <cmath>
#include <cstring>

#include "libst/verify/checker.hpp"

namespace st::verify_detail {
namespace {

// The family's tensor names (HF names when config.json is not a known family's).
const model::TensorNames& names_of(const Unit& u) {
  return model::tensor_names(u.model ? u.model->family : model::Family::llama);
}
// q/k/v (separate, fused in the checkpoint, or packed by st-shard): linears that read the
// attention input.
bool is_qkv_leaf(const model::TensorNames& n, const std::string& leaf) {
  return leaf == n.q || leaf == n.k || leaf == n.v || leaf == n.qkv || leaf == "query_key_value";
}
bool is_attention_leaf(const model::TensorNames& n, const std::string& leaf) {
  static const std::set<std::string> a = {"q_proj", "k_proj", "v_proj", "o_proj", "query_key_value", "q_a_proj",
                                          "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj"};
  return a.count(leaf) > 0 || (!leaf.empty() && (is_qkv_leaf(n, leaf) || leaf == n.o));
}
bool is_row_parallel(const Unit& u, const std::string& prefix) {
  return is_row_parallel_module(split_last(prefix).second, u.model ? u.model->family : model::Family::llama);
}

}  // namespace

// The float bias of a linear when it is known: stored beside it, from the float model, or zero
// because the architecture has none there.
std::optional<std::vector<float>> UnitChecker::known_bias(const Linear& l) {
  if (const Loc* b = l.get("bias")) return read_f32(u_, *b);
  const bool sliced = u_.parts > 1 && !is_row_parallel(u_, l.prefix);
  if (ctx_.against && sliced && recipe_.present) {  // the float bias rows this part's rows came from
    std::vector<float> out(static_cast<size_t>(l.n), 0.0f);
    for (const Piece& p : pieces_of(l.prefix + ".quant_bias")) {
      const Slice sl = slice_of(p, recipe_.rank, recipe_.tp);
      if (p.at < 0 || p.at + sl.nr > l.n) return std::nullopt;
      const TensorEntry* e = ctx_.against->find(split_last(p.source).first + ".bias");
      if (!e) continue;  // no bias: zeros
      auto v = ctx_.against->read_f32(*e);
      if (!v || static_cast<int64_t>(v->size()) != (p.shape.empty() ? 1 : p.shape[0])) return std::nullopt;
      std::copy(v->begin() + sl.r0, v->begin() + sl.r0 + sl.nr, out.begin() + p.at);
    }
    return out;
  }
  if (ctx_.against && !sliced) {
    if (const TensorEntry* e = ctx_.against->find(l.prefix + ".bias")) {
      auto v = ctx_.against->read_f32(*e);
      if (v && static_cast<int64_t>(v->size()) == l.n) return std::move(v.value());
      return std::nullopt;
    }
    return std::vector<float>(static_cast<size_t>(l.n), 0.0f);
  }
  if (!u_.model) return std::nullopt;  // no valid config of a known family: the bias is unknown
  const std::string leaf = split_last(l.prefix).second;
  const model::TensorNames& names = names_of(u_);
  const bool attn = is_attention_leaf(names, leaf);
  if (attn && (u_.model->attention_bias || (u_.model->qkv_bias && is_qkv_leaf(names, leaf)))) return std::nullopt;
  if (!attn && u_.model->mlp_bias) return std::nullopt;
  return std::vector<float>(static_cast<size_t>(l.n), 0.0f);
}

void UnitChecker::check_linear_values(Linear& l) {
  const bool dynamic = l.type == "W8A8_DYNAMIC";
  const size_t n = static_cast<size_t>(l.n), k = static_cast<size_t>(l.k);
  const std::string P = l.prefix + ".";
  // The int8 weight: a view, or the W8A8SC tile stream decoded.
  std::vector<int8_t> decoded;
  auto weight = int8_weight(u_, l.prefix, l.type, l.n, l.k, decoded);
  if (!weight) return problem("integrity", P + "weight", "tile stream does not decode: " + weight.error().message);
  const int8_t* wq = *weight;
  // weight_scale > 0 and finite; weight_offset zero (symmetric). W8A8S / W8A8SC store neither: the
  // weight scale is derived from deq_scale below (libst/quant/w8a8.hpp).
  const bool stored_ws = l.get("weight_scale") != nullptr;
  std::vector<float> ws = stored_ws ? read_f32(u_, *l.get("weight_scale")) : std::vector<float>();
  int bad = 0;
  for (size_t i = 0; i < ws.size(); ++i)
    if (!(std::isfinite(ws[i]) && ws[i] > 0) && bad++ < kMaxListed)
      problem("arithmetic", P + "weight_scale", "row " + std::to_string(i) + " is " + fmt(ws[i]) + ", expected finite > 0");
  if (const Loc* wol = l.get("weight_offset")) {
    const std::vector<float> wo = read_f32(u_, *wol);
    bad = 0;
    for (size_t i = 0; i < n; ++i)
      if (wo[i] != 0 && bad++ < kMaxListed)
        problem("arithmetic", P + "weight_offset", "row " + std::to_string(i) + " is " + fmt(wo[i]) + ", expected 0 (symmetric)");
  }
  const DType ws_dt = stored_ws ? l.get("weight_scale")->info->dtype : DType::F32;

  if (!dynamic) {
    const float s_in = read_f32(u_, *l.get("input_scale"))[0];
    const float off = read_f32(u_, *l.get("input_offset"))[0];
    if (!(std::isfinite(s_in) && s_in > 0)) problem("arithmetic", P + "input_scale", "is " + fmt(s_in) + ", expected finite > 0");
    const bool off_ok = std::isfinite(off) && off == std::nearbyint(off) && off >= -128 && off <= 127;
    if (!off_ok) problem("arithmetic", P + "input_offset", "is " + fmt(off) + ", expected an integer in [-128, 127]");
    // deq_scale = fp32(input_scale * weight_scale), up to the rounding of the stored factors.
    const Loc* dl = l.get("deq_scale");
    const ByteView dv = u_.data(*dl);
    std::vector<float> deq(n);
    int hi_bad = 0, mismatch = 0;
    for (size_t i = 0; i < n; ++i) {
      if (dl->info->dtype == DType::I64) {
        uint64_t raw;
        std::memcpy(&raw, dv.data + 8 * i, 8);
        if ((raw >> 32) != 0 && hi_bad++ < kMaxListed)
          problem("arithmetic", P + "deq_scale", "row " + std::to_string(i) + " has nonzero high 32 bits (0x" +
                                                     fmt(static_cast<double>(raw >> 32)) + "); fp32 bits go in the low 32");
        deq[i] = bits_to_float(static_cast<uint32_t>(raw));
      } else {
        std::memcpy(&deq[i], dv.data + 4 * i, 4);
      }
      if (!stored_ws) {  // derived: weight_scale = f32(deq_scale / input_scale), finite and > 0
        ws.push_back(deq[i] / s_in);
        if (!(std::isfinite(ws[i]) && ws[i] > 0) && bad++ < kMaxListed)
          problem("arithmetic", P + "deq_scale", "row " + std::to_string(i) + " is " + fmt(deq[i]) +
                                                     ": deq_scale / input_scale must be finite > 0");
        continue;
      }
      const double want = static_cast<double>(s_in) * ws[i];
      const double tol = (roundoff(l.get("input_scale")->info->dtype) + roundoff(ws_dt) + std::ldexp(1.0, -22)) * std::fabs(want);
      if (!(std::isfinite(deq[i]) && std::fabs(deq[i] - want) <= tol) && mismatch++ < kMaxListed)
        problem("arithmetic", P + "deq_scale", "row " + std::to_string(i) + " is " + fmt(deq[i]) +
                                                   ", but input_scale * weight_scale = " + fmt(want));
    }
    // quant_bias = round(b / deq_scale - input_offset * sum_k W_q).
    std::vector<int64_t> rowsum(n, 0);
    for (size_t r = 0; r < n; ++r) {
      int64_t s = 0;
      const int8_t* row = wq + r * k;
      for (size_t c = 0; c < k; ++c) s += row[c];
      rowsum[r] = s;
    }
    const ByteView qv = u_.data(*l.get("quant_bias"));
    std::vector<int32_t> qb(n);
    std::memcpy(qb.data(), qv.data, 4 * n);
    auto bias = known_bias(l);
    if (u_.parts > 1 && is_row_parallel(u_, l.prefix)) {
      RowParallelBias& rp = ctx_.row_parallel[l.prefix];
      const size_t parts = static_cast<size_t>(u_.parts), p = static_cast<size_t>(u_.part);
      if (rp.rowsums.size() != parts) {
        rp.rowsums.resize(parts), rp.quant_bias.resize(parts), rp.deq_scale.resize(parts);
        rp.input_offset.resize(parts), rp.file.resize(parts), rp.present.assign(parts, false);
      }
      if (p < parts) {
        rp.rowsums[p] = rowsum, rp.quant_bias[p] = qb, rp.deq_scale[p] = deq, rp.input_offset[p] = off;
        rp.file[p] = u_.file_of(P + "quant_bias"), rp.present[p] = true;
        if (p == 0 && bias) rp.bias = bias;
      }
    } else if (!bias) {
      ++ctx_.bias_unknown;
    } else if (off_ok) {
      int listed = 0, wrong = 0;
      for (size_t i = 0; i < n; ++i) {
        const double want = std::nearbyint(static_cast<double>((*bias)[i]) / deq[i] - off * static_cast<double>(rowsum[i]));
        if (!std::isfinite(want) || std::fabs(qb[i] - want) <= 1 + std::fabs(want) * std::ldexp(1.0, -22)) continue;
        ++wrong;
        if (listed++ < kMaxListed)
          problem("arithmetic", P + "quant_bias", "row " + std::to_string(i) + " is " + std::to_string(qb[i]) + ", expected " +
                                                      fmt(want) + " = round(bias / deq_scale - input_offset * sum W_q)");
      }
      if (wrong > kMaxListed)
        problem("arithmetic", P + "quant_bias", std::to_string(wrong - kMaxListed) + " more rows wrong (" +
                                                    std::to_string(wrong) + " of " + std::to_string(n) + ")");
    }
  }
  if (ctx_.against) check_numerics(l, wq, ws, ws_dt);
}

void check_parts(const std::vector<std::unique_ptr<Unit>>& units, CheckContext& ctx) {
  Sink& sink = ctx.sink;
  const Unit* ref = nullptr;
  for (const auto& u : units)
    if (!u->order.empty()) {
      ref = u.get();
      break;
    }
  if (!ref) return;
  const auto ref_dir = ref->desc_file.substr(0, ref->desc_file.rfind('/'));
  for (const auto& u : units) {
    if (u.get() == ref || (u->order.empty() && !u->desc)) continue;
    const std::string dir = u->desc_file.substr(0, u->desc_file.rfind('/'));
    int listed = 0;
    for (const auto& name : ref->order) {
      const Loc* a = ref->find(name);
      const Loc* b = u->find(name);
      if (!b) {
        if (listed++ < 5) sink.add("structure", dir, name, "in '" + ref->label + "' but missing from '" + u->label + "'");
        continue;
      }
      const bool stream = ref->desc && ref->desc->type_of(name) == std::optional<std::string>("W8A8SC") &&
                          split_last(name).second == "weight";
      if (a->info->dtype != b->info->dtype || (!stream && a->info->shape != b->info->shape))
        sink.add("structure", u->file_of(name), name,
                 std::string("is ") + dtype_name(b->info->dtype) + " " + shape_str(b->info->shape) + " but " +
                     dtype_name(a->info->dtype) + " " + shape_str(a->info->shape) + " in '" + ref->label + "'");
    }
    for (const auto& name : u->order)
      if (!ref->find(name) && listed++ < 5)
        sink.add("structure", u->file_of(name), name, "in '" + u->label + "' but not in '" + ref->label + "'");
    if (ref->desc && u->desc) {
      const auto d = compare(*ref->desc, *u->desc);
      if (!d.empty())
        sink.add("structure", u->desc_file, "", "description differs from '" + ref_dir + "/" + kDescriptionFile + "'");
    }
  }
  // Row-parallel linears: the first rank keeps the whole quant_bias (over the full k), the others zero.
  for (const auto& [prefix, rp] : ctx.row_parallel) {
    const size_t parts = rp.rowsums.size();
    bool complete = true;
    for (size_t p = 0; p < parts; ++p) complete = complete && rp.present[p] && rp.rowsums[p].size() == rp.rowsums[0].size();
    for (size_t p = 1; p < parts; ++p) {
      if (!rp.present[p]) continue;
      const auto& qb = rp.quant_bias[p];
      for (size_t i = 0; i < qb.size(); ++i)
        if (qb[i] != 0) {
          sink.add("arithmetic", rp.file[p], prefix + ".quant_bias",
                   "row " + std::to_string(i) + " is " + std::to_string(qb[i]) +
                       ", expected 0: a row-parallel linear keeps quant_bias on the first rank only");
          break;
        }
    }
    if (!complete) continue;
    if (!rp.bias) {
      ++ctx.bias_unknown;
      continue;
    }
    const size_t n = rp.rowsums[0].size();
    int listed = 0;
    for (size_t i = 0; i < n; ++i) {
      int64_t total = 0;
      for (size_t p = 0; p < parts; ++p) total += rp.rowsums[p][i];
      const double want = std::nearbyint(static_cast<double>((*rp.bias)[i]) / rp.deq_scale[0][i] -
                                         rp.input_offset[0] * static_cast<double>(total));
      const int32_t got = rp.quant_bias[0][i];
      if (std::isfinite(want) && std::fabs(got - want) > 1 + std::fabs(want) * std::ldexp(1.0, -22) && listed++ < kMaxListed)
        sink.add("arithmetic", rp.file[0], prefix + ".quant_bias",
                 "row " + std::to_string(i) + " is " + std::to_string(got) + ", expected " + fmt(want) +
                     " = round(bias / deq_scale - input_offset * sum W_q over all ranks)");
    }
  }
}

}  // namespace st::verify_detail
