// Tensor-parallel split rules: for one tensor name and shape, how MindIE's loader cuts it
// across TP ranks, and which packed name (query_key_value, gate_up_proj) it goes into.
//
// The rules are name based, as MindIE-LLM's loader is (atb_llm/utils/weights.py:
// get_multi_weights_col / get_multi_weights_row / get_replicated_weights / get_partial_sharded,
// models/base/modeling.py: FlashAttention / MLP pack names). For a linear with prefix P:
//
//   linear kind            P.weight   bias    deq_scale quant_bias weight_scale/offset input_scale/offset
//   column (q,k,v,gate,up, dim 0      dim 0   dim 0     dim 0      dim 0               replicate
//    q_b,kv_b,lm_head,
//    expert gate/up/w1/w3,
//    fused qkv / gate_up)
//   row (o, down,          dim 1      rank 0  replicate rank 0     replicate           replicate
//    expert down/w2,
//    chatglm dense / dense_4h_to_h)
//   replicated (q_a,       replicate everything
//    kv_a_proj_with_mqa, MoE router mlp.gate / block_sparse_moe.gate)
//
// Module names are the family's (family.hpp: TpConfig::family): lm_head is chatglm's output_layer,
// embed_tokens its embedding.word_embeddings. A fused tensor (baichuan W_pack, chatglm
// query_key_value; glm/glm4 gate_up_proj, chatglm dense_h_to_4h) is split the way MindIE's
// get_weights_col_packed_qkv / _mlp split it: by sections of rows, each cut on its own — q rows
// into tp chunks, k and v rows into min(tp, kv_heads) chunks (gqa: a rank takes KV chunk
// r * chunks / tp); gate and up halves into tp chunks each — and a rank holds its chunk of every
// section, in order, under the same name.
//
// P.weight_scale_inv (an FP8 weight's 128x128 block scales) is cut as P.weight is; a cut that falls
// inside a block cannot be represented and st-shard refuses it (libst/shard).
// "rank 0": rank 0 keeps the tensor, every other rank holds zeros of the same shape (a row-parallel
// output is summed over ranks, so its bias must be added once). Dim-0 splits are by heads where
// the rows are heads: q/q_b/kv_b/fa_q in tp chunks; k/v/fa_k/fa_v in min(tp, kv_heads) chunks, so
// with kv_heads < tp each rank gets the one KV head its query heads use (rank r holds KV chunk
// r * chunks / tp, as MindIE's get_partial_sharded with gqa_size does). Embeddings and lm_head
// split by vocabulary (dim 0). C8 kv_cache_scale/offset follow their k/v projection.
// Everything else (norms, router bias, unknown tensors outside a linear) is replicated.
//
// Packing: per rank, P.{q,k,v}_proj.S -> P.query_key_value.S (rank's q rows, then k, then v) and
// P.{gate,up}_proj.S -> P.gate_up_proj.S for S in the per-row tensors; per-tensor parameters
// (input_scale, input_offset) appear once in the packed linear.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "libst/arch/config.hpp"
#include "libst/core/error.hpp"

namespace st {

// What the split rules need from config.json (read by model::parse_config).
struct TpConfig {
  int64_t heads = 0;             // num_attention_heads
  int64_t kv_heads = 0;          // num_key_value_heads (default: heads)
  int64_t head_dim = 0;          // head_dim (default: hidden_size / heads; 0: unknown, unchecked)
  int64_t intermediate = 0;      // intermediate_size (0: none)
  int64_t moe_intermediate = 0;  // moe_intermediate_size of routed experts (0: none)
  int64_t vocab = 0;             // vocab_size
  bool mla = false;              // DeepSeek MLA: no k/v projections
  model::Family family = model::Family::llama;  // whose module names (family.hpp)

  static TpConfig of(const model::ModelConfig& config);
};

// Refuses a TP degree that does not divide the heads, the KV heads (unless kv_heads < tp and
// tp % kv_heads == 0: then KV heads are replicated), the intermediate sizes or the vocabulary.
// The error says which and why.
Status check_tp_degree(const TpConfig& cfg, int tp);

enum class SplitKind {
  replicate,  // every rank holds the whole tensor
  rank0,      // rank 0 holds it, the others zeros of the same shape
  split,      // cut along `dim` into `chunks` equal pieces; rank r holds piece r * chunks / tp
};
const char* split_kind_name(SplitKind k);
std::optional<SplitKind> split_kind_from_name(std::string_view s);

// Consecutive rows of a fused tensor split on their own (q, k, v of W_pack; gate, up of gate_up_proj).
struct RowSection {
  int64_t rows = 0;    // divisible by chunks
  int64_t chunks = 1;  // divides tp
  bool operator==(const RowSection& o) const { return rows == o.rows && chunks == o.chunks; }
};

// Rows [first, first + count) of a source's dim 0.
struct RowRange {
  int64_t first = 0, count = 0;
};

struct SplitRule {
  SplitKind kind = SplitKind::replicate;
  int dim = 0;         // split only: 0 or 1
  int64_t chunks = 1;  // split only: divides tp (sectioned: tp, the largest section count)
  std::vector<RowSection> sections;  // split on dim 0 by sections (empty: dim `dim` in `chunks`)
  std::string why;     // e.g. "column-parallel q_proj", for messages and --dry-run

  // The chunk rank r holds (split only, without sections).
  int64_t chunk_of(int rank, int tp) const { return static_cast<int64_t>(rank) * chunks / tp; }
  // The rows of dim 0 rank r holds, in the order it stores them (a dim-0 split; one range per
  // section when sectioned). dim0: the source's dim 0.
  std::vector<RowRange> rows_of(int rank, int tp, int64_t dim0) const;
  // Rows a rank holds of a dim-0 split.
  int64_t piece_rows(int64_t dim0) const;
};

struct TpOptions {
  bool replicate_embeddings = false;  // keep model.embed_tokens whole on every rank
};

// The rule for one tensor. Errors: a tensor under a linear whose suffix has no known rule, a
// split dimension the shape lacks or that does not divide into the chunks (naming the tensor).
Result<SplitRule> split_rule(std::string_view name, const std::vector<int64_t>& shape, const TpConfig& cfg, int tp,
                             const TpOptions& options = {});

// Where a tensor goes when packing: the packed name, its place among the group's members, and
// whether it is a per-tensor parameter the members share (stored once).
struct PackTarget {
  std::string packed;  // e.g. "model.layers.0.self_attn.query_key_value.weight"
  std::string group;   // packed linear prefix, e.g. "model.layers.0.self_attn.query_key_value"
  int member = 0;      // 0..members-1 in packing order (q, k, v / gate, up)
  int members = 0;     // 3 or 2
  bool shared = false;  // input_scale / input_offset
  // The other members' names of the same suffix, in packing order (including this one).
  std::vector<std::string> member_names;
};
std::optional<PackTarget> pack_target(std::string_view name);

// Whether a linear module (the last component of its prefix) is row-parallel in this family
// (o_proj, down_proj, experts' down / w2, chatglm's dense and dense_4h_to_h).
bool is_row_parallel_module(std::string_view module, model::Family family);

}  // namespace st
