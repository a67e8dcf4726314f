// Opening checkpoints of every layout behind one interface.
#include "libst/format/checkpoint.hpp"
#include "libst/core/paths.hpp"
#include "libst/format/foreign.hpp"
#include "libst/core/base64.hpp"
#include "libst/format/json.hpp"
#include "libst/format/names.hpp"
#include "libst/format/parts.hpp"
#include "libst/format/side_files.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace st {
namespace {


// Copies `prefix` and then stdin into an unlinked temporary file and returns its /proc path for
// mapping.
Result<std::string> spool_stdin(int& keep_fd, const std::string& prefix) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/st-stdin-XXXXXX";
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) return make_error(Errc::io, std::string("cannot create a spool file: ") + std::strerror(errno), tmpl);
  ::unlink(tmpl.c_str());
  auto write_all = [fd](const char* p, size_t n) -> Status {
    for (size_t done = 0; done < n;) {
      const ssize_t w = ::write(fd, p + done, n - done);
      if (w < 0) return make_error(Errc::io, std::string("cannot spool stdin: ") + std::strerror(errno), "<stdin>");
      done += static_cast<size_t>(w);
    }
    return Status{};
  };
  Status ok = write_all(prefix.data(), prefix.size());
  std::vector<char> buf(1 << 20);
  while (ok) {
    const size_t n = fread(buf.data(), 1, buf.size(), stdin);
    if (n == 0) break;
    ok = write_all(buf.data(), n);
  }
  if (!ok) {
    ::close(fd);
    return std::move(ok).error();
  }
  keep_fd = fd;
  return "/proc/self/fd/" + std::to_string(fd);
}

}  // namespace

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::file: return "file";
    case Layout::hf_single: return "hf";
    case Layout::hf_sharded: return "hf-sharded";
    case Layout::quantized: return "quantized";
    case Layout::parts: return "parts";
    case Layout::stream: return "stream";
  }
  return "?";
}

Metadata carried_metadata(const Checkpoint& c) {
  Metadata out;
  for (size_t f = 0; f < c.files().size(); ++f)
    for (const auto& [key, value] : c.header(f).metadata)
      if (key.rfind("st.", 0) != 0) out.emplace(key, value);
  return out;
}

Status Checkpoint::add_file(const std::string& path) {
  ST_ASSIGN(auto f, SafetensorsFile::open(path));
  file_names_.push_back(path);
  files_.push_back(std::move(f));
  return Status{};
}

Status Checkpoint::index_entries() {
  entries_.clear();
  index_.clear();
  auto add = [&](const Header& h, size_t file) -> Status {
    for (const auto& t : h.tensors) {
      if (!index_.emplace(t.name, entries_.size()).second)
        return make_error(Errc::format, "tensor appears in more than one file", file_names_[file], t.name);
      entries_.push_back(TensorEntry{&t, file});
    }
    return Status{};
  };
  if (stream_) {
    ST_CHECK(add(stream_->header(), 0));
  } else {
    for (size_t i = 0; i < files_.size(); ++i) ST_CHECK(add(files_[i]->header(), i));
  }
  pair_block_scales();
  return Status{};
}

void Checkpoint::pair_block_scales() {
  block_fp8_ = false;
  for (auto& e : entries_) {
    if (!is_block_fp8(e.info->dtype)) continue;
    block_fp8_ = true;
    const auto it = index_.find(e.name() + std::string(kScaleInvSuffix));
    if (it == index_.end()) continue;
    e.scale_inv = &entries_[it->second];
    entries_[it->second].scales = &e;
  }
}

Status Checkpoint::load_side_files_from_dir(const std::string& dir) {
  for (const auto& name : list_directory(dir)) {
    const std::string p = dir + "/" + name;
    if (!is_side_file_name(name) || !is_regular_file(p)) continue;
    ST_ASSIGN(side_files_[name], read_file_text(p));
    side_file_modes_[name] = file_mode(p);
  }
  return Status{};
}

unsigned Checkpoint::side_file_mode(const std::string& name) const {
  const auto it = side_file_modes_.find(name);
  return it == side_file_modes_.end() ? 0644 : it->second;
}

void put_side_file(Metadata& m, const std::string& name, const std::string& bytes) {
  bool text = true;
  try {
    (void)nlohmann::json(bytes).dump();  // throws on bytes that are not UTF-8
  } catch (const nlohmann::json::exception&) {
    text = false;
  }
  if (text) m[std::string(kSideFilePrefix) + name] = bytes;
  else m[std::string(kSideFileBase64Prefix) + name] = base64_encode(bytes);
}

Status Checkpoint::load_side_files_from_metadata(const Metadata& m) {
  const std::string& file = file_names_.empty() ? path_ : file_names_[0];
  for (const auto& [key, value] : m) {
    const bool b64 = key.compare(0, kSideFileBase64Prefix.size(), kSideFileBase64Prefix) == 0;
    if (!b64 && key.compare(0, kSideFilePrefix.size(), kSideFilePrefix) != 0) continue;
    const std::string name = key.substr((b64 ? kSideFileBase64Prefix : kSideFilePrefix).size());
    if (Status ok = check_plain_name(name); !ok)
      return make_error(Errc::format, "side file in __metadata__ (" + key + "): " + ok.error().message, file);
    if (!b64) {
      side_files_[name] = value;
    } else if (auto bytes = base64_decode(value)) {
      side_files_[name] = std::move(*bytes);
    } else {
      return make_error(Errc::format, "side file in __metadata__ (" + key + ") is not base64", file);
    }
  }
  return Status{};
}

Status Checkpoint::parse_side_files() {
  if (auto it = side_files_.find("config.json"); it != side_files_.end()) {
    auto parsed = parse_json(it->second, kConfigJsonRules);
    if (!parsed) return std::move(parsed.error()).in_file(path_);
    config_ = std::move(parsed.value());
    if (!config_.is_object()) return make_error(Errc::format, "config.json is not a JSON object", path_);
  }
  if (auto it = side_files_.find(kDescriptionFile); it != side_files_.end()) {
    auto d = Description::parse(it->second);
    if (!d) return std::move(d.error()).in_file(layout_ == Layout::quantized ? path_ + "/" + kDescriptionFile : path_);
    description_ = std::move(d.value());
  }
  return Status{};
}

// Loads the shards an index names (HF model.safetensors.index.json, or the same for
// quant_model_weight files) and checks that index and shards agree tensor by tensor.
Status Checkpoint::add_indexed_files(const std::string& dir, const std::string& index_path) {
  ST_ASSIGN(const std::string text, read_file_text(index_path));
  auto parsed = parse_json(text, JsonRules{"index", 8});
  if (!parsed) return std::move(parsed.error()).in_file(index_path);
  nlohmann::json index = std::move(parsed.value());
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    return make_error(Errc::format, "index has no 'weight_map' object", index_path);
  std::set<std::string> shard_set;
  for (auto& [tensor, file] : index["weight_map"].items()) {
    if (!file.is_string()) return make_error(Errc::format, "weight_map value is not a file name", index_path, tensor);
    const std::string name = file.get<std::string>();
    if (Status ok = check_plain_name(name); !ok)
      return make_error(Errc::format, "weight_map: " + ok.error().message, index_path, tensor);
    shard_set.insert(name);
  }
  for (const auto& f : shard_set) ST_CHECK(add_file(dir + "/" + f));
  ST_CHECK(index_entries());
  for (auto& [tensor, file] : index["weight_map"].items()) {
    const TensorEntry* e = find(tensor);
    if (!e) return make_error(Errc::format, "index names a tensor that its shard does not hold", index_path, tensor);
    if (file_names_[e->file] != dir + "/" + file.get<std::string>())
      return make_error(Errc::format, "index puts the tensor in '" + file.get<std::string>() + "' but it is in '" +
                                          file_names_[e->file] + "'", index_path, tensor);
  }
  if (entries_.size() != index["weight_map"].size())
    return make_error(Errc::format, "shards hold tensors the index does not list", index_path);
  return Status{};
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::open(const std::string& path, Options options) {
  std::unique_ptr<Checkpoint> c(new Checkpoint());
  c->path_ = path;
  if (path == "-") {
    c->layout_ = Layout::stream;
    c->file_names_.push_back("<stdin>");
    std::string prefix;  // a header already read from stdin
    if (!options.random_access) {
      ST_ASSIGN(c->stream_, StreamReader::open(stdin, "<stdin>"));
      const Header& h = c->stream_->header();
      // Block-scaled FP8 weights are read with their scales, which may come later: spool.
      if (std::any_of(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& t) { return is_block_fp8(t.dtype); })) {
        const std::string json = serialize_header(h.tensors, h.metadata);
        prefix.assign(8, '\0');
        for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>(static_cast<uint64_t>(json.size()) >> (8 * i));
        prefix += json;
        c->stream_.reset();
      }
    }
    if (!c->stream_) {
      int fd = -1;
      ST_ASSIGN(const std::string spool, spool_stdin(fd, prefix));
      auto f = SafetensorsFile::open(spool);
      ::close(fd);  // the mapping keeps the data
      if (!f) {
        f.error().file = "<stdin>";
        return std::move(f).error();
      }
      c->files_.push_back(std::move(f.value()));
    }
    ST_CHECK(c->load_side_files_from_metadata(c->header(0).metadata));
  } else if (is_directory(path)) {
    const std::string dir = path;
    const auto names = list_directory(dir);
    const bool has_parts = std::any_of(names.begin(), names.end(), [](const std::string& n) { return looks_like_part_name(n); });
    if (is_regular_file(dir + "/" + kDescriptionFile)) {
      c->layout_ = Layout::quantized;
      std::vector<std::string> indexes;
      for (const auto& n : names)
        if (n.rfind("quant_model_weight", 0) == 0 && ends_with(n, ".safetensors.index.json")) indexes.push_back(n);
      if (indexes.size() > 1)
        return make_error(Errc::format, "more than one quant_model_weight index ('" + indexes[0] + "', '" +
                                            indexes[1] + "')", path);
      if (indexes.size() == 1) {
        ST_CHECK(c->add_indexed_files(dir, dir + "/" + indexes[0]));
      } else {
        for (const auto& n : names)
          if (n.rfind("quant_model_weight", 0) == 0 && ends_with(n, ".safetensors")) ST_CHECK(c->add_file(dir + "/" + n));
      }
      if (c->files_.empty())
        return make_error(Errc::format, "quantized directory has no quant_model_weight_*.safetensors", path);
    } else if (is_regular_file(dir + "/model.safetensors.index.json")) {
      c->layout_ = Layout::hf_sharded;
      ST_CHECK(c->add_indexed_files(dir, dir + "/model.safetensors.index.json"));
    } else if (is_regular_file(dir + "/model.safetensors")) {
      c->layout_ = Layout::hf_single;
      ST_CHECK(c->add_file(dir + "/model.safetensors"));
    } else if (has_parts) {
      c->layout_ = Layout::parts;
      ST_ASSIGN(const auto parts, part_folders(dir));
      for (const auto& p : parts) {
        ST_ASSIGN(auto part, open(dir + "/" + p.name, options));
        c->parts_.push_back(std::move(part));
      }
      // Rank 0's files (the description), then the root's: what MindIE reads (config, tokenizer).
      ST_CHECK(c->load_side_files_from_dir(dir + "/" + parts.front().name));
      ST_CHECK(c->load_side_files_from_dir(dir));
      ST_CHECK(c->parse_side_files());
      return c;
    } else {
      std::string found;  // weights of another format (pytorch_model.bin, model.gguf, ...), said by name
      for (const auto& n : names) {
        const auto what = foreign_format_of_file(dir + "/" + n);
        if (!what) continue;
        found = "; '" + n + "' is " + *what + ": st-tools read safetensors";
        break;
      }
      return make_error(Errc::format,
                        "no checkpoint here: expected model.safetensors, model.safetensors.index.json, "
                        "quant_model_description.json or part{r}-of-{n}/ folders" + found,
                        path);
    }
    ST_CHECK(c->load_side_files_from_dir(dir));
  } else {
    c->layout_ = Layout::file;
    ST_CHECK(c->add_file(path));
    ST_CHECK(c->load_side_files_from_metadata(c->files_[0]->header().metadata));
  }
  ST_CHECK(c->index_entries());
  ST_CHECK(c->parse_side_files());
  return c;
}

const TensorEntry* Checkpoint::find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const Header& Checkpoint::header(size_t file) const {
  return stream_ ? stream_->header() : files_[file]->header();
}

ByteView Checkpoint::data(const TensorEntry& e) const {
  if (stream_) return ByteView{};
  return files_[e.file]->data(*e.info);
}

void Checkpoint::release(const TensorEntry& e) const {
  if (!stream_) files_[e.file]->release(*e.info);
}

Result<FloatDecoder> Checkpoint::decoder(const TensorEntry& e) const {
  const TensorInfo& t = *e.info;
  const std::string& file = file_names_[e.file];
  if (!is_block_fp8(t.dtype)) {
    auto d = FloatDecoder::plain(t.dtype, t.shape);
    if (!d) return std::move(d.error()).in_file(file).in_tensor(t.name);
    return d;
  }
  if (!e.scale_inv)
    return make_error(Errc::format, std::string(dtype_name(t.dtype)) + " weight has no '" + t.name +
                                        std::string(kScaleInvSuffix) + "' block scales (DeepSeek's FP8 layout)",
                      file, t.name);
  const TensorEntry& s = *e.scale_inv;
  if (Status ok = check_block_scale_pair(t, *s.info); !ok) return std::move(ok.error()).in_file(file).in_tensor(t.name);
  if (stream_) return make_error(Errc::usage, "stream opened without random access", file, t.name);
  std::vector<float> scale(s.info->numel());
  to_f32(DType::F32, data(s).data, scale.data(), scale.size());
  for (float v : scale)
    if (!std::isfinite(v))
      return make_error(Errc::numeric, "block scale is NaN or Inf", file_names_[s.file], s.name());
  return FloatDecoder::block_fp8(t.dtype, t.shape[0], t.shape[1], std::move(scale), fp8_dtype());
}

DType Checkpoint::value_dtype(const TensorEntry& e) const {
  return e.scale_inv ? fp8_dtype() : e.info->dtype;
}

Result<std::vector<float>> Checkpoint::read_f32(const TensorEntry& e) const {
  if (stream_) return make_error(Errc::usage, "stream opened without random access", file_names_[e.file], e.name());
  ST_ASSIGN(const FloatDecoder d, decoder(e));
  return d.all(data(e).data);
}

Result<std::vector<float>> Checkpoint::read_f32(std::string_view name) const {
  const TensorEntry* e = find(name);
  if (!e) return make_error(Errc::format, "tensor not found in checkpoint", path_, std::string(name));
  return read_f32(*e);
}

Status Checkpoint::for_each(const std::function<Status(const TensorEntry&, ByteView)>& visit) {
  if (stream_) {
    std::vector<uint8_t> buf;
    for (size_t i = 0;; ++i) {
      ST_ASSIGN(const TensorInfo* t, stream_->next(buf));
      if (!t) return Status{};
      ST_CHECK(visit(entries_[i], ByteView{buf.data(), buf.size()}));
    }
  }
  for (const auto& e : entries_) {
    ST_CHECK(visit(e, data(e)));
    release(e);
  }
  return Status{};
}

}  // namespace st
