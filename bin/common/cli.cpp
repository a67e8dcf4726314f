// Exit codes, error reporting and progress for the tools.
#include "bin/common/cli.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "libst/format/output.hpp"

namespace st::cli {
namespace {
std::string g_tool = "st";
}

const std::string& tool_name() { return g_tool; }

int report(const Error& e) {
  if (e.code == Errc::broken_pipe) return kExitError;
  std::fprintf(stderr, "%s: error: %s\n", g_tool.c_str(), e.str().c_str());
  return kExitError;
}

void warn(const std::string& message) { std::fprintf(stderr, "%s: warning: %s\n", g_tool.c_str(), message.c_str()); }

void add_version_flag(CLI::App& app) {
  app.set_version_flag("--version", std::string(app.get_name()) + " (st-tools) " + ST_VERSION);
}

int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body) {
  g_tool = app.get_name();
  install_cleanup_handlers();
  add_version_flag(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: error: %s\n%s: see '%s --help'\n", g_tool.c_str(), e.what(), g_tool.c_str(),
                 g_tool.c_str());
    return kExitError;
  }
  try {
    return body();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of memory\n", g_tool.c_str());
    return kExitError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", g_tool.c_str(), e.what());
    return kExitError;
  }
}

Progress::Progress(std::string what)
    : what_(std::move(what)), enabled_(isatty(2) != 0), start_(std::chrono::steady_clock::now()), last_(start_) {}

Progress::~Progress() { finish(); }

void Progress::update(uint64_t done, uint64_t total, uint64_t bytes) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done != total && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\r%s: %s %llu/%llu", g_tool.c_str(), what_.c_str(), static_cast<unsigned long long>(done),
               static_cast<unsigned long long>(total));
  if (bytes && secs > 0) std::fprintf(stderr, "  %.2f GB/s", bytes / secs / 1e9);
  std::fprintf(stderr, "\033[K");
  shown_ = true;
}

void Progress::finish() {
  if (shown_) std::fprintf(stderr, "\r\033[K");
  shown_ = false;
}

}  // namespace st::cli
