// Tensor-parallel split into part{r}-of-{N}/ folders and the exact merge back (see shard.hpp).
#include "libst/shard/shard.hpp"
#include "libst/core/paths.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "libst/format/checksum.hpp"
#include "libst/format/names.hpp"
#include "libst/format/parts.hpp"
#include "libst/format/output.hpp"

namespace st {
namespace {

std::string basename_of(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}


std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

uint64_t numel_of(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

// Bytes per element; 0 for sub-byte dtypes (which we cannot cut).
size_t elem_bytes(DType t) { return dtype_bits(t) % 8 == 0 ? dtype_bits(t) / 8 : 0; }

uint64_t nbytes_of(DType t, const std::vector<int64_t>& shape) {
  return (numel_of(shape) * dtype_bits(t) + 7) / 8;
}

// Row bytes of dim 0 (product of the other dims times element size).
uint64_t row_bytes(DType t, const std::vector<int64_t>& shape) {
  std::vector<int64_t> rest(shape.begin() + (shape.empty() ? 0 : 1), shape.end());
  return nbytes_of(t, rest);
}

// Copies chunk c of a tensor `full` (split along `dim` into `chunks`) into `piece`, or with
// to_full the other way: the piece into its place in `full`.
void move_chunk(const uint8_t* full, uint8_t* piece, const std::vector<int64_t>& shape, size_t esize, int dim,
                int64_t chunks, int64_t c, bool to_full) {
  uint64_t inner = esize;
  for (size_t i = static_cast<size_t>(dim) + 1; i < shape.size(); ++i) inner *= static_cast<uint64_t>(shape[i]);
  uint64_t outer = 1;
  for (int i = 0; i < dim; ++i) outer *= static_cast<uint64_t>(shape[i]);
  const uint64_t d = static_cast<uint64_t>(shape[dim]);
  const uint64_t part = d / static_cast<uint64_t>(chunks);
  const uint64_t span = part * inner;
  for (uint64_t o = 0; o < outer; ++o) {
    const uint8_t* f = full + (o * d + static_cast<uint64_t>(c) * part) * inner;
    uint8_t* p = piece + o * span;
    if (to_full) std::memcpy(const_cast<uint8_t*>(f), p, span);
    else std::memcpy(p, f, span);
  }
}

// The side files of `from` (except the description) into `dir`, each with its source's mode.
Status write_side_files(const Checkpoint& from, const std::string& dir) {
  for (const auto& [name, text] : from.side_files())
    if (name != kDescriptionFile) ST_CHECK(write_file(dir + "/" + name, text, from.side_file_mode(name)));
  return Status{};
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

// The description merge rebuilds: the top-level keys, then each input tensor in input order with
// its type (types looked up by the caller).
template <class TypeOf>
std::string rebuild_description(const Description& top, const std::vector<ShardSource>& sources, TypeOf type_of) {
  Description d;
  for (const auto& [k, v] : top.top_entries()) d.set_top(k, v);
  for (const auto& s : sources)
    if (auto t = type_of(s)) d.set_type(s.name, *t);
  return d.dump();
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
  for (const auto& e : in.tensors()) {
    ShardSource s;
    s.name = e.name();
    s.file = e.file;
    s.dtype = e.info->dtype;
    s.shape = e.info->shape;
    auto rule = split_rule(s.name, s.shape, cfg, opt.tp, opt.rules);
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

namespace {

// The bytes of one part tensor for one rank: a view into the input when it is one contiguous
// piece, else assembled in buf.
ByteView part_bytes(const Checkpoint& in, const ShardPlan& plan, const ShardOutput& o, int rank,
                    std::vector<uint8_t>& buf) {
  const uint64_t total = nbytes_of(o.dtype, o.shape);
  auto source_view = [&](size_t k) { return in.data(in.tensors()[k]); };
  if (o.pieces.size() == 1) {
    const ShardSource& s = plan.sources[o.pieces[0]];
    const ByteView v = source_view(o.pieces[0]);
    if (s.rule.kind == SplitKind::replicate || (s.rule.kind == SplitKind::rank0 && rank == 0)) return v;
    if (s.rule.kind == SplitKind::split && s.rule.dim == 0) {
      const uint64_t c = static_cast<uint64_t>(s.rule.chunk_of(rank, plan.tp));
      return ByteView{v.data + c * total, static_cast<size_t>(total)};
    }
  }
  buf.assign(total, 0);
  uint64_t off = 0;
  for (size_t k : o.pieces) {
    const ShardSource& s = plan.sources[k];
    const ByteView v = source_view(k);
    const uint64_t n = nbytes_of(s.dtype, piece_shape(s));
    if (s.rule.kind == SplitKind::replicate || (s.rule.kind == SplitKind::rank0 && rank == 0)) {
      std::memcpy(buf.data() + off, v.data, n);
    } else if (s.rule.kind == SplitKind::split) {
      move_chunk(v.data, buf.data() + off, s.shape, elem_bytes(s.dtype), s.rule.dim, s.rule.chunks,
                 s.rule.chunk_of(rank, plan.tp), false);
    }  // rank0 on another rank: zeros
    off += n;
  }
  return ByteView{buf.data(), buf.size()};
}

}  // namespace

Result<ShardSummary> shard(const Checkpoint& in, Output& out, const ShardOptions& opt) {
  ST_ASSIGN(ShardPlan plan, plan_shard(in, opt));
  if (out.is_stdout()) return make_error(Errc::usage, "parts are directories: name one, not '-'", "-");
  const std::string& dir = out.directory();

  Metadata common = part_metadata(plan.tp, plan.pack, plan.recipe_json, plan.source_json, opt.compress_metadata_above);
  if (!in.files().empty()) {
    const auto& md = in.header(0).metadata;
    if (auto it = md.find("format"); it != md.end()) common["format"] = it->second;
  }

  std::vector<TensorSpec> specs;
  for (const auto& o : plan.outputs) specs.push_back(TensorSpec{o.name, o.dtype, o.shape});
  std::vector<std::unique_ptr<SafetensorsWriter>> writers;
  for (int r = 0; r < plan.tp; ++r) {
    const std::string pdir = dir + "/" + part_name(r, plan.tp);
    ST_CHECK(make_directory(pdir));
    ST_CHECK(write_side_files(in, pdir));
    if (plan.quantized) ST_CHECK(write_file(pdir + "/" + kDescriptionFile, plan.description_text));
    Metadata md = common;
    md[kShardRankKey] = std::to_string(r);
    ST_ASSIGN(auto w, SafetensorsWriter::create(pdir + "/" + plan.weight_file, specs, md, WriterOptions{}));
    writers.push_back(std::move(w));
  }

  ShardSummary sum;
  sum.tp = plan.tp;
  sum.input_tensors = plan.sources.size();
  sum.part_tensors = plan.outputs.size();
  for (const auto& e : in.tensors()) sum.input_bytes += e.info->nbytes();
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < plan.outputs.size(); ++i) {
    const ShardOutput& o = plan.outputs[i];
    for (int r = 0; r < plan.tp; ++r) {
      const ByteView v = part_bytes(in, plan, o, r, buf);
      Status s = writers[r]->write(o.name, v.data, v.size);
      if (!s) return std::move(s.error()).in_tensor(o.name);
      sum.output_bytes += v.size;
    }
    for (size_t k : o.pieces) in.release(in.tensors()[k]);
    if (opt.progress) opt.progress({"tensors", i + 1, plan.outputs.size(), sum.output_bytes});
  }
  for (auto& w : writers) ST_CHECK(w->finish());
  ST_CHECK(out.commit());
  return sum;
}

// ---- merge ----

namespace {

}  // namespace

Result<MergeSummary> merge(const std::string& parts_dir, Output& out, const MergeOptions& opt) {
  ST_ASSIGN(auto ckpt, Checkpoint::open(parts_dir));
  if (ckpt->layout() != Layout::parts)
    return make_error(Errc::usage, "not a directory of part{r}-of-{N} folders", parts_dir);
  const auto& parts = ckpt->parts();
  const int tp = static_cast<int>(parts.size());
  std::string recipe_text, source_text;
  for (int r = 0; r < tp; ++r) {
    const Checkpoint& p = *parts[r];
    if (p.files().size() != 1) return make_error(Errc::format, "a part must hold exactly one weight file", p.path());
    const std::string file = p.files()[0];
    ST_ASSIGN(const auto record, read_part_record(p.header(0).metadata, file));
    if (!record) return make_error(Errc::format, "not written by st-shard (no st.shard.version \"1\" in __metadata__)", file);
    if (record->tp != tp)
      return make_error(Errc::format, "part says tp " + std::to_string(record->tp) + " but " + std::to_string(tp) +
                                          " parts are present", file);
    if (record->rank != r)
      return make_error(Errc::format, "part says rank " + std::to_string(record->rank) + ", expected " + std::to_string(r), file);
    if (r == 0) {
      recipe_text = record->recipe;
      source_text = record->source;
    } else if (record->recipe != recipe_text || record->source != source_text) {
      return make_error(Errc::format, "part's st.shard recipe differs from " + part_name(0, tp) + "'s", file);
    }
  }
  const std::string file0 = parts[0]->files()[0];
  ST_ASSIGN(std::vector<ShardSource> sources, parse_recipe(recipe_text, file0));
  ST_ASSIGN(ShardOrigin src, parse_origin(source_text, file0));

  // Check every recipe entry against every part, and that parts hold nothing else.
  std::map<std::string, size_t> used;
  for (const auto& s : sources) {
    if (s.file >= src.files.size()) return make_error(Errc::format, "recipe names a file index past the list", file0, s.name);
    if (s.rule.kind == SplitKind::split && tp % s.rule.chunks != 0)
      return make_error(Errc::format, "recipe's chunk count does not divide the part count", file0, s.name);
    for (int r = 0; r < tp; ++r) {
      const TensorEntry* e = parts[r]->find(s.into);
      const std::string& f = parts[r]->files()[0];
      if (!e) return make_error(Errc::format, "part has no tensor '" + s.into + "' for '" + s.name + "'", f);
      if (!entry_fits(s, e->info->dtype, e->info->shape))
        return make_error(Errc::format, "dtype, shape or row offset does not match the recipe's entry for '" + s.name + "'",
                          f, s.into);
    }
    used[s.into]++;
  }
  for (int r = 0; r < tp; ++r)
    for (const auto& e : parts[r]->tensors())
      if (!used.count(e.name()))
        return make_error(Errc::format, "part tensor is not in the recipe", parts[r]->files()[0], e.name());

  // Output.
  const bool single = src.layout == "file" || src.layout == "stream";
  if (!single && out.is_stdout())
    return make_error(Errc::usage, "the input was a " + src.layout + " directory: merge it to a directory, not '-'", "-");
  if (single && src.files.size() != 1) return make_error(Errc::format, "a single-file source must list one file", file0);
  const std::string dir = single ? std::string() : out.directory();

  MergeSummary sum;
  sum.tp = tp;
  sum.layout = src.layout;
  std::vector<uint8_t> buf;
  size_t done = 0;
  auto region = [&](int r, const ShardSource& s, uint64_t n) {
    const TensorEntry* e = parts[r]->find(s.into);
    const ByteView v = parts[r]->data(*e);
    return ByteView{v.data + static_cast<uint64_t>(s.at) * row_bytes(s.dtype, e->info->shape), static_cast<size_t>(n)};
  };
  for (size_t f = 0; f < src.files.size(); ++f) {
    std::vector<TensorSpec> specs;
    for (const auto& s : sources)
      if (s.file == f) specs.push_back(TensorSpec{s.name, s.dtype, s.shape});
    const Metadata& md = src.files[f].metadata;
    const std::string path = single ? out.file() : dir + "/" + src.files[f].name;
    // Checksums exactly when the input file had them: the same bytes give the same st.xxh3 value
    // and FILE.xxh3, so the merged file is the input's, byte for byte, either way.
    WriterOptions wo;
    wo.checksums = md.count(kTensorChecksumKey) > 0;
    ST_ASSIGN(auto w, SafetensorsWriter::create(path, specs, md, wo));
    for (const auto& s : sources) {
      if (s.file != f) continue;
      const uint64_t total = nbytes_of(s.dtype, s.shape);
      const uint64_t piece = nbytes_of(s.dtype, piece_shape(s));
      ByteView v;
      if (s.rule.kind == SplitKind::split) {
        buf.resize(total);
        for (int64_t c = 0; c < s.rule.chunks; ++c) {
          const int r0 = static_cast<int>(c * tp / s.rule.chunks);
          const ByteView p = region(r0, s, piece);
          for (int r = r0 + 1; r < static_cast<int>((c + 1) * tp / s.rule.chunks); ++r)
            if (std::memcmp(region(r, s, piece).data, p.data, piece) != 0)
              return make_error(Errc::format, "ranks " + std::to_string(r0) + " and " + std::to_string(r) +
                                                  " disagree on a replicated KV-head piece", parts[r]->files()[0], s.name);
          move_chunk(buf.data(), const_cast<uint8_t*>(p.data), s.shape, elem_bytes(s.dtype), s.rule.dim, s.rule.chunks, c,
                     true);
        }
        v = ByteView{buf.data(), buf.size()};
      } else {
        v = region(0, s, total);
        for (int r = 1; r < tp; ++r) {
          const ByteView o = region(r, s, total);
          if (s.rule.kind == SplitKind::replicate && std::memcmp(o.data, v.data, total) != 0)
            return make_error(Errc::format, "replicated tensor differs from " + part_name(0, tp) + "'s",
                              parts[r]->files()[0], s.name);
          if (s.rule.kind == SplitKind::rank0 &&
              std::any_of(o.data, o.data + total, [](uint8_t b) { return b != 0; }))
            return make_error(Errc::format, "rank-0-only tensor is not zero on this rank", parts[r]->files()[0], s.name);
        }
      }
      Status st = w->write(s.name, v.data, v.size);
      if (!st) return std::move(st.error()).in_tensor(s.name);
      sum.bytes += v.size;
      ++sum.tensors;
      for (int r = 0; r < tp; ++r) parts[r]->release(*parts[r]->find(s.into));
      if (opt.progress) opt.progress({"tensors merged", ++done, sources.size(), sum.bytes});
    }
    ST_CHECK(w->finish());
  }

  if (!single) {
    const Checkpoint& p0 = *parts[0];
    ST_CHECK(write_side_files(p0, dir));
    for (const auto& [name, text] : src.extra) ST_CHECK(write_file(dir + "/" + name, text));
    const std::string desc_path = dir + "/" + kDescriptionFile;
    if (src.description) {
      ST_CHECK(write_file(desc_path, *src.description));
    } else if (p0.description()) {
      const Description& pd = *p0.description();
      ST_CHECK(write_file(desc_path,
                          rebuild_description(pd, sources, [&](const ShardSource& s) { return pd.type_of(s.into); })));
    }
  }
  ST_CHECK(out.commit());
  return sum;
}

Result<std::unique_ptr<Checkpoint>> open_merged(const std::string& parts_dir, const NoteFn& note) {
  ST_ASSIGN(auto scratch, ScratchDir::create("st-merged", note));
  // A file or stream source merges into the file SCRATCH/merged, a directory source into the
  // directory SCRATCH/merged; Checkpoint::open takes either.
  const std::string merged = scratch->path() + "/merged";
  OutputRequest request;
  request.path = merged;
  request.inputs = {parts_dir};
  ST_ASSIGN(auto out, open_output(request));
  ST_CHECK(merge(parts_dir, *out, MergeOptions{}));
  return Checkpoint::open(merged);
}

}  // namespace st
