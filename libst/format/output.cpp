// Temporary-then-rename outputs and the signal handler that cleans their temporaries.
#include "libst/format/output.hpp"
#include "libst/core/paths.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace st {
namespace {

// Registry of temporaries, readable from a signal handler: fixed slots, no allocation there.
constexpr int kSlots = 64;
constexpr int kPathMax = 4096;
char g_temp_paths[kSlots][kPathMax];
std::atomic<bool> g_slot_used[kSlots];
std::mutex g_registry_mutex;

int register_temp(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  if (path.size() >= kPathMax) return -1;
  for (int i = 0; i < kSlots; ++i) {
    if (!g_slot_used[i].load()) {
      std::memcpy(g_temp_paths[i], path.c_str(), path.size() + 1);
      g_slot_used[i].store(true);
      return i;
    }
  }
  return -1;
}

void unregister_temp(int slot) {
  if (slot >= 0) g_slot_used[slot].store(false);
}

// Recursive removal with only syscalls and fixed buffers (usable from the signal handler).
void remove_path_raw(const char* path, int depth) {
  if (unlink(path) == 0 || errno == ENOENT) return;
  if (depth > 8) return;
  DIR* d = opendir(path);
  if (d) {
    while (dirent* e = readdir(d)) {
      if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
      char child[kPathMax];
      const size_t a = std::strlen(path), b = std::strlen(e->d_name);
      if (a + b + 2 > sizeof child) continue;
      std::memcpy(child, path, a);
      child[a] = '/';
      std::memcpy(child + a + 1, e->d_name, b + 1);
      remove_path_raw(child, depth + 1);
    }
    closedir(d);
  }
  rmdir(path);
}

void on_signal(int sig) {
  for (int i = 0; i < kSlots; ++i)
    if (g_slot_used[i].load()) remove_path_raw(g_temp_paths[i], 0);
  signal(sig, SIG_DFL);
  raise(sig);
}

std::string temp_template(const std::string& path) {
  return dir_name(path) + "/." + base_name(path) + ".tmp-XXXXXX";
}

Error io_error(const std::string& what, const std::string& file) {
  return make_error(Errc::io, what + ": " + std::strerror(errno), file);
}

Status fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Status{};
  ::fsync(fd);
  ::close(fd);
  return Status{};
}

}  // namespace

void install_cleanup_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

Result<std::unique_ptr<OutputFile>> OutputFile::create(const std::string& path) {
  std::unique_ptr<OutputFile> f(new OutputFile());
  f->path_ = path;
  f->buf_.reserve(1 << 20);
  if (path == "-") {
    f->fd_ = 1;
    return f;
  }
  std::string tmpl = temp_template(path);
  f->fd_ = mkstemp(tmpl.data());
  if (f->fd_ < 0) return io_error("cannot create output", path);
  fchmod(f->fd_, 0644);
  f->temp_ = tmpl;
  f->slot_ = register_temp(f->temp_);
  return f;
}

OutputFile::~OutputFile() {
  if (fd_ > 1) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
  unregister_temp(slot_);
}

namespace {
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
  if (::rename(temp_.c_str(), path_.c_str()) != 0) return io_error("cannot rename into place", path_);
  committed_ = true;
  return fsync_dir(dir_name(path_));
}

Result<std::unique_ptr<OutputDir>> OutputDir::create(const std::string& path, bool force) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) == 0 && !force)
    return make_error(Errc::exists, "output already exists (use -f to replace it)", path);
  std::unique_ptr<OutputDir> d(new OutputDir());
  d->path_ = path;
  while (!d->path_.empty() && d->path_.size() > 1 && d->path_.back() == '/') d->path_.pop_back();
  std::string tmpl = temp_template(d->path_);
  if (!mkdtemp(tmpl.data())) return io_error("cannot create output directory", path);
  ::chmod(tmpl.c_str(), 0755);
  d->temp_ = tmpl;
  d->slot_ = register_temp(d->temp_);
  return d;
}

OutputDir::~OutputDir() {
  if (!committed_ && !temp_.empty()) remove_tree(temp_);
  unregister_temp(slot_);
}

Status OutputDir::commit() {
  struct stat sb {};
  std::string old;
  if (::stat(path_.c_str(), &sb) == 0) {
    old = temp_template(path_) ;
    old.replace(old.size() - 10, 10, ".old-XXXXXX");
    if (!mkdtemp(old.data())) return io_error("cannot stage replacement", path_);
    ::rmdir(old.c_str());
    if (::rename(path_.c_str(), old.c_str()) != 0) return io_error("cannot move old output aside", path_);
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    const Error e = io_error("cannot rename into place", path_);
    if (!old.empty()) ::rename(old.c_str(), path_.c_str());
    return e;
  }
  committed_ = true;
  if (!old.empty()) remove_tree(old);
  return fsync_dir(dir_name(path_));
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

Status copy_file(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY);
  if (in < 0) return io_error("cannot open", from);
  ST_ASSIGN(auto out, OutputFile::create(to));
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
    auto s = out->write(buf, static_cast<size_t>(n));
    if (!s) {
      ::close(in);
      return s;
    }
  }
  ::close(in);
  return out->commit();
}

void remove_tree(const std::string& path) { remove_path_raw(path.c_str(), 0); }

}  // namespace st
