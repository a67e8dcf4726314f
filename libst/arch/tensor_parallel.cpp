// Tensor-parallel split rules and packing names, by tensor name (see tensor_parallel.hpp).
#include "libst/arch/tensor_parallel.hpp"

#include "libst/core/paths.hpp"

#include <array>

namespace st {
namespace {

// Per-output-row tensors of a linear (split with its rows) and per-tensor ones (replicated).
// weight_scale_inv: an FP8 weight's 128x128 block scales (libst/format/fp8.hpp), cut like it.
constexpr std::array<std::string_view, 9> kRowSuffixes = {"weight",         "bias",           "deq_scale",
                                                          "quant_bias",     "weight_scale",   "weight_offset",
                                                          "kv_cache_scale", "kv_cache_offset", "weight_scale_inv"};
constexpr std::array<std::string_view, 2> kTensorSuffixes = {"input_scale", "input_offset"};

template <size_t N>
bool in(const std::array<std::string_view, N>& set, std::string_view s) {
  for (auto x : set)
    if (x == s) return true;
  return false;
}

enum class LinearKind { none, column_heads, column_kv, column, row, replicated, embedding, fused_qkv, fused_gate_up };

// Splits "a.b.c.d" into ("a.b", "c", "d"): parent, last-but-one and last component.
struct NameParts {
  std::string_view parent, module, suffix;
};
NameParts split_name(std::string_view name) {
  NameParts p;
  const size_t last = name.rfind('.');
  if (last == std::string_view::npos) {
    p.suffix = name;
    return p;
  }
  p.suffix = name.substr(last + 1);
  const std::string_view head = name.substr(0, last);
  const size_t prev = head.rfind('.');
  if (prev == std::string_view::npos) {
    p.module = head;
  } else {
    p.module = head.substr(prev + 1);
    p.parent = head.substr(0, prev);
  }
  return p;
}

// The last dot-separated component of s (s without ".weight" first, for a tensor name).
std::string_view leaf_of(std::string_view s, bool tensor) {
  if (tensor && ends_with(s, ".weight")) s.remove_suffix(7);
  const size_t dot = s.rfind('.');
  return dot == std::string_view::npos ? s : s.substr(dot + 1);
}

LinearKind linear_kind(const NameParts& p, model::Family family) {
  const model::TensorNames& n = model::tensor_names(family);
  const std::string_view m = p.module;
  if (m.empty()) return LinearKind::none;
  if (m == n.qkv) return LinearKind::fused_qkv;
  if (m == n.gate_up) return LinearKind::fused_gate_up;
  if (m == "q_proj" || m == "q_b_proj" || m == "kv_b_proj") return LinearKind::column_heads;
  if (m == "k_proj" || m == "v_proj") return LinearKind::column_kv;
  if (m == "gate_proj" || m == "up_proj" || m == n.expert_gate || m == n.expert_up || m == "lm_head" ||
      m == leaf_of(n.lm_head, false))
    return LinearKind::column;
  if (m == "o_proj" || m == "down_proj" || m == n.o || m == n.down || m == n.expert_down) return LinearKind::row;
  if (m == "q_a_proj" || m == "kv_a_proj_with_mqa") return LinearKind::replicated;
  if (m == "gate" && (ends_with(p.parent, "mlp") || ends_with(p.parent, n.moe))) return LinearKind::replicated;  // MoE router
  if (m == "embed_tokens" || m == leaf_of(n.embed, true)) return LinearKind::embedding;
  return LinearKind::none;
}

const char* kind_label(LinearKind k) {
  switch (k) {
    case LinearKind::column_heads:
    case LinearKind::column_kv:
    case LinearKind::column:
    case LinearKind::fused_qkv:
    case LinearKind::fused_gate_up: return "column-parallel";
    case LinearKind::row: return "row-parallel";
    case LinearKind::replicated: return "replicated";
    case LinearKind::embedding: return "vocabulary-parallel";
    case LinearKind::none: break;
  }
  return "other";
}

// Chunks for a tensor whose dim 0 holds n heads (or n groups of rows): tp when n >= tp, else n,
// which must then divide tp (KV heads replicated over tp / n ranks).
Result<int64_t> head_chunks(int64_t n, int tp, std::string_view name) {
  if (n >= tp) return static_cast<int64_t>(tp);
  if (n <= 0 || tp % n != 0)
    return make_error(Errc::unsupported,
                      std::to_string(n) + " heads cannot be spread over " + std::to_string(tp) +
                          " ranks (neither divides the other)",
                      "", std::string(name));
  return n;
}

Status check_divides(const std::vector<int64_t>& shape, const SplitRule& r, std::string_view name) {
  if (r.kind != SplitKind::split) return Status{};
  if (!r.sections.empty()) {
    int64_t rows = 0;
    for (const RowSection& s : r.sections) {
      if (s.rows % s.chunks != 0)
        return make_error(Errc::unsupported,
                          r.why + ": a part of " + std::to_string(s.rows) + " rows does not split into " +
                              std::to_string(s.chunks) + " equal parts",
                          "", std::string(name));
      rows += s.rows;
    }
    if (shape.empty() || shape[0] != rows)
      return make_error(Errc::format,
                        r.why + ": " + (shape.empty() ? std::string("0-D") : std::to_string(shape[0]) + " rows") +
                            ", but config.json implies " + std::to_string(rows),
                        "", std::string(name));
    return Status{};
  }
  if (static_cast<size_t>(r.dim) >= shape.size())
    return make_error(Errc::format,
                      std::string(r.why) + " tensor needs a dimension " + std::to_string(r.dim) + " to split, shape has " +
                          std::to_string(shape.size()),
                      "", std::string(name));
  if (shape[r.dim] % r.chunks != 0)
    return make_error(Errc::unsupported,
                      std::string(r.why) + ": dimension " + std::to_string(r.dim) + " (" + std::to_string(shape[r.dim]) +
                          ") does not split into " + std::to_string(r.chunks) + " equal parts",
                      "", std::string(name));
  return Status{};
}

}  // namespace

TpConfig TpConfig::of(const model::ModelConfig& c) {
  TpConfig t;
  t.heads = c.heads;
  t.kv_heads = c.kv_heads;
  t.head_dim = c.head_dim;
  t.vocab = c.vocab;
  t.intermediate = c.intermediate;
  t.moe_intermediate = c.n_routed_experts > 0 ? c.moe_intermediate : 0;
  t.mla = c.mla;
  t.family = c.family;
  return t;
}

Status check_tp_degree(const TpConfig& cfg, int tp) {
  const std::string n = std::to_string(tp);
  if (tp < 1) return make_error(Errc::usage, "--tp must be at least 1, got " + n);
  auto refuse = [&](const std::string& what) {
    return make_error(Errc::unsupported, "cannot split for tensor parallelism " + n + ": " + what);
  };
  if (cfg.heads % tp != 0)
    return refuse(std::to_string(cfg.heads) + " attention heads do not divide into " + n + " ranks");
  if (!cfg.mla && cfg.kv_heads % tp != 0 && !(cfg.kv_heads < tp && tp % cfg.kv_heads == 0))
    return refuse(std::to_string(cfg.kv_heads) + " KV heads neither divide into " + n +
                  " ranks nor replicate evenly over them");
  if (cfg.intermediate > 0 && cfg.intermediate % tp != 0)
    return refuse("intermediate_size " + std::to_string(cfg.intermediate) + " does not divide into " + n + " ranks");
  if (cfg.moe_intermediate > 0 && cfg.moe_intermediate % tp != 0)
    return refuse("moe_intermediate_size " + std::to_string(cfg.moe_intermediate) + " does not divide into " + n +
                  " ranks");
  if (cfg.vocab % tp != 0)
    return refuse("vocab_size " + std::to_string(cfg.vocab) + " does not divide into " + n + " ranks");
  return Status{};
}

const char* split_kind_name(SplitKind k) {
  switch (k) {
    case SplitKind::replicate: return "replicate";
    case SplitKind::rank0: return "rank0";
    case SplitKind::split: return "split";
  }
  return "?";
}

std::optional<SplitKind> split_kind_from_name(std::string_view s) {
  if (s == "replicate") return SplitKind::replicate;
  if (s == "rank0") return SplitKind::rank0;
  if (s == "split") return SplitKind::split;
  return std::nullopt;
}

Result<SplitRule> split_rule(std::string_view name, const std::vector<int64_t>& shape, const TpConfig& cfg, int tp,
                             const TpOptions& options) {
  const NameParts p = split_name(name);
  SplitRule r;
  auto split = [&](int dim, int64_t chunks, std::string why) -> Result<SplitRule> {
    r.kind = chunks == 1 ? SplitKind::replicate : SplitKind::split;
    r.dim = dim;
    r.chunks = chunks;
    r.why = std::move(why);
    if (r.kind == SplitKind::replicate) r.dim = 0;
    ST_CHECK(check_divides(shape, r, name));
    return r;
  };

  // Attention activation scales: <attn>.fa_{q,k,v}.{scale,offset}, [heads, 1] split by head.
  if ((p.module == "fa_q" || p.module == "fa_k" || p.module == "fa_v") && (p.suffix == "scale" || p.suffix == "offset")) {
    if (shape.empty()) return make_error(Errc::format, "attention scale is 0-D, expected [heads, 1]", "", std::string(name));
    ST_ASSIGN(const int64_t chunks, head_chunks(shape[0], tp, name));
    return split(0, chunks, std::string(p.module) + " per-head scale");
  }

  const LinearKind kind = linear_kind(p, cfg.family);
  const std::string label = std::string(kind_label(kind)) + " " + std::string(p.module);
  const bool row_suffix = in(kRowSuffixes, p.suffix);
  const bool tensor_suffix = in(kTensorSuffixes, p.suffix);
  if (kind == LinearKind::none) {
    r.why = "not a linear";
    return r;
  }
  if (kind == LinearKind::replicated) {
    r.why = label;
    return r;
  }
  if (kind == LinearKind::embedding) {
    if (p.suffix != "weight") return make_error(Errc::unsupported, "no split rule for this embedding tensor", "", std::string(name));
    if (options.replicate_embeddings) {
      r.why = "replicated embedding";
      return r;
    }
    return split(0, tp, "vocabulary-parallel embedding");
  }
  if (!row_suffix && !tensor_suffix)
    return make_error(Errc::unsupported,
                      "no split rule for '" + std::string(p.suffix) + "' of a " + label + " linear", "", std::string(name));
  if (tensor_suffix) {
    r.why = label + " per-tensor parameter";
    return r;
  }
  if (p.suffix.substr(0, 9) == "kv_cache_" && kind != LinearKind::column_kv)
    return make_error(Errc::unsupported, "kv-cache scales belong to k_proj or v_proj", "", std::string(name));
  // Standard attention: q/k/v rows are heads x head_dim; a config that disagrees would cut heads.
  if (!cfg.mla && cfg.head_dim > 0 && !shape.empty() && p.suffix != "weight_scale_inv" &&
      (p.module == "q_proj" || kind == LinearKind::column_kv)) {
    const int64_t heads = p.module == "q_proj" ? cfg.heads : cfg.kv_heads;
    if (shape[0] != heads * cfg.head_dim)
      return make_error(Errc::format,
                        std::to_string(shape[0]) + " rows, but config.json says " + std::to_string(heads) + " heads x " +
                            std::to_string(cfg.head_dim) + " head_dim",
                        "", std::string(name));
  }

  switch (kind) {
    case LinearKind::column_heads:
    case LinearKind::column:
      return split(0, tp, label);
    case LinearKind::fused_qkv: {
      if (cfg.head_dim <= 0) return make_error(Errc::format, "config has no head size", "", std::string(name));
      ST_ASSIGN(const int64_t kv_chunks, head_chunks(cfg.kv_heads, tp, name));
      r.kind = SplitKind::split;
      r.dim = 0;
      r.chunks = tp;
      r.sections = {{cfg.heads * cfg.head_dim, tp}, {cfg.kv_heads * cfg.head_dim, kv_chunks}, {cfg.kv_heads * cfg.head_dim, kv_chunks}};
      r.why = label + " (q, k, v parts split by heads)";
      if (tp == 1) r = SplitRule{SplitKind::replicate, 0, 1, {}, label};
      ST_CHECK(check_divides(shape, r, name));
      return r;
    }
    case LinearKind::fused_gate_up: {
      r.kind = SplitKind::split;
      r.dim = 0;
      r.chunks = tp;
      r.sections = {{cfg.intermediate, tp}, {cfg.intermediate, tp}};
      r.why = label + " (gate and up halves split)";
      if (tp == 1) r = SplitRule{SplitKind::replicate, 0, 1, {}, label};
      ST_CHECK(check_divides(shape, r, name));
      return r;
    }
    case LinearKind::column_kv: {
      if (cfg.kv_heads <= 0) return make_error(Errc::format, "config has no KV head count", "", std::string(name));
      ST_ASSIGN(const int64_t chunks, head_chunks(cfg.kv_heads, tp, name));
      return split(0, chunks, label);
    }
    case LinearKind::row:
      if (p.suffix == "weight" || p.suffix == "weight_scale_inv") return split(1, tp, label);
      if (p.suffix == "bias" || p.suffix == "quant_bias") {
        r.kind = SplitKind::rank0;
        r.why = label + " output bias (rank 0 only)";
        return r;
      }
      r.why = label + " per-output parameter";
      return r;
    default: break;
  }
  r.why = label;
  return r;
}

bool is_row_parallel_module(std::string_view module, model::Family family) {
  NameParts p;
  p.module = module;
  return linear_kind(p, family) == LinearKind::row;
}

std::vector<RowRange> SplitRule::rows_of(int rank, int tp, int64_t dim0) const {
  if (sections.empty()) {
    const int64_t part = dim0 / chunks;
    return {RowRange{chunk_of(rank, tp) * part, part}};
  }
  std::vector<RowRange> out;
  int64_t first = 0;
  for (const RowSection& s : sections) {
    const int64_t part = s.rows / s.chunks;
    out.push_back(RowRange{first + static_cast<int64_t>(rank) * s.chunks / tp * part, part});
    first += s.rows;
  }
  return out;
}

int64_t SplitRule::piece_rows(int64_t dim0) const {
  if (sections.empty()) return dim0 / chunks;
  int64_t rows = 0;
  for (const RowSection& s : sections) rows += s.rows / s.chunks;
  return rows;
}

std::optional<PackTarget> pack_target(std::string_view name) {
  const NameParts p = split_name(name);
  static const std::vector<std::string_view> qkv = {"q_proj", "k_proj", "v_proj"};
  static const std::vector<std::string_view> gate_up = {"gate_proj", "up_proj"};
  static const std::vector<std::string_view> w1_w3 = {"w1", "w3"};  // mixtral experts (MindIE packs them so)
  const std::vector<std::string_view>* members = nullptr;
  std::string_view packed_module;
  for (size_t i = 0; i < qkv.size(); ++i)
    if (p.module == qkv[i]) members = &qkv, packed_module = "query_key_value";
  for (const auto* mlp : {&gate_up, &w1_w3})
    for (size_t i = 0; i < mlp->size(); ++i)
      if (p.module == (*mlp)[i]) members = mlp, packed_module = "gate_up_proj";
  if (!members || p.parent.empty()) return std::nullopt;
  const bool row = in(kRowSuffixes, p.suffix) && p.suffix.substr(0, 9) != "kv_cache_";
  const bool shared = in(kTensorSuffixes, p.suffix);
  if (!row && !shared) return std::nullopt;
  PackTarget t;
  const std::string parent(p.parent), suffix(p.suffix);
  t.group = parent + "." + std::string(packed_module);
  t.packed = t.group + "." + suffix;
  t.members = static_cast<int>(members->size());
  t.shared = shared;
  for (size_t i = 0; i < members->size(); ++i) {
    if ((*members)[i] == p.module) t.member = static_cast<int>(i);
    t.member_names.push_back(parent + "." + std::string((*members)[i]) + "." + suffix);
  }
  return t;
}

}  // namespace st
