// The registry of temporaries, the signal cleanup thread and its creation fence, and the
// removal of dead runs' leftovers.
#include "libst/format/temporaries.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>


namespace st {
namespace {

// Fixed slots: the cleanup thread reads them without allocating or locking.
constexpr int kSlots = 64;
constexpr int kPathMax = 4096;
char g_paths[kSlots][kPathMax];
std::atomic<bool> g_used[kSlots];
std::mutex g_registry_mutex;

// The creation fence: holders in flight, and whether the cleanup has begun.
std::atomic<int> g_fenced{0};
std::atomic<bool> g_stopping{false};
thread_local int t_fence_depth = 0;  // a fence inside a fence (a commit's journal) enters at once

int g_signal_pipe[2] = {-1, -1};

void on_signal(int sig) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  if (::write(g_signal_pipe[1], &b, 1) < 0) {
  }  // a full pipe already holds a signal for the cleanup thread
  errno = saved;
}

// Recursive removal with fixed buffers (it runs in the cleanup thread while others may be stopped
// anywhere, holding any lock).
void remove_raw(const char* path, int depth) {
  if (::unlink(path) == 0 || errno == ENOENT) return;
  if (depth > 32) return;
  if (DIR* d = ::opendir(path)) {
    while (dirent* e = ::readdir(d)) {
      if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
      char child[kPathMax];
      const size_t a = std::strlen(path), b = std::strlen(e->d_name);
      if (a + b + 2 > sizeof child) continue;
      std::memcpy(child, path, a);
      child[a] = '/';
      std::memcpy(child + a + 1, e->d_name, b + 1);
      remove_raw(child, depth + 1);
    }
    ::closedir(d);
  }
  ::rmdir(path);
}

// Waits for a signal, then: no new creation, wait out those in flight (a commit finishes its
// renames), remove the temporaries, and end the process the way the signal would have.
void cleanup_thread() {
  unsigned char sig = 0;
  while (::read(g_signal_pipe[0], &sig, 1) != 1)
    if (errno != EINTR) return;
  g_stopping.store(true);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (g_fenced.load() > 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  for (int i = 0; i < kSlots; ++i)
    if (g_used[i].load()) remove_raw(g_paths[i], 0);
  std::signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  std::raise(sig);
  std::_Exit(128 + sig);
}

}  // namespace

void install_cleanup_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::signal(SIGPIPE, SIG_IGN);
    if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) return;
    ::fcntl(g_signal_pipe[1], F_SETFL, O_NONBLOCK);
    std::thread(cleanup_thread).detach();
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
  });
}

int register_temporary(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  if (path.size() >= kPathMax) return -1;
  for (int i = 0; i < kSlots; ++i) {
    if (!g_used[i].load()) {
      std::memcpy(g_paths[i], path.c_str(), path.size() + 1);
      g_used[i].store(true);
      return i;
    }
  }
  return -1;
}

void unregister_temporary(int slot) {
  if (slot >= 0) g_used[slot].store(false);
}

CreationFence::CreationFence() {
  g_fenced.fetch_add(1);
  if (t_fence_depth++ > 0 || !g_stopping.load()) return;
  --t_fence_depth;
  g_fenced.fetch_sub(1);
  for (;;) ::pause();  // the cleanup has begun: the process ends soon
}

CreationFence::~CreationFence() {
  --t_fence_depth;
  g_fenced.fetch_sub(1);
}

void remove_tree(const std::string& path) { remove_raw(path.c_str(), 0); }

const std::string& pid_text() {
  static const std::string pid = std::to_string(::getpid());
  return pid;
}

bool process_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

void remove_dead_runs(const std::string& dir, const std::string& prefix, bool own_too, const WarnFn& note) {
  std::vector<std::pair<std::string, std::string>> dead;  // name, pid
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string tail = name.substr(prefix.size());
      const std::string pid = tail.substr(0, tail.find('-'));
      if (pid.empty() || pid.size() > 10 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (pid == pid_text() ? own_too : !process_alive(std::atol(pid.c_str()))) dead.emplace_back(name, pid);
    }
    ::closedir(d);
  }
  for (const auto& [name, pid] : dead) {
    const std::string path = dir + "/" + name;
    remove_tree(path);
    if (note) note("removed '" + path + "', left by an interrupted run (pid " + pid + ")");
  }
}

Result<std::unique_ptr<ScratchDir>> ScratchDir::create(const std::string& prefix, const WarnFn& note) {
  const char* t = std::getenv("TMPDIR");
  const std::string tmp = t && *t ? t : "/tmp";
  remove_dead_runs(tmp, prefix + "-", false, note);
  static std::atomic<int> serial{0};
  std::unique_ptr<ScratchDir> s(new ScratchDir());
  s->path_ = tmp + "/" + prefix + "-" + pid_text() + "-" + std::to_string(serial++);
  CreationFence fence;
  if (::mkdir(s->path_.c_str(), 0700) != 0)
    return make_error(Errc::io, std::string("cannot create a temporary directory: ") + std::strerror(errno), s->path_);
  s->slot_ = register_temporary(s->path_);
  return s;
}

ScratchDir::~ScratchDir() {
  remove_tree(path_);
  unregister_temporary(slot_);
}

}  // namespace st
