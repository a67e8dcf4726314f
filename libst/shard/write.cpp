// Writing the parts of a planned split: every part's weight file in one streaming pass over the
// input, one part tensor at a time per rank (see shard.hpp).
#include <cstring>

#include "libst/format/output.hpp"
#include "libst/format/parts.hpp"
#include "libst/shard/internal.hpp"
#include "libst/shard/shard.hpp"

namespace st {

using namespace shard_detail;

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
    if (s.rule.kind == SplitKind::split && s.rule.dim == 0 && s.rule.sections.empty()) {
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
    } else if (s.rule.kind == SplitKind::split && !s.rule.sections.empty()) {  // a fused tensor: each part's rows
      const uint64_t rb = row_bytes(s.dtype, s.shape);
      uint64_t at = off;
      for (const RowRange& r : s.rule.rows_of(rank, plan.tp, s.shape[0])) {
        std::memcpy(buf.data() + at, v.data + static_cast<uint64_t>(r.first) * rb, static_cast<uint64_t>(r.count) * rb);
        at += static_cast<uint64_t>(r.count) * rb;
      }
    } else if (s.rule.kind == SplitKind::split) {
      gather_chunk(v.data, buf.data() + off, s.shape, elem_bytes(s.dtype), s.rule.dim, s.rule.chunks,
                   s.rule.chunk_of(rank, plan.tp));
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
  for (const auto& [key, value] : carried_metadata(in)) common.emplace(key, value);

  std::vector<TensorSpec> specs;
  for (const auto& o : plan.outputs) specs.push_back(TensorSpec{o.name, o.dtype, o.shape});
  // MindIE reads config.json and the tokenizer from the model root (models/base/router.py), the
  // weights of W8A8SC from part{rank}-of-{world}/: the side files go to both.
  ST_CHECK(write_side_files(in, dir));
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

}  // namespace st
