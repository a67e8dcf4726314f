// Plumbing shared by every tool: exit codes, error and warning printing, --version, -j.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "libst/core/error.hpp"
#include "libst/format/output.hpp"

namespace st::cli {

// The same in every tool and every man page.
constexpr int kExitOk = 0;
constexpr int kExitFound = 1;  // differences or problems found (st-inspect --diff, st-verify)
constexpr int kExitError = 2;  // bad input, usage, I/O

// Runs a tool's main: re-executes once for the BLAS's fast kernels when needed
// (st::reexec_for_blas_core, before anything is read), installs cleanup handlers, parses
// options, calls body, maps CLI11 errors and exceptions to exit 2. body returns the exit code.
// Whatever was printed on stdout must have been written: a failed write (a full disk,
// /dev/full) is an error, exit 2, except a reader that closed the pipe (quiet, exit 2).
int run(CLI::App& app, int argc, char** argv, const std::function<int()>& body);

// Prints "TOOL: error: MESSAGE" on stderr and returns kExitError (a broken pipe is quiet). A file
// inside an output's temporary is named as the output the user typed.
int report(const Error& e);
// Prints "TOOL: warning: MESSAGE" on stderr: the one printer of warnings (a libst WarnFn).
void warn(const std::string& message);

// st::open_output with the policy's notes (an interrupted run's leftovers removed) as warnings.
Result<std::unique_ptr<Output>> open_output(OutputRequest request);

// The tool's name as invoked, for messages.
const std::string& tool_name();

// Adds --version to an app.
void add_version_flag(CLI::App& app);

// Adds -j,--threads N: the thread count of every parallel step, the BLAS's included
// (st::set_threads); absent or 0 means all cores. The same in every tool.
void add_threads_option(CLI::App& app);

}  // namespace st::cli
