// OutputFile (temporary, then rename) and the small-file helpers built on it.
#include "libst/format/output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "libst/core/paths.hpp"
#include "libst/format/temporaries.hpp"

namespace st {
namespace {

Error io_error(const std::string& what, const std::string& file) {
  return make_error(Errc::io, what + ": " + std::strerror(errno), file);
}

// Writes all n bytes to fd, retrying short writes and EINTR.
Status write_all(int fd, const uint8_t* p, size_t n, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    const ssize_t w = ::write(fd, p + done, n - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) return make_error(Errc::broken_pipe, "broken pipe", path);
      return io_error("write failed", path);
    }
    done += static_cast<size_t>(w);
  }
  return Status{};
}

}  // namespace

Result<std::unique_ptr<OutputFile>> OutputFile::create(const std::string& path, mode_t mode) {
  std::unique_ptr<OutputFile> f(new OutputFile());
  f->path_ = path;
  f->buf_.reserve(1 << 20);
  if (path == "-") {
    f->fd_ = 1;
    return f;
  }
  std::string tmpl = dir_name(path) + "/." + base_name(path) + ".tmp-XXXXXX";
  {
    CreationFence fence;
    f->fd_ = mkstemp(tmpl.data());
    if (f->fd_ < 0) return io_error("cannot create output", path);
    f->temp_ = tmpl;
    f->slot_ = register_temporary(f->temp_);
  }
  ::fchmod(f->fd_, mode & 0777);
  return f;
}

OutputFile::~OutputFile() {
  if (fd_ > 1) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
  unregister_temporary(slot_);
}

Status OutputFile::flush() {
  ST_CHECK(write_all(fd_, buf_.data(), buf_.size(), path_));
  buf_.clear();
  return Status{};
}

Status OutputFile::write(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  written_ += size;
  if (buf_.size() + size > buf_.capacity()) {
    ST_CHECK(flush());
    // Large writes go straight from the caller's memory: no copy of a big tensor.
    if (size >= buf_.capacity()) return write_all(fd_, p, size, path_);
  }
  buf_.insert(buf_.end(), p, p + size);
  return Status{};
}

Status OutputFile::pwrite(uint64_t offset, const void* data, size_t size) {
  if (fd_ <= 1) return make_error(Errc::usage, "cannot seek back in this output", path_);
  if (offset + size > written_) return make_error(Errc::usage, "pwrite past the bytes written", path_);
  ST_CHECK(flush());
  const auto* p = static_cast<const uint8_t*>(data);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd_, p + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write failed", path_);
    }
    done += static_cast<size_t>(n);
  }
  return Status{};
}

Status OutputFile::reserve(uint64_t size) {
  if (fd_ <= 1) return make_error(Errc::usage, "cannot seek in this output", path_);
  ST_CHECK(flush());
  if (size > written_) {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return io_error("write failed", path_);  // as a write past a size limit would
    written_ = size;
  }
  return Status{};
}

Status OutputFile::commit() {
  ST_CHECK(flush());
  if (fd_ == 1) {
    committed_ = true;
    return Status{};
  }
  if (::fsync(fd_) != 0) return io_error("fsync failed", path_);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return io_error("close failed", path_);
  }
  fd_ = -1;
  CreationFence fence;
  if (::rename(temp_.c_str(), path_.c_str()) != 0) return io_error("cannot rename into place", path_);
  committed_ = true;
  return Status{};
}

Status write_file(const std::string& path, std::string_view text, mode_t mode) {
  ST_ASSIGN(auto f, OutputFile::create(path, mode));
  ST_CHECK(f->write(text.data(), text.size()));
  return f->commit();
}

Status copy_file(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return io_error("cannot open", from);
  auto out = OutputFile::create(to, file_mode(from));
  if (!out) {
    ::close(in);
    return out.error();
  }
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const Error e = io_error("read failed", from);
      ::close(in);
      return e;
    }
    if (n == 0) break;
    auto s = (*out)->write(buf, static_cast<size_t>(n));
    if (!s) {
      ::close(in);
      return s;
    }
  }
  ::close(in);
  return (*out)->commit();
}

Status make_directory(const std::string& path) {
  CreationFence fence;
  if (::mkdir(path.c_str(), 0755) != 0) return io_error("cannot create directory", path);
  return Status{};
}

}  // namespace st
