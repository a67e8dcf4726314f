// Safetensors: validated header parsing, a memory-mapped reader, a stream reader and a writer.
//
// The format (huggingface/safetensors README, safetensors/src/tensor.rs):
//
//   [8 bytes]  N, little-endian uint64: length of the header
//   [N bytes]  UTF-8 JSON object, padded with spaces (writers pad 8 + N to a multiple of 8):
//                { "__metadata__": { "key": "value", ... },          optional, string -> string
//                  "tensor.name": { "dtype": "F16",
//                                   "shape": [rows, cols],          non-negative integers
//                                   "data_offsets": [begin, end] }, bytes, relative to the buffer
//                  ... }
//   [rest]     the byte buffer: tensors row-major, little-endian
//
// We refuse, as the reference crate does: fewer than 8 bytes; N > 100,000,000; 8 + N past the
// end of the file; non-UTF-8 or invalid JSON; unknown dtypes; shape x dtype overflow or a byte
// length != end - begin; offsets that, sorted, do not start at 0 and follow on without gap or
// overlap; a buffer whose last end != file length - 8 - N. Beyond it we also refuse duplicate
// names (the crate keeps one silently), nesting deeper than the format needs, and a
// __metadata__ that is not a flat string map. Zero-element and 0-rank tensors are valid.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "libst/core/dtype.hpp"
#include "libst/core/error.hpp"

namespace st {

class OutputFile;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;

using Metadata = std::map<std::string, std::string>;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the buffer, [begin, end)
  uint64_t end = 0;

  uint64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

struct Header {
  std::vector<TensorInfo> tensors;  // in buffer (offset) order
  Metadata metadata;
  uint64_t header_bytes = 0;  // N
  uint64_t buffer_bytes = 0;  // sum of tensor sizes = last end

  uint64_t data_start() const { return 8 + header_bytes; }
  const TensorInfo* find(std::string_view name) const;

 private:
  friend Result<Header> parse_header(std::string_view, std::optional<uint64_t>);
  std::unordered_map<std::string, size_t> index_;
};

// Parses and validates a header's JSON. buffer_bytes, when known (a file), must equal the end
// of the last tensor; for a stream it is checked at the end of reading instead.
// Errors carry no file name; callers add it.
Result<Header> parse_header(std::string_view json, std::optional<uint64_t> buffer_bytes);

// The tensors whose data does not start at a multiple of their element size in the file (sub-byte
// types excepted): valid safetensors, but a loader cannot map them zero-copy. In offset order.
std::vector<const TensorInfo*> misaligned_tensors(const Header& h);

// Serialises a header for the given tensors (offsets must already be assigned, in order),
// padded with spaces so that 8 + N is a multiple of 8. Returns the JSON bytes (N of them).
std::string serialize_header(const std::vector<TensorInfo>& tensors, const Metadata& metadata);

struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// A validated, memory-mapped safetensors file. Views stay valid while the file is open.
class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const Header& header() const { return header_; }
  uint64_t file_bytes() const { return file_bytes_; }
  ByteView data(const TensorInfo& t) const;
  // Drops the tensor's pages from this process's resident set (they are re-read on next use).
  void release(const TensorInfo& t) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  Header header_;
  int fd_ = -1;
  const uint8_t* map_ = nullptr;
  uint64_t file_bytes_ = 0;
};

// Reads a safetensors stream front to back (stdin or a pipe): the header first, then each
// tensor in offset order. Memory is one tensor at a time.
class StreamReader {
 public:
  // name is how errors refer to the stream ("<stdin>").
  static Result<std::unique_ptr<StreamReader>> open(FILE* in, std::string name);

  const Header& header() const { return header_; }
  const std::string& name() const { return name_; }
  // Reads the next tensor into buf. Returns nullptr at the end (after checking there are no
  // trailing bytes).
  Result<const TensorInfo*> next(std::vector<uint8_t>& buf);

 private:
  StreamReader() = default;
  FILE* in_ = nullptr;
  std::string name_;
  Header header_;
  size_t next_ = 0;
  uint64_t pos_ = 0;  // bytes of buffer consumed
};

struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

// Where SafetensorsWriter puts the tensors.
enum class TensorOrder {
  // As HF's safetensors writer (safetensors/src/tensor.rs prepare): descending dtype (the order of
  // DType, 8-byte types first), then name. With the header padded to a multiple of 8, every tensor
  // starts at a multiple of its element size, and there are no holes: a loader can map it zero-copy.
  aligned,
  // In plan order: to reproduce a file laid out by someone else, byte for byte (st-shard --merge).
  planned,
};

// Options of SafetensorsWriter.
struct WriterOptions {
  // Integrity checksums (libst/checksum.hpp): per-tensor XXH3-64 in __metadata__["st.xxh3"]
  // (reserved in the header, patched in place by finish()) and PATH.xxh3 beside the file,
  // written by finish() after the rename. On by default for file outputs; a stream to stdout
  // cannot be patched and carries neither.
  bool checksums = true;
  TensorOrder order = TensorOrder::aligned;
};

// Writes one safetensors file whose header is planned up front; the tensors may then be written
// in any order. A file gets each tensor at its place; a stream to stdout ("-") emits them in file
// order, keeping those written ahead of their turn in an unlinked temporary file (memory stays
// bounded). To a path it writes a temporary file in the same directory and renames it on finish();
// a writer destroyed before finish() removes it.
class SafetensorsWriter {
 public:
  static Result<std::unique_ptr<SafetensorsWriter>> create(const std::string& path,
                                                          std::vector<TensorSpec> plan,
                                                          const Metadata& metadata);
  // The same with options; WriterOptions{} turns checksums on.
  static Result<std::unique_ptr<SafetensorsWriter>> create(const std::string& path,
                                                          std::vector<TensorSpec> plan,
                                                          const Metadata& metadata,
                                                          const WriterOptions& options);
  ~SafetensorsWriter();

  // Writes a planned tensor, once; size must be its byte length.
  Status write(std::string_view name, const void* data, size_t size);
  // All tensors written: flush, fsync and rename into place (with checksums: patch the
  // per-tensor hashes into the header first, and write PATH.xxh3 after the rename).
  Status finish();
  // The tensors with their offsets, in file order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

 private:
  SafetensorsWriter() = default;
  Status emit(size_t i, const void* data, size_t size);
  Status drain();
  std::unique_ptr<OutputFile> sink_;
  std::string path_;
  std::vector<TensorInfo> tensors_;               // file order
  std::unordered_map<std::string, size_t> index_;  // name -> position in tensors_
  std::vector<bool> written_;
  size_t count_ = 0;  // tensors written
  // A stream: the next tensor to emit, and those written ahead of it (spill offset, in spill_).
  size_t next_ = 0;
  std::FILE* spill_ = nullptr;
  std::map<size_t, uint64_t> spilled_;
  uint64_t spill_end_ = 0;
  // Checksums (WriterOptions::checksums on a file output).
  bool checksums_ = false;
  Metadata metadata_;
  std::map<std::string, uint64_t> hashes_;
  uint64_t header_bytes_ = 0;
};

}  // namespace st
