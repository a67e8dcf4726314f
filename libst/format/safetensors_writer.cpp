// SafetensorsWriter: a planned header, tensors laid out as HF's writer does, written in any order.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "libst/format/checksum.hpp"
#include "libst/format/output_file.hpp"
#include "libst/format/safetensors.hpp"

namespace st {
namespace {

// The plan, validated, as header entries with offsets in the chosen order.
Result<std::vector<TensorInfo>> lay_out(const std::string& path, std::vector<TensorSpec> plan, TensorOrder order) {
  std::set<std::string> seen;
  std::vector<TensorInfo> tensors;
  for (auto& spec : plan) {
    if (!seen.insert(spec.name).second) return make_error(Errc::usage, "duplicate tensor name in plan", path, spec.name);
    uint64_t numel = 1, bits = 0;
    for (const int64_t d : spec.shape) {
      if (d < 0) return make_error(Errc::usage, "negative dimension in planned shape", path, spec.name);
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel))
        return make_error(Errc::usage, "planned shape element count overflows", path, spec.name);
    }
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_bits(spec.dtype)), &bits))
      return make_error(Errc::usage, "planned tensor byte size overflows", path, spec.name);
    if (bits % 8 != 0) return make_error(Errc::usage, "planned sub-byte tensor does not fill whole bytes", path, spec.name);
    TensorInfo t;
    t.name = std::move(spec.name);
    t.dtype = spec.dtype;
    t.shape = std::move(spec.shape);
    t.end = bits / 8;  // the size, until offsets are assigned
    tensors.push_back(std::move(t));
  }
  // DType is declared in safetensors' Dtype order, which prepare() sorts by, descending.
  if (order == TensorOrder::aligned)
    std::stable_sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
      return a.dtype != b.dtype ? a.dtype > b.dtype : a.name < b.name;
    });
  uint64_t offset = 0;
  for (auto& t : tensors) {
    const uint64_t size = t.end;
    if (size > UINT64_MAX - offset) return make_error(Errc::usage, "planned tensor byte size overflows", path, t.name);
    t.begin = offset;
    t.end = offset + size;
    offset = t.end;
  }
  return tensors;
}

// pwrite / pread of n bytes at offset, retrying short transfers and EINTR.
bool transfer(int fd, uint64_t offset, void* data, size_t n, bool write) {
  auto* p = static_cast<uint8_t*>(data);
  for (size_t done = 0; done < n;) {
    const ssize_t k = write ? ::pwrite(fd, p + done, n - done, static_cast<off_t>(offset + done))
                            : ::pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    done += static_cast<size_t>(k);
  }
  return true;
}

Error spill_error(const std::string& path) {
  return make_error(Errc::io, std::string("cannot hold a tensor for the stream: ") + std::strerror(errno), path);
}

}  // namespace

Result<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::create(const std::string& path,
                                                                    std::vector<TensorSpec> plan,
                                                                    const Metadata& metadata) {
  WriterOptions options;
  options.checksums = false;
  return create(path, std::move(plan), metadata, options);
}

Result<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::create(const std::string& path,
                                                                    std::vector<TensorSpec> plan,
                                                                    const Metadata& metadata,
                                                                    const WriterOptions& options) {
  std::unique_ptr<SafetensorsWriter> w(new SafetensorsWriter());
  w->path_ = path;
  w->checksums_ = options.checksums && path != "-";
  ST_ASSIGN(w->tensors_, lay_out(path, std::move(plan), options.order));
  for (size_t i = 0; i < w->tensors_.size(); ++i) w->index_[w->tensors_[i].name] = i;
  w->written_.assign(w->tensors_.size(), false);
  w->metadata_ = metadata;
  if (w->checksums_) {  // placeholders of the final width, patched by finish()
    for (const auto& t : w->tensors_) w->hashes_[t.name] = 0;
    w->metadata_[kTensorChecksumKey] = tensor_checksums_value(w->hashes_);
  } else {
    w->metadata_.erase(kTensorChecksumKey);  // a copied input's hashes would not match
  }
  const std::string header = serialize_header(w->tensors_, w->metadata_);
  w->header_bytes_ = header.size();
  if (header.size() > kMaxHeaderBytes) return make_error(Errc::unsupported, "header would exceed 100,000,000 bytes", path);
  ST_ASSIGN(w->sink_, OutputFile::create(path));
  uint8_t len_bytes[8];
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  ST_CHECK(w->sink_->write(len_bytes, 8));
  ST_CHECK(w->sink_->write(header.data(), header.size()));
  if (!w->sink_->is_stdout())
    ST_CHECK(w->sink_->reserve(8 + header.size() + (w->tensors_.empty() ? 0 : w->tensors_.back().end)));
  return w;
}

SafetensorsWriter::~SafetensorsWriter() {
  if (spill_) std::fclose(spill_);
}

Status SafetensorsWriter::write(std::string_view name, const void* data, size_t size) {
  const auto it = index_.find(std::string(name));
  if (it == index_.end()) return make_error(Errc::usage, "tensor not in the plan", path_, std::string(name));
  const size_t i = it->second;
  const TensorInfo& t = tensors_[i];
  if (written_[i]) return make_error(Errc::usage, "tensor written twice", path_, t.name);
  if (size != t.nbytes())
    return make_error(Errc::usage, "wrong byte length " + std::to_string(size) + ", planned " + std::to_string(t.nbytes()),
                      path_, t.name);
  written_[i] = true;
  ++count_;
  if (checksums_) hashes_[t.name] = xxh3_64(data, size);
  if (!sink_->is_stdout()) return sink_->pwrite(8 + header_bytes_ + t.begin, data, size);
  if (i == next_) {
    ST_CHECK(emit(i, data, size));
    return drain();
  }
  // Ahead of its turn in the stream: keep it aside until the tensors before it are out.
  if (!spill_ && !(spill_ = std::tmpfile())) return spill_error(path_);
  if (!transfer(fileno(spill_), spill_end_, const_cast<void*>(data), size, true)) return spill_error(path_);
  spilled_[i] = spill_end_;
  spill_end_ += size;
  return Status{};
}

Status SafetensorsWriter::emit(size_t i, const void* data, size_t size) {
  ST_CHECK(sink_->write(data, size));
  next_ = i + 1;
  return Status{};
}

// Emits the spilled tensors that are now next in the stream.
Status SafetensorsWriter::drain() {
  std::vector<uint8_t> buf;
  for (auto it = spilled_.find(next_); it != spilled_.end(); it = spilled_.find(next_)) {
    const TensorInfo& t = tensors_[it->first];
    buf.resize(t.nbytes());
    if (!transfer(fileno(spill_), it->second, buf.data(), buf.size(), false)) return spill_error(path_);
    ST_CHECK(emit(it->first, buf.data(), buf.size()));
    spilled_.erase(it);
  }
  return Status{};
}

Status SafetensorsWriter::finish() {
  if (count_ != tensors_.size()) {
    const size_t i = static_cast<size_t>(std::find(written_.begin(), written_.end(), false) - written_.begin());
    return make_error(Errc::usage, "finished before all planned tensors were written", path_, tensors_[i].name);
  }
  if (!checksums_) return sink_->commit();
  metadata_[kTensorChecksumKey] = tensor_checksums_value(hashes_);
  const std::string header = serialize_header(tensors_, metadata_);
  if (header.size() != header_bytes_)
    return make_error(Errc::usage, "checksum header changed width", path_);  // cannot happen: fixed-width hex
  ST_CHECK(sink_->pwrite(8, header.data(), header.size()));
  ST_ASSIGN(const uint64_t file_hash, xxh3_file(sink_->temp_path()));
  ST_CHECK(sink_->commit());
  return write_checksum_file(path_, file_hash);
}

}  // namespace st
