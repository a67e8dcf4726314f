// open_output: checks, lock, an interrupted run's cleanup, the temporary; commit by exchange.
#include "libst/format/output.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "libst/core/paths.hpp"
#include "libst/format/output_inputs.hpp"

namespace st {
namespace {

// Each output's temporary, shown as the output the user typed (a file output's companions beside
// it). Kept after the output is gone: errors are printed later.
struct ShownTemp {
  std::string temp, typed;
  bool as_file = false;
};
std::mutex g_shown_mutex;
std::vector<ShownTemp> g_shown;

void show_as(const std::string& temp, const std::string& typed, bool as_file) {
  std::lock_guard<std::mutex> lock(g_shown_mutex);
  for (auto& t : g_shown)
    if (t.temp == temp) {
      t.as_file = as_file;
      return;
    }
  std::string shown = typed;
  while (shown.size() > 1 && shown.back() == '/') shown.pop_back();
  g_shown.push_back({temp, shown, as_file});
}

bool exists(const std::string& path) {
  struct stat sb {};
  return ::lstat(path.c_str(), &sb) == 0;
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// The test hooks (see output.hpp).
void test_pause() {
  const char* v = std::getenv("ST_TEST_COMMIT_PAUSE_MS");
  const long ms = v ? std::atol(v) : 0;
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

bool exchange_available() {
  const char* v = std::getenv("ST_TEST_NO_RENAME_EXCHANGE");
  return !(v && std::strcmp(v, "1") == 0);
}

// renameat2 with flags; false with errno set on failure (EINVAL/ENOSYS: not supported here).
bool rename2(const std::string& from, const std::string& to, unsigned flags) {
  return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags) == 0;
}

bool unsupported(int err) { return err == EINVAL || err == ENOSYS || err == ENOTSUP; }

}  // namespace

std::string shown_path(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_shown_mutex);
  for (const auto& t : g_shown) {
    if (path == t.temp) return t.typed;
    if (path.size() <= t.temp.size() + 1 || path.compare(0, t.temp.size(), t.temp) != 0 || path[t.temp.size()] != '/')
      continue;
    const std::string rest = path.substr(t.temp.size() + 1);
    if (!t.as_file) return t.typed + "/" + rest;
    const auto slash = t.typed.rfind('/');  // a file output's companions lie beside it
    return (slash == std::string::npos ? std::string() : t.typed.substr(0, slash + 1)) + rest;
  }
  return path;
}

Result<std::unique_ptr<Output>> open_output(const OutputRequest& r) {
  if (r.path.empty()) return make_error(Errc::usage, "no output given");
  std::unique_ptr<Output> out(new Output());
  out->typed_ = r.path;
  out->force_ = r.force;
  if (r.path == "-") {
    if (!r.stream)
      return make_error(Errc::usage, "this output is a directory, not a stream for stdout: name the directory (./- for one called '-')");
    if (::isatty(1))
      return make_error(Errc::usage, "refusing to write a safetensors stream to a terminal (redirect stdout or give -o PATH)");
    out->stdout_ = true;
    return out;
  }
  ST_ASSIGN(const PathEntry entry, path_entry(r.path));
  ST_CHECK(refuse_inputs(entry, r.inputs, r.path));
  out->parent_ = entry.parent;
  out->name_ = entry.name;
  out->final_ = entry.path();
  ST_CHECK(out->claim(r.note));
  return out;
}

std::string Output::sibling(const std::string& suffix) const { return parent_ + "/." + name_ + suffix; }

Error Output::io_error(const std::string& what) const {
  return make_error(Errc::io, what + ": " + std::strerror(errno), typed_);
}

// Lock, clean what an interrupted run left, check for an existing output, make the temporary.
Status Output::claim(const WarnFn& note) {
  const std::string lock_path = sibling(".st-lock");
  for (int attempt = 0;; ++attempt) {
    if (attempt == 10) return make_error(Errc::busy, "the output is in use by another run", typed_);
    CreationFence fence;  // a signal finds the lock file registered once it is ours, never before
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) return io_error("cannot create the output's lock file");
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      char pid[32] = {};
      const ssize_t n = ::pread(lock_fd_, pid, sizeof pid - 1, 0);
      ::close(lock_fd_);
      lock_fd_ = -1;
      return make_error(Errc::busy,
                        "the output is in use by another run (pid " + (n > 0 ? std::string(pid) : "?") + ")", typed_);
    }
    // The file we locked must still be the one at lock_path (a finishing run unlinks it).
    struct stat held {}, named {};
    if (::fstat(lock_fd_, &held) == 0 && ::stat(lock_path.c_str(), &named) == 0 && held.st_ino == named.st_ino &&
        held.st_dev == named.st_dev) {
      lock_slot_ = register_temporary(lock_path);
      break;
    }
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
  if (::ftruncate(lock_fd_, 0) == 0 && ::pwrite(lock_fd_, pid_text().data(), pid_text().size(), 0) < 0) {
  }  // the pid is for the "in use" message only

  recover_journal(note);
  remove_dead_runs(parent_, "." + name_ + ".st-tmp-", true, note);
  remove_dead_runs(parent_, "." + name_ + ".st-old-", true, note);
  if (!force_ && exists(final_)) return make_error(Errc::exists, "output already exists (use -f to replace it)", typed_);

  temp_ = sibling(".st-tmp-" + pid_text());
  {
    CreationFence fence;
    if (::mkdir(temp_.c_str(), 0755) != 0) return io_error("cannot create the output");
    temp_slot_ = register_temporary(temp_);
  }
  ::chmod(temp_.c_str(), 0755);
  show_as(temp_, typed_, false);
  return Status{};
}

// A run killed inside a two-rename replacement left DIR/.NAME.st-journal holding its pid: with
// the new output already in place, finish (drop the old one); otherwise put the old one back.
void Output::recover_journal(const WarnFn& note) {
  const std::string journal = sibling(".st-journal");
  auto text = read_file_text(journal);
  if (!text) return;
  std::string pid = *text;
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  const std::string aside = sibling(".st-old-" + pid), by = "an interrupted run (pid " + pid + ")";
  std::string done = "removed '" + journal + "', left by " + by;
  if (exists(aside) && exists(final_)) {
    remove_tree(aside);
    done = "completed the replacement of '" + typed_ + "' that " + by + " began";
  } else if (exists(aside) && ::rename(aside.c_str(), final_.c_str()) == 0) {
    done = "restored the previous '" + typed_ + "', which " + by + " was replacing";
  }
  ::unlink(journal.c_str());
  if (note) note(done);
}

Output::~Output() {
  if (!stdout_ && !committed_ && !temp_.empty()) remove_tree(temp_);
  unregister_temporary(temp_slot_);
  if (lock_fd_ >= 0) {
    ::unlink(sibling(".st-lock").c_str());
    ::close(lock_fd_);
  }
  unregister_temporary(lock_slot_);
}

std::string Output::file() {
  if (stdout_) return "-";
  as_file_ = true;
  show_as(temp_, typed_, true);
  return temp_ + "/" + name_;
}

const std::string& Output::directory() {
  as_file_ = false;
  show_as(temp_, typed_, false);
  return temp_;
}

Status Output::commit() {
  if (stdout_) return Status{};
  if (committed_) return make_error(Errc::usage, "output committed twice", typed_);
  {
    CreationFence fence;  // a signal's cleanup waits until the output is in place
    test_pause();
    if (as_file_) {
      // Companions (NAME.xxh3) follow the file; each is a plain file, renamed over any old one.
      const std::vector<std::string> companions = list_directory(temp_);
      ST_CHECK(install(temp_ + "/" + name_));
      for (const auto& c : companions) {
        if (c == name_) continue;
        if (::rename((temp_ + "/" + c).c_str(), (parent_ + "/" + c).c_str()) != 0)
          return make_error(Errc::io, std::string("cannot rename into place: ") + std::strerror(errno), parent_ + "/" + c);
      }
    } else {
      ST_CHECK(install(temp_));
    }
    committed_ = true;
    fsync_dir(parent_);
    test_pause();
  }
  remove_tree(temp_);  // the replaced output, if any
  unregister_temporary(temp_slot_);
  temp_slot_ = -1;
  return Status{};
}

// Moves `from` to the output's name: without replacing anything, or (force) exchanged with the
// existing output, which is left at `from`.
Status Output::install(const std::string& from) {
  bool replace = exists(final_);
  if (replace && !force_) return make_error(Errc::exists, "output already exists (use -f to replace it)", typed_);
  const bool have_exchange = exchange_available();
  if (!replace) {
    if (have_exchange && rename2(from, final_, RENAME_NOREPLACE)) return Status{};
    if (have_exchange && errno == EEXIST && !force_)
      return make_error(Errc::exists, "output already exists (use -f to replace it)", typed_);
    if (have_exchange && errno != EEXIST && !unsupported(errno)) return io_error("cannot rename into place");
    replace = exists(final_);
    if (replace && !force_) return make_error(Errc::exists, "output already exists (use -f to replace it)", typed_);
    if (!replace) {
      if (::rename(from.c_str(), final_.c_str()) != 0) return io_error("cannot rename into place");
      return Status{};
    }
  }
  if (have_exchange && rename2(from, final_, RENAME_EXCHANGE)) return Status{};
  if (have_exchange && !unsupported(errno)) return io_error("cannot replace the output");
  return replace_in_two_steps(from);
}

// Replaces the output with two renames, journaled: the old one aside, the new one in place. A run
// killed between them leaves the journal for the next run (recover_journal).
Status Output::replace_in_two_steps(const std::string& from) {
  const std::string journal = sibling(".st-journal"), aside = sibling(".st-old-" + pid_text());
  const int fd = ::open(journal.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot write the replacement journal");
  const std::string line = pid_text() + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written) {
    const Error e = io_error("cannot write the replacement journal");
    ::unlink(journal.c_str());
    return e;
  }
  fsync_dir(parent_);
  test_pause();
  if (::rename(final_.c_str(), aside.c_str()) != 0) {
    const Error e = io_error("cannot move the old output aside");
    ::unlink(journal.c_str());
    return e;
  }
  test_pause();
  if (::rename(from.c_str(), final_.c_str()) != 0) {
    const Error e = io_error("cannot rename into place");
    ::rename(aside.c_str(), final_.c_str());
    ::unlink(journal.c_str());
    return e;
  }
  fsync_dir(parent_);
  test_pause();
  ::rename(aside.c_str(), from.c_str());  // where an exchange would have left it, removed with the temporary
  ::unlink(journal.c_str());
  return Status{};
}

}  // namespace st
