// Planning a tensor-parallel split: which part tensor every input tensor goes into, packed
// groups, the parts' description and the recipe that lets merge() undo it (see shard.hpp).
#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "libst/core/paths.hpp"
#include "libst/shard/internal.hpp"
#include "libst/shard/shard.hpp"

namespace st {

using namespace shard_detail;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Index files beside the weights (model.safetensors.index.json and the like), by name.
std::map<std::string, std::string> index_files(const Checkpoint& in) {
  std::map<std::string, std::string> out;
  if (in.layout() != Layout::hf_sharded && in.layout() != Layout::quantized) return out;
  if (DIR* d = opendir(in.path().c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      const std::string suffix = ".safetensors.index.json";
      if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) {
        auto t = read_file_text(in.path() + "/" + n);
        if (t) out[n] = *t;
      }
    }
    closedir(d);
  }
  return out;
}

// An FP8 weight splits only along its 128x128 scale blocks: a rank's piece that ends inside a
// block would need scales the checkpoint does not have.
Status check_block_split(const Checkpoint& in, const TensorEntry& w, const TpConfig& cfg, const ShardOptions& opt,
                         const TpOptions& rules) {
  auto rule = split_rule(w.name(), w.info->shape, cfg, opt.tp, rules);
  if (!rule || rule->kind != SplitKind::split) return Status{};  // the weight's own rule reports
  const int64_t n = w.info->shape[rule->dim], piece = n / rule->chunks;
  if (piece % kFp8Block == 0) return Status{};
  return make_error(Errc::unsupported,
                    "tensor parallelism " + std::to_string(opt.tp) + " cuts dimension " + std::to_string(rule->dim) +
                        " (" + std::to_string(n) + ") of this FP8 weight into pieces of " + std::to_string(piece) +
                        ", inside its 128x128 scale blocks (cast it first: st-cast --to bf16)",
                    in.path(), w.name());
}

Status plan_packing(const Checkpoint& in, const ShardOptions& opt, std::vector<ShardSource>& src,
                    std::vector<std::optional<PackTarget>>& packs) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < src.size(); ++i) index.emplace(src[i].name, i);
  const auto& desc = in.description();
  auto type_of = [&](const std::string& n) { return desc ? desc->type_of(n) : std::nullopt; };
  packs.assign(src.size(), std::nullopt);
  if (!opt.pack) return Status{};
  for (size_t i = 0; i < src.size(); ++i) {
    auto t = pack_target(src[i].name);
    if (!t) continue;
    std::vector<size_t> present;
    std::string missing;
    for (const auto& m : t->member_names) {
      auto it = index.find(m);
      if (it != index.end()) present.push_back(it->second);
      else missing = m;
    }
    if (present.size() == 1) continue;  // a lone projection (MLA q_proj): keep its name
    auto fail = [&](const std::string& why) {
      return make_error(Errc::unsupported, "cannot pack into '" + t->packed + "': " + why + " (use --no-pack)",
                        in.path(), src[i].name);
    };
    if (present.size() != t->member_names.size()) return fail("fused group has no '" + missing + "'");
    const ShardSource& first = src[present[0]];
    for (size_t m : present) {
      const ShardSource& s = src[m];
      if (s.dtype != first.dtype) return fail("members differ in dtype");
      if (type_of(s.name) != type_of(first.name)) return fail("members differ in quantization type");
      if (t->shared) {
        if (s.shape != first.shape) return fail("shared parameters differ in shape");
        const ByteView a = in.data(*in.find(s.name)), b = in.data(*in.find(first.name));
        if (a.size != b.size || std::memcmp(a.data, b.data, a.size) != 0)
          return fail("members have different '" + basename_of(s.name) + "' values");
      } else {
        if (s.shape.empty() || s.shape.size() != first.shape.size() ||
            !std::equal(s.shape.begin() + 1, s.shape.end(), first.shape.begin() + 1))
          return fail("members differ in shape beyond dim 0");
        if (s.rule.kind == SplitKind::split && s.rule.dim != 0) return fail("member is not split by rows");
        if (s.rule.kind == SplitKind::rank0) return fail("member is rank-0 only");
        if (is_block_fp8(s.dtype) && m != present.back() && piece_shape(s)[0] % kFp8Block != 0)
          return fail("FP8 member '" + s.name + "' has " + std::to_string(piece_shape(s)[0]) +
                      " rows per rank, ending inside a 128-row block of its scales");
      }
    }
    packs[i] = std::move(t);
  }
  return Status{};
}

}  // namespace

Result<ShardPlan> plan_shard(const Checkpoint& in, const ShardOptions& opt) {
  if (in.layout() == Layout::parts)
    return make_error(Errc::usage, "input is already split into part folders (merge it first with --merge)", in.path());
  const auto& desc = in.description();
  if (desc)
    for (const auto& [name, type] : desc->tensor_entries())
      if (type == "W8A8SC")
        return make_error(Errc::unsupported, "W8A8SC weights are compressed per rank and cannot be re-split; decompress them first",
                          in.path(), name);
  ST_ASSIGN(const model::ModelConfig model, model::read_config(in));
  const TpConfig cfg = TpConfig::of(model);
  {
    Status s = check_tp_degree(cfg, opt.tp);
    if (!s) return std::move(s.error()).in_file(in.path());
  }

  ShardPlan plan;
  plan.tp = opt.tp;
  plan.pack = opt.pack;
  plan.quantized = desc.has_value();
  // W8A8S parts are on their way to W8A8SC, whose MindIE model classes read embed_tokens whole
  // (models/llama/modeling_llama.py FlashLlamaModel, qwen2/modeling_qwen2.py: TensorEmbedding).
  TpOptions rules;
  rules.replicate_embeddings = opt.replicate_embeddings.value_or(desc && desc->model_quant_type() == "W8A8S");
  for (const auto& e : in.tensors()) {
    if (const TensorEntry* w = e.is_block_scale() ? e.scales : e.scale_inv ? &e : nullptr)
      ST_CHECK(check_block_split(in, *w, cfg, opt, rules));
    ShardSource s;
    s.name = e.name();
    s.file = e.file;
    s.dtype = e.info->dtype;
    s.shape = e.info->shape;
    auto rule = split_rule(s.name, s.shape, cfg, opt.tp, rules);
    if (!rule) return std::move(rule.error()).in_file(in.path()).in_tensor(s.name);
    s.rule = std::move(rule.value());
    if (s.rule.kind == SplitKind::split && elem_bytes(s.dtype) == 0)
      return make_error(Errc::unsupported, std::string("cannot split a tensor of sub-byte dtype ") + dtype_name(s.dtype),
                        in.path(), s.name);
    s.into = s.name;
    plan.sources.push_back(std::move(s));
  }

  std::vector<std::optional<PackTarget>> packs;
  ST_CHECK(plan_packing(in, opt, plan.sources, packs));

  // Part tensors in input order, a packed one where its first member appears.
  std::unordered_map<std::string, size_t> index, out_index;
  for (size_t i = 0; i < plan.sources.size(); ++i) index.emplace(plan.sources[i].name, i);
  auto type_of = [&](const std::string& n) -> std::string { return desc ? desc->type_of(n).value_or("") : ""; };
  for (size_t i = 0; i < plan.sources.size(); ++i) {
    ShardSource& s = plan.sources[i];
    const std::string target = packs[i] ? packs[i]->packed : s.name;
    if (out_index.count(target)) continue;
    ShardOutput o;
    o.name = target;
    o.dtype = s.dtype;
    o.type = type_of(s.name);
    if (!packs[i]) {
      o.pieces = {i};
      o.shape = piece_shape(s);
    } else if (packs[i]->shared) {
      const size_t first = index.at(packs[i]->member_names[0]);
      o.pieces = {first};
      o.shape = piece_shape(plan.sources[first]);
      for (const auto& m : packs[i]->member_names) {
        ShardSource& ms = plan.sources[index.at(m)];
        ms.into = target;
        ms.at = 0;
        ms.stored = (m == packs[i]->member_names[0]);
      }
    } else {
      int64_t rows = 0;
      for (const auto& m : packs[i]->member_names) {
        const size_t k = index.at(m);
        ShardSource& ms = plan.sources[k];
        ms.into = target;
        ms.at = rows;
        rows += piece_shape(ms)[0];
        o.pieces.push_back(k);
      }
      o.shape = piece_shape(plan.sources[o.pieces[0]]);
      o.shape[0] = rows;
    }
    out_index.emplace(target, plan.outputs.size());
    plan.outputs.push_back(std::move(o));
  }

  // Weight file name inside each part.
  if (plan.quantized) {
    if (in.layout() == Layout::quantized && in.files().size() == 1) plan.weight_file = basename_of(in.files()[0]);
    else plan.weight_file = "quant_model_weight_" + lower(desc->model_quant_type()) + ".safetensors";
    Description pd;
    for (const auto& [k, v] : desc->top_entries()) pd.set_top(k, v);
    for (const auto& o : plan.outputs)
      if (!o.type.empty()) pd.set_type(o.name, o.type);
    plan.description_text = pd.dump();
  } else {
    plan.weight_file = "model.safetensors";
  }

  // What merge needs.
  plan.recipe_json = recipe_json(plan.sources);
  ShardOrigin origin;
  origin.layout = layout_name(in.layout());
  for (size_t f = 0; f < in.files().size(); ++f) origin.files.push_back({basename_of(in.files()[f]), in.header(f).metadata});
  origin.extra = index_files(in);
  if (desc && in.layout() == Layout::quantized) {
    const std::string original = in.side_files().at(kDescriptionFile);
    const std::string rebuilt =
        rebuild_description(*desc, plan.sources, [&](const ShardSource& s) { return desc->type_of(s.name); });
    if (rebuilt != original) origin.description = original;
  }
  plan.source_json = origin_json(origin);
  return plan;
}

}  // namespace st
