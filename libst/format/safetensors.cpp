// Safetensors header validation and serialisation, memory-mapped reading and stream reading.
#include "libst/format/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "libst/core/paths.hpp"
#include "libst/format/checksum.hpp"
#include "libst/format/foreign.hpp"
#include "libst/format/json.hpp"

namespace st {
namespace {

using json = nlohmann::json;

// Header JSON: root object > tensor entry > shape / offsets array; duplicate names refused.
constexpr JsonRules kHeaderRules{"header", 3, true, "tensor name"};

Error format_error(Fault fault, std::string message, std::string tensor = {}) {
  return make_fault(fault, std::move(message), {}, std::move(tensor));
}

Result<uint64_t> as_u64(const json& v, const std::string& tensor, const char* field, Fault fault) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return format_error(fault, std::string(field) + " must hold non-negative integers", tensor);
}

Result<TensorInfo> parse_entry(const std::string& name, const json& v) {
  if (!v.is_object()) return format_error(Fault::invalid_entry, "entry is not an object", name);
  TensorInfo t;
  t.name = name;
  const auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) return format_error(Fault::invalid_entry, "missing string field 'dtype'", name);
  const auto parsed = dtype_from_name(dt->get<std::string>());
  if (!parsed) return format_error(Fault::unknown_dtype, "unknown dtype '" + dt->get<std::string>() + "'", name);
  t.dtype = *parsed;

  const auto shape = v.find("shape");
  if (shape == v.end() || !shape->is_array()) return format_error(Fault::invalid_entry, "missing array field 'shape'", name);
  uint64_t numel = 1;
  for (const auto& d : *shape) {
    ST_ASSIGN(const uint64_t dim, as_u64(d, name, "shape", Fault::invalid_entry));
    if (dim > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, dim, &numel))
      return format_error(Fault::size_overflow, "shape element count overflows", name);
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  uint64_t bits = 0;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_bits(t.dtype)), &bits))
    return format_error(Fault::size_overflow, "shape byte size overflows", name);
  if (bits % 8 != 0) return format_error(Fault::length_mismatch, "sub-byte dtype does not fill whole bytes", name);

  const auto offs = v.find("data_offsets");
  if (offs == v.end() || !offs->is_array() || offs->size() != 2)
    return format_error(Fault::invalid_entry, "'data_offsets' must be an array of two integers", name);
  ST_ASSIGN(t.begin, as_u64((*offs)[0], name, "data_offsets", Fault::invalid_offset));
  ST_ASSIGN(t.end, as_u64((*offs)[1], name, "data_offsets", Fault::invalid_offset));
  if (t.begin > t.end) return format_error(Fault::invalid_offset, "data_offsets begin is after end", name);
  if (t.end - t.begin != bits / 8)
    return format_error(Fault::length_mismatch, "data_offsets span " + std::to_string(t.end - t.begin) + " bytes but " +
                            dtype_name(t.dtype) + " " + std::to_string(numel) + " elements need " +
                            std::to_string(bits / 8),
                        name);
  return t;
}

Status check_layout(std::vector<TensorInfo>& tensors, std::optional<uint64_t> buffer_bytes) {
  std::stable_sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expect = 0;
  for (const auto& t : tensors) {
    if (t.begin > expect && expect == 0)
      return format_error(Fault::invalid_offset, "data_offsets start at " + std::to_string(t.begin) + ", not 0 (bytes 0.." +
                              std::to_string(t.begin) + " belong to no tensor)",
                          t.name);
    if (t.begin > expect)
      return format_error(Fault::invalid_offset, "hole in the buffer before this tensor (bytes " + std::to_string(expect) + ".." +
                              std::to_string(t.begin) + " belong to no tensor)",
                          t.name);
    if (t.begin < expect) return format_error(Fault::invalid_offset, "data_offsets overlap the previous tensor", t.name);
    expect = t.end;
  }
  if (buffer_bytes && *buffer_bytes != expect) {
    if (*buffer_bytes < expect)
      return format_error(Fault::incomplete_buffer, "file is truncated: tensors need " + std::to_string(expect) +
                          " buffer bytes, file has " + std::to_string(*buffer_bytes));
    return format_error(Fault::incomplete_buffer, "file has " + std::to_string(*buffer_bytes - expect) +
                        " trailing bytes after the last tensor");
  }
  return Status{};
}

}  // namespace

uint64_t TensorInfo::numel() const {
  uint64_t n = 1;
  for (auto d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

const TensorInfo* Header::find(std::string_view name) const {
  const auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors[it->second];
}

Result<Header> parse_header(std::string_view text, std::optional<uint64_t> buffer_bytes) {
  ST_ASSIGN(json root, parse_json(text, kHeaderRules));
  if (!root.is_object()) return format_error(Fault::invalid_json, "header is not a JSON object");
  Header h;
  h.header_bytes = text.size();
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return format_error(Fault::invalid_metadata, "__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) return format_error(Fault::invalid_metadata, "__metadata__ value of '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    ST_ASSIGN(auto t, parse_entry(it.key(), *it));
    h.tensors.push_back(std::move(t));
  }
  ST_CHECK(check_layout(h.tensors, buffer_bytes));
  h.buffer_bytes = h.tensors.empty() ? 0 : h.tensors.back().end;
  for (size_t i = 0; i < h.tensors.size(); ++i) h.index_[h.tensors[i].name] = i;
  return h;
}

std::vector<const TensorInfo*> misaligned_tensors(const Header& h) {
  std::vector<const TensorInfo*> out;
  for (const auto& t : h.tensors) {
    const unsigned bytes = dtype_bits(t.dtype) / 8;
    if (bytes > 1 && (h.data_start() + t.begin) % bytes != 0) out.push_back(&t);
  }
  return out;
}

std::string serialize_header(const std::vector<TensorInfo>& tensors, const Metadata& metadata) {
  std::string out = "{";
  bool first = true;
  if (!metadata.empty()) {
    out += "\"__metadata__\":" + json(metadata).dump();
    first = false;
  }
  for (const auto& t : tensors) {
    if (!first) out += ",";
    first = false;
    out += json(t.name).dump() + ":{\"dtype\":\"" + dtype_name(t.dtype) + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) out += (i ? "," : "") + std::to_string(t.shape[i]);
    out += "],\"data_offsets\":[" + std::to_string(t.begin) + "," + std::to_string(t.end) + "]}";
  }
  out += "}";
  while ((8 + out.size()) % 8 != 0) out += ' ';
  return out;
}

// ---- memory-mapped file ----

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  ST_ASSIGN(f->fd_, open_regular(path));  // never blocks on a FIFO or reads a device forever
  struct stat sb {};
  if (fstat(f->fd_, &sb) != 0) return make_error(Errc::io, std::string("cannot stat: ") + std::strerror(errno), path);
  f->file_bytes_ = static_cast<uint64_t>(sb.st_size);
  if (f->file_bytes_ < 8)
    return make_fault(Fault::too_short, "file is too small for a safetensors header (" + std::to_string(f->file_bytes_) + " bytes)", path);
  uint8_t len_bytes[8];
  if (pread(f->fd_, len_bytes, 8, 0) != 8) return make_error(Errc::io, "cannot read header length", path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > kMaxHeaderBytes || 8 + n > f->file_bytes_)
    if (auto what = foreign_format_of_file(path)) return foreign_format_error(*what, path);
  if (n > kMaxHeaderBytes)
    return make_fault(Fault::header_too_large, "header length " + std::to_string(n) + " exceeds the 100,000,000-byte limit", path);
  if (8 + n > f->file_bytes_)
    return make_fault(Fault::header_past_end, "header length " + std::to_string(n) + " runs past the end of the file (" +
                                        std::to_string(f->file_bytes_) + " bytes)", path);
  std::string text(n, '\0');
  if (n && pread(f->fd_, text.data(), n, 8) != static_cast<ssize_t>(n))
    return make_error(Errc::io, "cannot read header", path);
  auto header = parse_header(text, f->file_bytes_ - 8 - n);
  if (!header) return std::move(header.error()).in_file(path);
  f->header_ = std::move(header.value());
  if (f->file_bytes_ > 0) {
    void* m = mmap(nullptr, f->file_bytes_, PROT_READ, MAP_PRIVATE, f->fd_, 0);
    if (m == MAP_FAILED) return make_error(Errc::io, std::string("cannot map: ") + std::strerror(errno), path);
    f->map_ = static_cast<const uint8_t*>(m);
  }
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(const_cast<uint8_t*>(map_), file_bytes_);
  if (fd_ >= 0) ::close(fd_);
}

ByteView SafetensorsFile::data(const TensorInfo& t) const {
  return ByteView{map_ + header_.data_start() + t.begin, static_cast<size_t>(t.nbytes())};
}

void SafetensorsFile::release(const TensorInfo& t) const {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const uint64_t from = (header_.data_start() + t.begin) / page * page;
  const uint64_t to = header_.data_start() + t.end;
  if (to > from) madvise(const_cast<uint8_t*>(map_) + from, to - from, MADV_DONTNEED);
}

// ---- stream reader ----

namespace {

bool read_exact(FILE* in, void* dst, size_t n) { return n == 0 || fread(dst, 1, n, in) == n; }

// Reads n bytes into buf in bounded chunks, growing it only as data arrives: a few bytes that
// declare a huge header or tensor cost what arrived, not what was declared.
template <class Buffer>
bool read_chunked(FILE* in, uint64_t n, Buffer& buf) {
  constexpr uint64_t kChunk = 16 << 20;
  buf.clear();
  while (buf.size() < n) {
    const size_t have = buf.size(), take = static_cast<size_t>(std::min<uint64_t>(kChunk, n - have));
    buf.resize(have + take);
    if (!read_exact(in, buf.data() + have, take)) return false;
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<StreamReader>> StreamReader::open(FILE* in, std::string name) {
  std::unique_ptr<StreamReader> r(new StreamReader());
  r->in_ = in;
  r->name_ = std::move(name);
  uint8_t len_bytes[8];
  if (!read_exact(in, len_bytes, 8))
    return make_fault(Fault::too_short, "stream ended before the 8-byte header length", r->name_);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > kMaxHeaderBytes) {
    // Another format? Its first bytes say (the stream is failing anyway: read a few more).
    char head[128];
    std::memcpy(head, len_bytes, 8);
    const size_t more = fread(head + 8, 1, sizeof head - 8, in);
    if (auto what = foreign_format(std::string_view(head, 8 + more))) return foreign_format_error(*what, r->name_);
    return make_fault(Fault::header_too_large, "header length " + std::to_string(n) + " exceeds the 100,000,000-byte limit", r->name_);
  }
  std::string text;
  if (!read_chunked(in, n, text)) return make_fault(Fault::header_past_end, "stream ended inside the header", r->name_);
  auto header = parse_header(text, std::nullopt);
  if (!header) return std::move(header.error()).in_file(r->name_);
  r->header_ = std::move(header.value());
  return r;
}

Result<const TensorInfo*> StreamReader::next(std::vector<uint8_t>& buf) {
  if (next_ == header_.tensors.size()) {
    if (fgetc(in_) != EOF) return make_fault(Fault::incomplete_buffer, "trailing bytes after the last tensor", name_);
    return static_cast<const TensorInfo*>(nullptr);
  }
  const TensorInfo& t = header_.tensors[next_];
  if (!read_chunked(in_, t.nbytes(), buf))
    return make_fault(Fault::incomplete_buffer, "stream ended inside tensor data (truncated)", name_, t.name);
  pos_ += t.nbytes();
  ++next_;
  return &t;
}

}  // namespace st
