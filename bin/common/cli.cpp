// Exit codes, errors, warnings and the options every tool shares.
#include "bin/common/cli.hpp"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <vector>

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
  app.add_option_function<int>("-j,--threads", [](int n) { set_threads(n); }, "threads: 1 to 4096, 0 all cores (the default)")
      ->check(CLI::Range(0, 4096))
      ->option_text("N");
}

CLI::Option* add_output_option(CLI::App& app, std::string& path, const std::string& what, bool required) {
  auto* o = app.add_option("-o,--output", path, what)->option_text("PATH");
  return required ? o->required() : o;
}

void add_force_flag(CLI::App& app, bool& force) { app.add_flag("-f,--force", force, "replace an existing output"); }

void add_quiet_flag(CLI::App& app, bool& quiet, const std::string& what) { app.add_flag("-q,--quiet", quiet, what); }

void add_json_flag(CLI::App& app, bool& json, const std::string& what) { app.add_flag("--json", json, what); }

CLI::Validator not_stdin() {
  const auto refuse = [](const std::string& v) -> std::string {
    return v == "-" ? "'-' (stdin) is no stream here: name the path (./- for one called '-')" : "";
  };
  return CLI::Validator(refuse, "");
}

Status json_and_stream(bool json, const std::string& output) {
  if (json && output == "-") return make_error(Errc::usage, "--json and -o - would both write stdout");
  return {};
}

void set_exit_status(CLI::App& app, const std::string& found) {
  app.footer("Exit status: 0 ok, " + (found.empty() ? "" : "1 " + found + ", ") + "2 error (bad input, usage, I/O).");
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The app's flag nearest to a mistyped one (a prefix of it, or a few edits away), or "".
std::string nearest_flag(const CLI::App& app, const std::string& typed) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, typed.size() / 3) + 1;
  for (const CLI::Option* o : app.get_options()) {
    std::vector<std::string> names;
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
    for (const auto& s : o->get_snames()) names.push_back("-" + s);
    for (const auto& name : names) {
      const size_t d = typed.size() > 2 && name.rfind(typed, 0) == 0 ? 1 : edit_distance(typed, name);
      if (d < best_distance) best = name, best_distance = d;
    }
  }
  return best;
}

// "unknown option '--bogus'; did you mean '--json'?" for the first argument that looks like a flag
// and that no option took, or "" when there is none. CLI11 checks required arguments before it
// complains of unknown ones: this comes first, so a typo is not reported as a missing PATH.
std::string unknown_flag_message(const CLI::App& app) {
  for (const auto& arg : app.remaining()) {
    if (arg.size() < 2 || arg[0] != '-' || arg == "--") continue;
    const std::string typed = arg.substr(0, arg.find('='));
    const std::string near = nearest_flag(app, typed);
    return "unknown option '" + typed + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?");
  }
  return "";
}

}  // namespace

int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  reexec_for_blas_core(argv);
  g_tool = app.get_name();
  install_cleanup_handlers();
  add_version_flag(app);
  if (app.get_footer().empty()) set_exit_status(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return check_stdout(app.exit(e));
  } catch (const CLI::CallForAllHelp& e) {
    return check_stdout(app.exit(e));
  } catch (const CLI::CallForVersion& e) {
    return check_stdout(app.exit(e));
  } catch (const CLI::ParseError& e) {
    const std::string unknown = unknown_flag_message(app);
    std::fprintf(stderr, "%s: error: %s\n%s: see '%s --help'\n", g_tool.c_str(), unknown.empty() ? e.what() : unknown.c_str(),
                 g_tool.c_str(), g_tool.c_str());
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
