// Plumbing shared by every tool: exit codes, error printing, progress lines, output policy.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "libst/core/error.hpp"
#include "libst/format/output.hpp"

namespace st::cli {

// The same in every tool and every man page.
constexpr int kExitOk = 0;
constexpr int kExitFound = 1;  // differences or problems found (st-inspect --diff, st-verify)
constexpr int kExitError = 2;  // bad input, usage, I/O

// Runs a tool's main: installs cleanup handlers, parses options, calls body, maps CLI11
// errors and exceptions to exit 2. body returns the exit code. Whatever was printed on stdout
// must have been written: a failed write (a full disk, /dev/full) is an error, exit 2, except a
// reader that closed the pipe (quiet, exit 2).
int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

// Prints "TOOL: error: MESSAGE" on stderr and returns kExitError (a broken pipe is quiet). A file
// inside an output's temporary is named as the output the user typed.
int report(const Error& e);
void warn(const std::string& message);

// st::open_output with the policy's notes (an interrupted run's leftovers removed) as warnings.
Result<std::unique_ptr<Output>> open_output(OutputRequest request);

// The tool's name as invoked, for messages.
const std::string& tool_name();

// Adds --version to an app.
void add_version_flag(CLI::App& app);

// A one-line progress display on stderr, shown only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(std::string what);
  ~Progress();
  // done/total in the tool's units; rate_unit e.g. "GB/s" computed from bytes when given.
  void update(uint64_t done, uint64_t total, uint64_t bytes = 0);
  void finish();

 private:
  std::string what_;
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace st::cli
