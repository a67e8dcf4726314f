// Files written inside an output: buffered, built under a temporary name beside their final name
// and renamed into place only when complete, so a partial file never carries the final name.
// (The output itself, with its policy, is libst/format/output.hpp.)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "libst/core/error.hpp"

namespace st {

// A buffered output file: "-" is stdout, anything else a temporary file renamed on commit().
class OutputFile {
 public:
  // mode: the permission bits the committed file gets.
  static Result<std::unique_ptr<OutputFile>> create(const std::string& path, mode_t mode = 0644);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  Status write(const void* data, size_t size);
  // Flushes, fsyncs and renames into place (stdout: flushes).
  Status commit();
  const std::string& path() const { return path_; }
  uint64_t bytes_written() const { return written_; }
  bool is_stdout() const { return fd_ == 1; }
  // Overwrites bytes already written, at offset from the start (flushes the buffer first).
  // Files only: an error for stdout. Used to patch a header once the data is known.
  Status pwrite(uint64_t offset, const void* data, size_t size);
  // Extends a file to size bytes (a sparse tail of zeros) so that pwrite may fill any part of it,
  // for a writer that places data in its own order. Files only: an error for stdout.
  Status reserve(uint64_t size);
  // The temporary file being written (empty for stdout); readable after pwrite/flush.
  const std::string& temp_path() const { return temp_; }

 private:
  OutputFile() = default;
  Status flush();
  std::string path_, temp_;
  int fd_ = -1;
  bool committed_ = false;
  uint64_t written_ = 0;
  std::vector<uint8_t> buf_;
  int slot_ = -1;
};

// Writes a small file (a config, a description) with the given permission bits.
Status write_file(const std::string& path, std::string_view text, mode_t mode = 0644);
// Copies a small file (config, tokenizer), symlinks followed, keeping its permission bits.
Status copy_file(const std::string& from, const std::string& to);
// Creates a directory inside an output (0755).
Status make_directory(const std::string& path);

}  // namespace st
