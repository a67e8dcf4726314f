// The exact merge of st-shard's parts back into the checkpoint they were split from, driven by
// the recipe every part carries (libst/shard/recipe.hpp), and opening parts as that checkpoint.
#include <algorithm>
#include <cstring>
#include <map>

#include "libst/format/checksum.hpp"
#include "libst/format/output.hpp"
#include "libst/format/parts.hpp"
#include "libst/shard/internal.hpp"
#include "libst/shard/shard.hpp"

namespace st {

using namespace shard_detail;

namespace {

// The parts of a valid part set with the one recipe they all carry, read and checked.
struct MergeInput {
  const std::vector<std::unique_ptr<Checkpoint>>& parts;
  int tp = 1;
  std::string file0;  // part 0's weight file, named by errors about the recipe
  std::vector<ShardSource> sources;
  ShardOrigin origin;
};

// Every part holds one weight file whose st.shard record has its rank, the part count and the
// same recipe as part 0's.
Result<MergeInput> read_recipe(const Checkpoint& ckpt) {
  MergeInput in{ckpt.parts(), static_cast<int>(ckpt.parts().size()), {}, {}, {}};
  std::string recipe_text, source_text;
  for (int r = 0; r < in.tp; ++r) {
    const Checkpoint& p = *in.parts[r];
    if (p.files().size() != 1) return make_error(Errc::format, "a part must hold exactly one weight file", p.path());
    const std::string file = p.files()[0];
    ST_ASSIGN(const auto record, read_part_record(p.header(0).metadata, file));
    if (!record) return make_error(Errc::format, "not written by st-shard (no st.shard.version \"1\" in __metadata__)", file);
    if (record->tp != in.tp)
      return make_error(Errc::format, "part says tp " + std::to_string(record->tp) + " but " + std::to_string(in.tp) +
                                          " parts are present", file);
    if (record->rank != r)
      return make_error(Errc::format, "part says rank " + std::to_string(record->rank) + ", expected " + std::to_string(r), file);
    if (r == 0) {
      recipe_text = record->recipe;
      source_text = record->source;
    } else if (record->recipe != recipe_text || record->source != source_text) {
      return make_error(Errc::format, "part's st.shard recipe differs from " + part_name(0, in.tp) + "'s", file);
    }
  }
  in.file0 = in.parts[0]->files()[0];
  ST_ASSIGN(in.sources, parse_recipe(recipe_text, in.file0));
  ST_ASSIGN(in.origin, parse_origin(source_text, in.file0));
  return in;
}

// Every recipe entry lies inside its part tensor on every rank, and the parts hold nothing else:
// after this, every offset merge computes stays inside a mapping.
Status check_entries(const MergeInput& in) {
  std::map<std::string, size_t> used;
  for (const auto& s : in.sources) {
    if (s.file >= in.origin.files.size())
      return make_error(Errc::format, "recipe names a file index past the list", in.file0, s.name);
    if (s.rule.kind == SplitKind::split && in.tp % s.rule.chunks != 0)
      return make_error(Errc::format, "recipe's chunk count does not divide the part count", in.file0, s.name);
    for (int r = 0; r < in.tp; ++r) {
      const TensorEntry* e = in.parts[r]->find(s.into);
      const std::string& f = in.parts[r]->files()[0];
      if (!e) return make_error(Errc::format, "part has no tensor '" + s.into + "' for '" + s.name + "'", f);
      if (!entry_fits(s, e->info->dtype, e->info->shape))
        return make_error(Errc::format, "dtype, shape or row offset does not match the recipe's entry for '" + s.name + "'",
                          f, s.into);
    }
    used[s.into]++;
  }
  for (int r = 0; r < in.tp; ++r)
    for (const auto& e : in.parts[r]->tensors())
      if (!used.count(e.name()))
        return make_error(Errc::format, "part tensor is not in the recipe", in.parts[r]->files()[0], e.name());
  return Status{};
}

// n bytes of source s inside rank r's part tensor (check_entries made them in bounds).
ByteView region(const MergeInput& in, int r, const ShardSource& s, uint64_t n) {
  const TensorEntry* e = in.parts[r]->find(s.into);
  const ByteView v = in.parts[r]->data(*e);
  return ByteView{v.data + static_cast<uint64_t>(s.at) * row_bytes(s.dtype, e->info->shape), static_cast<size_t>(n)};
}

// A fused tensor cut by sections (tensor_parallel.hpp): each rank's row ranges go to their place;
// ranks sharing a range (replicated KV heads) must agree on it.
Result<ByteView> merged_sections(const MergeInput& in, const ShardSource& s, std::vector<uint8_t>& buf) {
  buf.resize(nbytes_of(s.dtype, s.shape));
  const uint64_t rb = row_bytes(s.dtype, s.shape), piece = nbytes_of(s.dtype, piece_shape(s));
  std::map<int64_t, int> placed;  // first row -> the rank that placed the range
  for (int r = 0; r < in.tp; ++r) {
    const uint8_t* p = region(in, r, s, piece).data;
    for (const RowRange& rr : s.rule.rows_of(r, in.tp, s.shape[0])) {
      uint8_t* dst = buf.data() + static_cast<uint64_t>(rr.first) * rb;
      const size_t n = static_cast<size_t>(static_cast<uint64_t>(rr.count) * rb);
      const auto [it, fresh] = placed.emplace(rr.first, r);
      if (fresh) std::memcpy(dst, p, n);
      else if (std::memcmp(dst, p, n) != 0)
        return make_error(Errc::format, "ranks " + std::to_string(it->second) + " and " + std::to_string(r) +
                                            " disagree on a replicated KV-head piece", in.parts[r]->files()[0], s.name);
      p += n;
    }
  }
  return ByteView{buf.data(), buf.size()};
}

// One source tensor put back together from the parts (in buf when it was split), checking that
// ranks holding copies agree and that rank-0-only tensors are zero elsewhere.
Result<ByteView> merged_tensor(const MergeInput& in, const ShardSource& s, std::vector<uint8_t>& buf) {
  const int tp = in.tp;
  if (s.rule.kind == SplitKind::split && !s.rule.sections.empty()) return merged_sections(in, s, buf);
  if (s.rule.kind == SplitKind::split) {
    const uint64_t piece = nbytes_of(s.dtype, piece_shape(s));
    buf.resize(nbytes_of(s.dtype, s.shape));
    for (int64_t c = 0; c < s.rule.chunks; ++c) {
      const int r0 = static_cast<int>(c * tp / s.rule.chunks);
      const ByteView p = region(in, r0, s, piece);
      for (int r = r0 + 1; r < static_cast<int>((c + 1) * tp / s.rule.chunks); ++r)
        if (std::memcmp(region(in, r, s, piece).data, p.data, piece) != 0)
          return make_error(Errc::format, "ranks " + std::to_string(r0) + " and " + std::to_string(r) +
                                              " disagree on a replicated KV-head piece", in.parts[r]->files()[0], s.name);
      scatter_chunk(p.data, buf.data(), s.shape, elem_bytes(s.dtype), s.rule.dim, s.rule.chunks, c);
    }
    return ByteView{buf.data(), buf.size()};
  }
  const uint64_t total = nbytes_of(s.dtype, s.shape);
  const ByteView v = region(in, 0, s, total);
  for (int r = 1; r < tp; ++r) {
    const ByteView o = region(in, r, s, total);
    if (s.rule.kind == SplitKind::replicate && std::memcmp(o.data, v.data, total) != 0)
      return make_error(Errc::format, "replicated tensor differs from " + part_name(0, tp) + "'s", in.parts[r]->files()[0],
                        s.name);
    if (s.rule.kind == SplitKind::rank0 && std::any_of(o.data, o.data + total, [](uint8_t b) { return b != 0; }))
      return make_error(Errc::format, "rank-0-only tensor is not zero on this rank", in.parts[r]->files()[0], s.name);
  }
  return v;
}

// Input file f of the source, written to path tensor by tensor.
Status write_merged_file(const MergeInput& in, size_t f, const std::string& path, const MergeOptions& opt,
                         MergeSummary& sum) {
  std::vector<TensorSpec> specs;
  for (const auto& s : in.sources)
    if (s.file == f) specs.push_back(TensorSpec{s.name, s.dtype, s.shape});
  const Metadata& md = in.origin.files[f].metadata;
  // Checksums exactly when the input file had them: the same bytes give the same st.xxh3 value
  // and FILE.xxh3, so the merged file is the input's, byte for byte, either way.
  WriterOptions wo;
  wo.checksums = md.count(kTensorChecksumKey) > 0;
  wo.order = TensorOrder::planned;  // the input's own layout, whoever wrote it
  ST_ASSIGN(auto w, SafetensorsWriter::create(path, specs, md, wo));
  std::vector<uint8_t> buf;
  for (const auto& s : in.sources) {
    if (s.file != f) continue;
    ST_ASSIGN(const ByteView v, merged_tensor(in, s, buf));
    Status st = w->write(s.name, v.data, v.size);
    if (!st) return std::move(st.error()).in_tensor(s.name);
    sum.bytes += v.size;
    ++sum.tensors;
    for (int r = 0; r < in.tp; ++r) in.parts[r]->release(*in.parts[r]->find(s.into));
    if (opt.progress) opt.progress({"tensors merged", sum.tensors, in.sources.size(), sum.bytes});
  }
  return w->finish();
}

// A directory source's other files: side files, the input's index files, the description.
Status write_directory_files(const MergeInput& in, const std::string& dir) {
  const Checkpoint& p0 = *in.parts[0];
  ST_CHECK(write_side_files(p0, dir));
  for (const auto& [name, text] : in.origin.extra) ST_CHECK(write_file(dir + "/" + name, text));
  const std::string desc_path = dir + "/" + kDescriptionFile;
  if (in.origin.description) return write_file(desc_path, *in.origin.description);
  if (!p0.description()) return Status{};
  const Description& pd = *p0.description();
  return write_file(desc_path,
                    rebuild_description(pd, in.sources, [&](const ShardSource& s) { return pd.type_of(s.into); }));
}

}  // namespace

Result<MergeSummary> merge(const std::string& parts_dir, Output& out, const MergeOptions& opt) {
  ST_ASSIGN(auto ckpt, Checkpoint::open(parts_dir));
  if (ckpt->layout() != Layout::parts)
    return make_error(Errc::usage, "not a directory of part{r}-of-{N} folders", parts_dir);
  ST_ASSIGN(const MergeInput in, read_recipe(*ckpt));
  ST_CHECK(check_entries(in));
  const ShardOrigin& src = in.origin;
  const bool single = src.layout == "file" || src.layout == "stream";
  if (!single && out.is_stdout())
    return make_error(Errc::usage, "the input was a " + src.layout + " directory: merge it to a directory, not '-'", "-");
  if (single && src.files.size() != 1) return make_error(Errc::format, "a single-file source must list one file", in.file0);
  const std::string dir = single ? std::string() : out.directory();

  MergeSummary sum;
  sum.tp = in.tp;
  sum.layout = src.layout;
  for (size_t f = 0; f < src.files.size(); ++f)  // file names are plain (parse_origin)
    ST_CHECK(write_merged_file(in, f, single ? out.file() : dir + "/" + src.files[f].name, opt, sum));
  if (!single) ST_CHECK(write_directory_files(in, dir));
  ST_CHECK(out.commit());
  return sum;
}

Result<std::unique_ptr<Checkpoint>> open_merged(const std::string& parts_dir, const WarnFn& note) {
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
