// W8A8S <-> W8A8SC checkpoint directories, part by part (see compress.hpp).
#include "libst/w8a8sc/compress.hpp"
#include "libst/core/paths.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>

#include "libst/format/checkpoint.hpp"
#include "libst/format/checksum.hpp"
#include "libst/format/description.hpp"
#include "libst/format/output.hpp"
#include "libst/format/parts.hpp"
#include "libst/format/safetensors.hpp"
#include "libst/format/side_files.hpp"

namespace st::w8a8sc {
namespace {

namespace fs = std::filesystem;

std::string strip_suffix(const std::string& s, const std::string& suffix) { return s.substr(0, s.size() - suffix.size()); }

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// config.json's "quantize" value (MindIE's loader reads it) changes from `from_q` to `to_q`;
// only that value's text is replaced, so the two directions are exact inverses.
std::string retag_config(const std::string& text, const char* from_q, const char* to_q) {
  static const std::regex re(R"re(("quantize"\s*:\s*)"([A-Za-z0-9_]*)")re");
  std::smatch m;
  if (!std::regex_search(text, m, re) || m[2] != from_q) return text;
  return m.prefix().str() + m[1].str() + "\"" + to_q + "\"" + m.suffix().str();
}

// Copies the side files of `from` to `to` (is_side_file_name), except the description (which the
// caller writes); config.json is retagged (see retag_config).
Status copy_side_files(const std::string& from, const std::string& to, const char* from_q, const char* to_q) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    if (name == kDescriptionFile || !is_side_file_name(name)) continue;
    if (name == "config.json") {
      ST_ASSIGN(const std::string text, read_file_text(entry.path().string()));
      ST_CHECK(write_file(to + "/" + name, retag_config(text, from_q, to_q), file_mode(entry.path().string())));
      continue;
    }
    ST_CHECK(copy_file(entry.path().string(), to + "/" + name));
  }
  if (ec) return make_error(Errc::io, "cannot list directory: " + ec.message(), from);
  return Status{};
}

// Opens one quantized directory and checks its model_quant_type.
Result<std::unique_ptr<Checkpoint>> open_part(const std::string& dir, const char* want_type) {
  ST_ASSIGN(auto ck, Checkpoint::open(dir));
  if (ck->layout() != Layout::quantized || !ck->description())
    return make_error(Errc::format, std::string("not a quantized directory (expected ") + want_type +
                                        " weights and quant_model_description.json)", dir);
  const std::string mqt = ck->description()->model_quant_type();
  if (mqt != want_type)
    return make_error(Errc::format, std::string("model_quant_type is '") + mqt + "', expected '" + want_type + "'",
                      dir + "/" + kDescriptionFile);
  if (ck->files().size() != 1)
    return make_error(Errc::unsupported, "weights split over " + std::to_string(ck->files().size()) +
                                             " files; st-compress handles one weight file per part", dir);
  return ck;
}

WriterOptions writer_options(bool checksums) {
  WriterOptions o;
  o.checksums = checksums;
  return o;
}

// The float dtype of the model a W8A8S checkpoint came from: config.json's torch_dtype (or dtype),
// else its input_scale's dtype (the model dtype, w8a8.hpp).
std::optional<DType> model_dtype(const Checkpoint& ck) {
  if (auto d = config_dtype(ck.config())) return d;
  for (const auto& e : ck.tensors())
    if (ends_with(e.name(), ".input_scale")) return e.info->dtype;
  return std::nullopt;
}

// A single W8A8S directory compressed into part0-of-1/ says so, for -d to restore it flat.
constexpr const char* kFlatSourceKey = "st.w8a8sc.flat_source";

Status compress_part(const std::string& in_dir, const std::string& out_dir, const std::string& part,
                     const DirOptions& opt, DirSummary& sum) {
  ST_ASSIGN(auto ck, open_part(in_dir, "W8A8S"));
  // MindIE-LLM common_op_builders/linear/atb_quant_linear_common_op_builder.py is_match: no W8A8SC
  // linear for a bfloat16 model.
  if (model_dtype(*ck) == DType::BF16 && !opt.allow_bf16)
    return make_error(Errc::unsupported,
                      "a bfloat16 model: MindIE's W8A8SC linear does not take bf16 (quantize the float16 model, or "
                      "--allow-bf16 to write it anyway)", in_dir);
  const Description& desc = *ck->description();
  const std::string file = ck->files()[0];
  struct Item {
    const TensorEntry* e;
    std::unique_ptr<Compressed> c;  // set for a compressed weight
  };
  std::vector<Item> items;
  std::vector<TensorSpec> plan;
  std::set<std::string> names;
  for (const auto& e : ck->tensors()) names.insert(e.name());
  for (const auto& e : ck->tensors()) {
    const auto type = desc.type_of(e.name());
    if (!type) return make_error(Errc::format, "tensor is not in quant_model_description.json", file, e.name());
    Item it{&e, nullptr};
    if (*type == "W8A8S" && ends_with(e.name(), ".weight")) {
      const TensorInfo& t = *e.info;
      if (t.dtype != DType::I8 || t.shape.size() != 2)
        return make_error(Errc::format, std::string("a W8A8S weight must be I8 [n, k], found ") + dtype_name(t.dtype) + " " +
                                            shape_str(t.shape), file, e.name());
      const std::string prefix = strip_suffix(e.name(), ".weight");
      for (const char* s : {".index", ".info"})
        if (names.count(prefix + s))
          return make_error(Errc::format, std::string("W8A8S checkpoint already holds '") + prefix + s + "'", file, e.name());
      const ByteView v = ck->data(e);
      auto c = compress(reinterpret_cast<const int8_t*>(v.data), t.shape[0], t.shape[1], opt.codec);
      ck->release(e);
      if (!c) return std::move(c.error().in_file(file).in_tensor(e.name()));
      it.c = std::make_unique<Compressed>(std::move(c.value()));
      plan.push_back({e.name(), DType::I8, {static_cast<int64_t>(it.c->weight.size())}});
      plan.push_back({prefix + ".index", DType::I8, {static_cast<int64_t>(it.c->index.size())}});
      plan.push_back({prefix + ".info", DType::I64, {5}});
      TensorReport r;
      r.part = part;
      r.name = e.name();
      r.n = t.shape[0];
      r.k = t.shape[1];
      r.raw_bytes = t.nbytes();
      r.compressed_bytes = it.c->weight.size() + it.c->index.size() + 5 * sizeof(int64_t);
      r.nonzeros = it.c->stats.nonzeros;
      r.stats = it.c->stats;
      sum.raw_bytes += r.raw_bytes;
      sum.compressed_bytes += r.compressed_bytes;
      sum.tensors.push_back(std::move(r));
      if (opt.progress) opt.progress({"weights compressed", sum.tensors.size(), 0, sum.raw_bytes});
    } else {
      plan.push_back({e.name(), e.info->dtype, e.info->shape});
    }
    items.push_back(std::move(it));
  }

  Metadata md = ck->header(0).metadata;
  const bool had_checksums = md.count(kTensorChecksumKey) > 0;
  md.erase(kTensorChecksumKey);
  md[kCodecKey] = kCodecName;
  md[kSourceChecksumsKey] = had_checksums ? "1" : "0";
  if (opt.flat_source) md[kFlatSourceKey] = "1";
  ST_ASSIGN(auto w, SafetensorsWriter::create(out_dir + "/" + kW8A8SCFile, plan, md, writer_options(true)));
  for (auto& it : items) {
    if (it.c) {
      const std::string prefix = strip_suffix(it.e->name(), ".weight");
      ST_CHECK(w->write(it.e->name(), it.c->weight.data(), it.c->weight.size()));
      ST_CHECK(w->write(prefix + ".index", it.c->index.data(), it.c->index.size()));
      ST_CHECK(w->write(prefix + ".info", it.c->info.data(), sizeof(int64_t) * 5));
      it.c.reset();
    } else {
      const ByteView v = ck->data(*it.e);
      ST_CHECK(w->write(it.e->name(), v.data, v.size));
      ck->release(*it.e);
    }
  }
  ST_CHECK(w->finish());

  Description nd;
  for (const auto& [k, v] : desc.top_entries()) nd.set_top(k, k == "model_quant_type" ? "W8A8SC" : v);
  for (const auto& [name, type] : desc.tensor_entries()) {
    const TensorEntry* e = ck->find(name);
    if (type == "W8A8S" && ends_with(name, ".weight") && e) {
      const std::string prefix = strip_suffix(name, ".weight");
      nd.set_type(name, "W8A8SC");
      nd.set_type(prefix + ".index", "W8A8SC");
      nd.set_type(prefix + ".info", "W8A8SC");
    } else {
      nd.set_type(name, type);
    }
  }
  ST_CHECK(write_file(out_dir + "/" + kDescriptionFile, nd.dump()));
  return copy_side_files(in_dir, out_dir, "w8a8s", "w8a8sc");
}

// Reads a compressed weight's info tensor.
Result<std::array<int64_t, 5>> read_info(const Checkpoint& ck, const TensorEntry& e, const std::string& file) {
  if (e.info->dtype != DType::I64 || e.info->shape != std::vector<int64_t>{5})
    return make_error(Errc::format, std::string("a W8A8SC info must be I64 [5], found ") + dtype_name(e.info->dtype) + " " +
                                        shape_str(e.info->shape), file, e.name());
  std::array<int64_t, 5> info{};
  std::memcpy(info.data(), ck.data(e).data, sizeof info);
  auto g = grid_from_info(info.data(), 5);
  if (!g) return std::move(g.error().in_file(file).in_tensor(e.name()));
  return info;
}

Status decompress_part(const std::string& in_dir, const std::string& out_dir, const std::string& part,
                       const DirOptions& opt, DirSummary& sum) {
  ST_ASSIGN(auto ck, open_part(in_dir, "W8A8SC"));
  const Description& desc = *ck->description();
  const std::string file = ck->files()[0];
  const Metadata& in_md = ck->header(0).metadata;
  const auto codec = in_md.find(kCodecKey);
  if (codec == in_md.end() || codec->second != kCodecName)
    return make_error(Errc::unsupported, std::string("weights were not compressed by st-compress (no __metadata__ \"") +
                                             kCodecKey + "\": \"" + kCodecName + "\"); other W8A8SC codecs are proprietary",
                      file);
  struct Item {
    const TensorEntry* e;
    const TensorEntry* index = nullptr;  // set for a compressed weight
    const TensorEntry* info = nullptr;
    std::array<int64_t, 5> info_v{};
  };
  std::vector<Item> items;
  std::vector<TensorSpec> plan;
  std::set<std::string> consumed;  // .index/.info of compressed weights
  for (const auto& e : ck->tensors()) {
    const auto type = desc.type_of(e.name());
    if (!type) return make_error(Errc::format, "tensor is not in quant_model_description.json", file, e.name());
    if (*type != "W8A8SC" || !ends_with(e.name(), ".weight")) continue;
    const std::string prefix = strip_suffix(e.name(), ".weight");
    Item it{&e, ck->find(prefix + ".index"), ck->find(prefix + ".info"), {}};
    if (!it.index || !it.info)
      return make_error(Errc::format, "W8A8SC weight has no " + std::string(!it.index ? ".index" : ".info") + " tensor", file,
                        e.name());
    if (e.info->dtype != DType::I8 || e.info->shape.size() != 1 || it.index->info->dtype != DType::I8 ||
        it.index->info->shape.size() != 1)
      return make_error(Errc::format, "W8A8SC weight and index must be 1-D I8", file, e.name());
    consumed.insert(it.index->name());
    consumed.insert(it.info->name());
  }
  for (const auto& e : ck->tensors()) {
    if (consumed.count(e.name())) continue;
    const auto type = desc.type_of(e.name());
    Item it{&e};
    if (*type == "W8A8SC") {
      if (!ends_with(e.name(), ".weight"))
        return make_error(Errc::format, "W8A8SC tensor belongs to no compressed weight", file, e.name());
      const std::string prefix = strip_suffix(e.name(), ".weight");
      it.index = ck->find(prefix + ".index");
      it.info = ck->find(prefix + ".info");
      ST_ASSIGN(it.info_v, read_info(*ck, *it.info, file));
      plan.push_back({e.name(), DType::I8, {it.info_v[3], it.info_v[2]}});
    } else {
      plan.push_back({e.name(), e.info->dtype, e.info->shape});
    }
    items.push_back(it);
  }

  Metadata md = in_md;
  const bool checksums = md.count(kSourceChecksumsKey) ? md[kSourceChecksumsKey] == "1" : true;
  md.erase(kCodecKey);
  md.erase(kSourceChecksumsKey);
  md.erase(kFlatSourceKey);
  md.erase(kTensorChecksumKey);
  ST_ASSIGN(auto w, SafetensorsWriter::create(out_dir + "/" + kW8A8SFile, plan, md, writer_options(checksums)));
  std::vector<int8_t> buf;
  for (const auto& it : items) {
    const ByteView v = ck->data(*it.e);
    if (it.index) {
      const int64_t n = it.info_v[3], k = it.info_v[2];
      buf.resize(static_cast<size_t>(n * k));
      const ByteView ix = ck->data(*it.index);
      Status s = decompress(reinterpret_cast<const int8_t*>(v.data), v.size, reinterpret_cast<const int8_t*>(ix.data),
                            ix.size, it.info_v.data(), 5, buf.data());
      if (!s) return std::move(s.error().in_file(file).in_tensor(it.e->name()));
      ST_CHECK(w->write(it.e->name(), buf.data(), buf.size()));
      TensorReport r;
      r.part = part;
      r.name = it.e->name();
      r.n = n;
      r.k = k;
      r.raw_bytes = buf.size();
      r.compressed_bytes = v.size + ix.size + 5 * sizeof(int64_t);
      for (int8_t x : buf) r.nonzeros += x != 0;
      sum.raw_bytes += r.raw_bytes;
      sum.compressed_bytes += r.compressed_bytes;
      sum.tensors.push_back(std::move(r));
      if (opt.progress) opt.progress({"weights restored", sum.tensors.size(), 0, sum.raw_bytes});
      ck->release(*it.index);
    } else {
      ST_CHECK(w->write(it.e->name(), v.data, v.size));
    }
    ck->release(*it.e);
  }
  ST_CHECK(w->finish());

  Description nd;
  for (const auto& [k, v] : desc.top_entries()) nd.set_top(k, k == "model_quant_type" ? "W8A8S" : v);
  for (const auto& [name, type] : desc.tensor_entries()) {
    if (consumed.count(name)) continue;
    nd.set_type(name, type == "W8A8SC" ? "W8A8S" : type);
  }
  ST_CHECK(write_file(out_dir + "/" + kDescriptionFile, nd.dump()));
  return copy_side_files(in_dir, out_dir, "w8a8sc", "w8a8s");
}

using PartFn = Status (*)(const std::string&, const std::string&, const std::string&, const DirOptions&, DirSummary&);

// The weights typed `type` in a quantized directory (0 when its description does not load: the
// part function reports that).
uint64_t weights_typed(const std::string& dir, const char* type) {
  auto d = Description::load(dir + "/" + kDescriptionFile);
  uint64_t n = 0;
  if (d)
    for (const auto& [name, t] : d->tensor_entries()) n += t == type && ends_with(name, ".weight");
  return n;
}

// Whether a W8A8SC part was compressed from a single W8A8S directory (kFlatSourceKey).
bool from_flat_source(const std::string& part_dir) {
  auto ck = Checkpoint::open(part_dir);
  if (!ck || (*ck)->files().empty()) return false;
  const Metadata& md = (*ck)->header(0).metadata;
  return md.count(kFlatSourceKey) > 0;
}

// Compressing, the output is always part{i}-of-{n}/ folders (MindIE's Weights opens
// part{rank}-of-{world}/ for w8a8sc, also at TP 1) under the input's side files; restoring, a
// part0-of-1 compressed from one directory becomes that directory again.
Result<DirSummary> run_dir(const std::string& in, Output& out, const DirOptions& opt, PartFn fn) {
  std::error_code ec;
  if (!fs::is_directory(in, ec)) return make_error(Errc::io, "not a directory", in);
  if (out.is_stdout()) return make_error(Errc::usage, "the output is a directory: name one, not '-'", "-");
  ST_ASSIGN(const auto parts, part_folders(in));  // the one rule for a part set (libst/format/parts.hpp)
  const bool compressing = fn == compress_part;
  const std::string& dir = out.directory();
  DirOptions o = opt;  // its progress knows the total
  if (opt.progress) {
    const char* type = compressing ? "W8A8S" : "W8A8SC";
    uint64_t total = parts.empty() ? weights_typed(in, type) : 0;
    for (const auto& p : parts) total += weights_typed(in + "/" + p.name, type);
    o.progress = [&opt, total](Progress p) {
      p.total = total;
      opt.progress(p);
    };
  }
  DirSummary sum;
  const bool to_flat = !compressing && parts.size() == 1 && from_flat_source(in + "/" + parts[0].name);
  if (parts.empty() && !compressing) {
    ST_CHECK(fn(in, dir, "", o, sum));
  } else if (to_flat) {
    ST_CHECK(fn(in + "/" + parts[0].name, dir, "", o, sum));
  } else {
    std::vector<std::string> names;
    for (const auto& p : parts) names.push_back(p.name);
    if (parts.empty()) names.push_back("part0-of-1");
    o.flat_source = parts.empty();
    sum.parts = static_cast<int>(names.size());
    for (const auto& name : names) {
      const std::string to = dir + "/" + name;
      ST_CHECK(make_directory(to));
      ST_CHECK(fn(o.flat_source ? in : in + "/" + name, to, name, o, sum));
    }
    ST_CHECK(compressing ? copy_side_files(in, dir, "w8a8s", "w8a8sc") : copy_side_files(in, dir, "w8a8sc", "w8a8s"));
  }
  ST_CHECK(out.commit());
  return sum;
}

}  // namespace

Result<DirSummary> compress_dir(const std::string& in, Output& out, const DirOptions& options) {
  return run_dir(in, out, options, compress_part);
}

Result<DirSummary> decompress_dir(const std::string& in, Output& out, const DirOptions& options) {
  return run_dir(in, out, options, decompress_part);
}

}  // namespace st::w8a8sc
