// Temporaries: hidden paths a run creates and must not leave behind. They are removed on
// SIGINT/SIGTERM/SIGHUP (after no thread is creating a file among them), named with the pid so a
// later run can tell a dead run's leftovers, and removed by that later run.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "libst/core/callbacks.hpp"
#include "libst/core/error.hpp"

namespace st {

// Handles SIGINT, SIGTERM and SIGHUP: a cleanup thread waits until no CreationFence is held, lets
// none start, removes every registered temporary and ends the process with the signal. Ignores
// SIGPIPE, so a closed stdout surfaces as Errc::broken_pipe. Tools call it once at start.
void install_cleanup_handlers();

// Registers a path the signal cleanup removes (a slot index, or -1 when the table is full).
int register_temporary(const std::string& path);
void unregister_temporary(int slot);

// Held around every call that creates or renames an entry among temporaries (open with O_CREAT,
// mkdir, rename). The signal cleanup waits for the holders to leave and no new holder enters
// afterwards (it waits until the process ends), so nothing appears in a temporary once the
// cleanup has started removing it.
class CreationFence {
 public:
  CreationFence();
  ~CreationFence();
  CreationFence(const CreationFence&) = delete;
  CreationFence& operator=(const CreationFence&) = delete;
};

// Removes a file or directory tree; errors are ignored.
void remove_tree(const std::string& path);

// This process's pid as text: the stamp in every temporary's name.
const std::string& pid_text();
// True when some process has this pid (it may be another program: callers also hold a lock).
bool process_alive(long pid);

// Removes the entries of `dir` named PREFIX<pid> or PREFIX<pid>-<anything> whose pid is no live
// process's (or, with own_too, this process's): what an interrupted run left. Each removal is
// reported through `note`.
void remove_dead_runs(const std::string& dir, const std::string& prefix, bool own_too, const WarnFn& note);

// A private directory $TMPDIR/PREFIX-<pid>-<n>, removed on destruction and on signals; dead runs'
// directories of the same prefix are removed (and reported) when one is created.
class ScratchDir {
 public:
  static Result<std::unique_ptr<ScratchDir>> create(const std::string& prefix, const WarnFn& note);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  ScratchDir() = default;
  std::string path_;
  int slot_ = -1;
};

}  // namespace st
