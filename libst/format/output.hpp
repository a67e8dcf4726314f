// Atomic outputs: files and directories are built under a temporary name beside their final
// path and renamed into place only when complete, so a reader never sees a partial output.
// Temporaries are removed on error, on destruction and on SIGINT/SIGTERM (kill -9 leaves a
// hidden ".NAME.tmp-XXXXXX" behind, never a partial file at the final path).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "libst/core/error.hpp"

namespace st {

// Installs SIGINT/SIGTERM handlers that remove registered temporaries, and ignores SIGPIPE
// so that a closed stdout surfaces as Errc::broken_pipe. Tools call it once at start.
void install_cleanup_handlers();

// A buffered output file: "-" is stdout, anything else a temporary file renamed on commit().
class OutputFile {
 public:
  static Result<std::unique_ptr<OutputFile>> create(const std::string& path);
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

// A directory output: files are written into a temporary sibling directory that replaces
// the final one on commit(). Without force an existing final directory is an Errc::exists.
class OutputDir {
 public:
  static Result<std::unique_ptr<OutputDir>> create(const std::string& path, bool force);
  ~OutputDir();
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  // Where to write a file that will end up as FINAL/name.
  std::string file(const std::string& name) const { return temp_ + "/" + name; }
  const std::string& temp_path() const { return temp_; }
  const std::string& path() const { return path_; }
  Status commit();

 private:
  OutputDir() = default;
  std::string path_, temp_;
  bool committed_ = false;
  int slot_ = -1;
};

// True when a and b name the same existing file or directory (refusing output over input).
bool same_file(const std::string& a, const std::string& b);
// Copies a small file (config, tokenizer) into place via OutputFile.
Status copy_file(const std::string& from, const std::string& to);
// Removes a file or directory tree; errors are ignored.
void remove_tree(const std::string& path);

}  // namespace st
