// st-cast's library side: plan which tensors change dtype, then stream them file by file.
#include "libst/cast/cast.hpp"

#include <algorithm>
#include <cstring>

#include "libst/core/parallel.hpp"
#include "libst/core/paths.hpp"
#include "libst/format/checksum.hpp"
#include "libst/format/output.hpp"
#include "libst/format/side_files.hpp"

namespace st {
namespace {

// config.json without quantization_config, naming the target dtype.
Result<std::string> cast_config(const std::string& text, DType to, const std::string& path) {
  return output_config(text, {{"quantization_config", nullptr}}, to, path);
}

// A file's __metadata__ without what the cast makes stale: per-tensor checksums and side files.
Metadata kept_metadata(const Metadata& m) {
  Metadata out;
  for (const auto& [k, v] : m)
    if (k != kTensorChecksumKey && k.compare(0, kSideFilePrefix.size(), kSideFilePrefix) != 0 &&
        k.compare(0, kSideFileBase64Prefix.size(), kSideFileBase64Prefix) != 0)
      out[k] = v;
  return out;
}

// The tensor's values converted to `to` into out (rows in parallel).
void convert(const FloatDecoder& dec, const uint8_t* src, DType to, uint8_t* out) {
  const size_t esize = dtype_bits(to) / 8;
  const int64_t cols = dec.cols();
  const int64_t step = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(cols, 1));
  parallel_for(dec.rows(), [&](int64_t b, int64_t e) {
    std::vector<float> tmp;
    for (int64_t r0 = b; r0 < e; r0 += step) {
      const int64_t r1 = std::min(e, r0 + step);
      tmp.resize(static_cast<size_t>((r1 - r0) * cols));
      dec.rows(src, r0, r1, tmp.data());
      from_f32(to, tmp.data(), out + static_cast<size_t>(r0 * cols) * esize, tmp.size());
    }
  }, 1);
}

struct OutFile {
  std::string path, name;  // where it is written; its final name (for the index)
  std::vector<size_t> entries;
  Metadata metadata;
};

}  // namespace

std::optional<DType> cast_target(std::string_view name) {
  if (name == "bf16") return DType::BF16;
  if (name == "f16") return DType::F16;
  if (name == "f32") return DType::F32;
  return std::nullopt;
}

Result<CastPlan> plan_cast(const Checkpoint& in, DType to) {
  if (to != DType::F16 && to != DType::BF16 && to != DType::F32)
    return make_error(Errc::usage, std::string("cannot cast to ") + dtype_name(to) + " (bf16, f16 or f32)");
  if (in.layout() == Layout::parts)
    return make_error(Errc::usage, "input is split into part folders: merge it first (st-shard --merge)", in.path());
  if (in.description())
    return make_error(Errc::usage, "input is quantized (it has a quant_model_description); st-cast takes float checkpoints",
                      in.path());
  const auto& ents = in.tensors();
  const bool float32_model = std::none_of(ents.begin(), ents.end(), [](const TensorEntry& e) {
    const DType t = e.info->dtype;
    return t == DType::F16 || t == DType::BF16 || is_block_fp8(t);
  });
  CastPlan plan;
  for (const auto& e : ents) {
    const DType t = e.info->dtype;
    DType out = t;
    if (is_block_fp8(t)) {
      ST_CHECK(in.decoder(e));  // pairing, shapes and scale values
      out = to;
    } else if (t == DType::F16 || t == DType::BF16 || (float32_model && (t == DType::F32 || t == DType::F64))) {
      out = to;
    }
    plan.dtype.push_back(out);
    plan.keep.push_back(!e.is_block_scale());
  }
  plan.side_files = in.side_files();
  if (auto it = plan.side_files.find("config.json"); it != plan.side_files.end()) {
    ST_ASSIGN(it->second, cast_config(it->second, to, in.path()));
  }
  return plan;
}

Result<CastSummary> cast(const Checkpoint& in, const CastOptions& o) {
  ST_ASSIGN(const CastPlan plan, plan_cast(in, o.to));
  if (!o.output) return make_error(Errc::usage, "no output given");
  const auto& ents = in.tensors();
  const bool to_dir =
      !o.output->is_stdout() && (in.layout() == Layout::hf_single || in.layout() == Layout::hf_sharded);

  // One output file per input file (a single file or stream: one for everything).
  std::vector<OutFile> files;
  std::string dir;
  if (to_dir) {
    dir = o.output->directory();
    for (size_t f = 0; f < in.files().size(); ++f) {
      const std::string name = base_name(in.files()[f]);
      files.push_back({dir + "/" + name, name, {}, kept_metadata(in.header(f).metadata)});
    }
  } else {
    files.push_back({o.output->file(), o.output->path(), {}, kept_metadata(in.header(0).metadata)});
    for (const auto& [name, text] : plan.side_files) put_side_file(files[0].metadata, name, text);
  }
  for (size_t i = 0; i < ents.size(); ++i)
    if (plan.keep[i]) files[to_dir ? ents[i].file : 0].entries.push_back(i);

  CastSummary summary;
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::vector<uint8_t> buf;
  const size_t total = static_cast<size_t>(std::count(plan.keep.begin(), plan.keep.end(), true));
  size_t done = 0;
  for (const OutFile& f : files) {
    std::vector<TensorSpec> specs;
    for (size_t i : f.entries) specs.push_back({ents[i].name(), plan.dtype[i], ents[i].info->shape});
    ST_ASSIGN(auto writer, SafetensorsWriter::create(f.path, specs, f.metadata, WriterOptions{}));
    for (size_t i : f.entries) {
      const TensorEntry& e = ents[i];
      const ByteView v = in.data(e);
      if (plan.dtype[i] == e.info->dtype) {
        ST_CHECK(writer->write(e.name(), v.data, v.size));
      } else {
        ST_ASSIGN(const FloatDecoder dec, in.decoder(e));
        buf.resize(static_cast<size_t>(e.info->numel()) * dtype_bits(plan.dtype[i]) / 8);
        convert(dec.rounding_to(DType::F32), v.data, plan.dtype[i], buf.data());
        ST_CHECK(writer->write(e.name(), buf.data(), buf.size()));
        ++summary.converted;
        if (dec.block_scaled()) ++summary.dequantized;
      }
      in.release(e);
      summary.input_bytes += v.size;
      weight_map[e.name()] = f.name;
      if (o.progress) o.progress({"tensors", ++done, total, summary.input_bytes});
    }
    ST_CHECK(writer->finish());
    for (const auto& t : writer->tensors()) summary.output_bytes += t.nbytes();
    summary.tensors += f.entries.size();
    summary.files.push_back(to_dir ? o.output->path() + "/" + f.name : f.name);
  }
  summary.scales_dropped = plan.keep.size() - total;

  if (to_dir) {
    for (const auto& [name, text] : plan.side_files) ST_CHECK(write_file(dir + "/" + name, text));
    if (in.layout() == Layout::hf_sharded) {
      nlohmann::ordered_json index;
      index["metadata"]["total_size"] = summary.output_bytes;
      index["weight_map"] = weight_map;
      ST_CHECK(write_file(dir + "/model.safetensors.index.json", index.dump(2) + "\n"));
    }
  }
  ST_CHECK(o.output->commit());
  return summary;
}

}  // namespace st
