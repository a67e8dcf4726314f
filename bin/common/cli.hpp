// Plumbing shared by every tool: exit codes, error and warning printing, and the one spelling of the
// options every tool shares (-o, -f, -q, -j, --json, --version; --progress is in progress.hpp).
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

// The shared options. Each tool adds those that make sense for it: -o and -f where it writes an
// output; -q everywhere but where it prints nothing on stderr anyway; -j where work runs in
// parallel; --json where it has a result or summary to print (on stdout). --version and the
// "Exit status" section of --help are added by run() to every tool.

// Adds --version: "TOOL (st-tools) VERSION" with CMake's project version (ST_VERSION).
void add_version_flag(CLI::App& app);

// Adds -j,--threads N: the thread count of every parallel step, the BLAS's included
// (st::set_threads): 1 to 4096 threads, 0 (the default) all cores; anything else is an error.
void add_threads_option(CLI::App& app);

// Adds -o,--output PATH (required unless `required` is false). `what` says what is written and
// whether "-" (stdout) is allowed: only where the output can be one stream; a tool that writes a
// directory refuses "-" (the output policy, exit 2, nothing created).
CLI::Option* add_output_option(CLI::App& app, std::string& path, const std::string& what, bool required = true);
// Adds -f,--force: replace an existing output (in one atomic exchange).
void add_force_flag(CLI::App& app, bool& force);
// Adds -q,--quiet: `what` says what it silences (progress, summary); errors are never silenced.
void add_quiet_flag(CLI::App& app, bool& quiet, const std::string& what = "no progress and no summary on stderr");
// Adds --json: `what` says which document is printed on stdout.
void add_json_flag(CLI::App& app, bool& json, const std::string& what);
// For a file option or argument where a stream makes no sense (data read twice or hashed,
// statistics, a recipe, a directory): "-" is refused at parsing, exit 2, naming the option.
CLI::Validator not_stdin();
// --json and -o - would both write stdout: a usage error, or nothing.
Status json_and_stream(bool json, const std::string& output);

// Sets the "Exit status" section of --help (the footer): 0 ok, `found` for exit 1 (the tools that
// report differences or problems) and 2 errors. run() sets it, without exit 1, where a tool did not.
void set_exit_status(CLI::App& app, const std::string& found = "");

}  // namespace st::cli
