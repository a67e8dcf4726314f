// Exit codes, errors, warnings and the options every tool shares.
#include "bin/common/cli.hpp"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "libst/core/blas.hpp"
#include "libst/core/parallel.hpp"
#include "libst/format/temporaries.hpp"

namespace st::cli {
namespace {
std::string g_tool = "st";
}

const std::string& tool_name() { return g_tool; }

int report(const Error& e) {
  if (e.code == Errc::broken_pipe) return kExitError;
  Error shown = e;
  shown.file = shown_path(e.file);
  std::fprintf(stderr, "%s: error: %s\n", g_tool.c_str(), shown.str().c_str());
  return kExitError;
}

void warn(const std::string& message) { std::fprintf(stderr, "%s: warning: %s\n", g_tool.c_str(), message.c_str()); }

Result<std::unique_ptr<Output>> open_output(OutputRequest request) {
  request.note = warn;
  return st::open_output(request);
}

namespace {

// True when stdout is a pipe or socket whose reader has gone (the write failed with EPIPE).
bool reader_gone() {
  struct stat sb {};
  if (::fstat(1, &sb) != 0 || !(S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode))) return false;
  struct pollfd p {1, POLLOUT, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP));
}

// The tool's exit code, or kExitError when what it printed on stdout could not be written. The
// write that failed may lie in the past (ferror): errno still tells why when it is a write's error.
int check_stdout(int code) {
  const int before = errno;
  const bool failed = std::fflush(stdout) != 0 || std::ferror(stdout);
  if (!failed) return code;
  if (code == kExitError || errno == EPIPE || reader_gone()) return kExitError;  // said already, or quiet
  std::string why;
  for (const int err : {errno, before})
    if (why.empty() && (err == ENOSPC || err == EDQUOT || err == EIO || err == EFBIG || err == EBADF))
      why = std::string(": ") + std::strerror(err);
  return report(make_error(Errc::io, "cannot write to stdout" + why));
}

}  // namespace

void add_version_flag(CLI::App& app) {
  app.set_version_flag("--version", std::string(app.get_name()) + " (st-tools) " + ST_VERSION + ", OpenBLAS core " +
                                        blas_core() + (blas_core_chosen() ? " (chosen by st-tools)" : ""));
}

void add_threads_option(CLI::App& app) {
  app.add_option_function<int>("-j,--threads", [](int n) { set_threads(n); }, "threads (default 0: all cores)")
      ->check(CLI::Range(0, 4096))
      ->option_text("N");
}

int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  reexec_for_blas_core(argv);
  g_tool = app.get_name();
  install_cleanup_handlers();
  add_version_flag(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return check_stdout(app.exit(e));
  } catch (const CLI::CallForAllHelp& e) {
    return check_stdout(app.exit(e));
  } catch (const CLI::CallForVersion& e) {
    return check_stdout(app.exit(e));
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s\n%s: see '%s --help'\n", g_tool.c_str(), e.what(), g_tool.c_str(),
                 g_tool.c_str());
    return kExitError;
  }
  try {
    return check_stdout(body());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of memory\n", g_tool.c_str());
    return kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", g_tool.c_str(), e.what());
    return kExitError;
  }
}

}  // namespace st::cli
