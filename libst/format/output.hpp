// The output policy, one owner for every tool: what -o may name, when an output may be replaced,
// and how it is put in place.
//
// open_output(request) checks and claims the output before any work is done:
//  - "-" is stdout, only where the tool can write a stream (one safetensors file), and never to a
//    terminal; for a tool that writes a directory it is a usage error.
//  - the output must not be an input, contain one or lie inside one, however either is spelled
//    (symlinks, hard links, "..", trailing slashes): paths are compared with every symlink
//    resolved, and files and directories by device and inode.
//  - an exclusive lock (flock on DIR/.NAME.st-lock) is held until the Output is destroyed: a second
//    run into the same output fails at once (Errc::busy).
//  - what an interrupted run into the same output left is cleaned first (an unfinished
//    replacement completed or rolled back, its temporaries removed), each step reported by `note`.
//  - an existing output without force is Errc::exists; commit() checks again.
// The work goes into a hidden temporary beside the output, DIR/.NAME.st-tmp-<pid>: a directory
// output is that directory; a file output is the file NAME inside it (with companions such as
// NAME.xxh3). commit() puts it in place with renameat2(RENAME_NOREPLACE), or, replacing an
// existing output (force), renameat2(RENAME_EXCHANGE) and then removes the old one: the output is
// always the complete old one or the complete new one. Where the file system lacks renameat2, the
// replacement is two renames recorded in DIR/.NAME.st-journal, which the next run into the
// output completes or rolls back. The temporary is removed on error, on destruction and on
// SIGINT/SIGTERM/SIGHUP (libst/format/temporaries.hpp). Errors name the output as the user typed
// it, never the temporary (shown_path).
//
// Test hooks (environment, read by commit(); used by tests/cli/output_signals.sh):
//   ST_TEST_COMMIT_PAUSE_MS=N      sleep N ms before and between the steps of every commit
//   ST_TEST_NO_RENAME_EXCHANGE=1   replace through the journaled two renames, as without renameat2
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "libst/core/error.hpp"
#include "libst/format/output_file.hpp"
#include "libst/format/temporaries.hpp"

namespace st {

struct OutputRequest {
  std::string path;                 // -o as the user typed it; "-" is stdout
  bool stream = false;              // "-" is allowed: the tool can write one safetensors stream
  bool force = false;               // -f: an existing output may be replaced
  std::vector<std::string> inputs;  // every file or directory the run reads ("" and "-" skipped)
  WarnFn note;                      // what was cleaned up from an interrupted run
};

class Output {
 public:
  ~Output();  // removes what was not committed, then releases the lock
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  const std::string& path() const { return typed_; }
  bool is_stdout() const { return stdout_; }
  // Makes this a file output: the path to write it to ("-" for stdout). Files named
  // "<that path>.<suffix>" written beside it are companions, committed with it.
  std::string file();
  // Makes this a directory output: the (temporary) directory to fill. Not for stdout.
  const std::string& directory();
  // Puts the output in place (see the header comment). For stdout: nothing to do.
  Status commit();

 private:
  friend Result<std::unique_ptr<Output>> open_output(const OutputRequest& request);
  Output() = default;
  Status claim(const WarnFn& note);
  void recover_journal(const WarnFn& note);
  Status install(const std::string& from);
  Status replace_in_two_steps(const std::string& from);
  std::string sibling(const std::string& suffix) const;  // DIR/.NAME<suffix>
  Error io_error(const std::string& what) const;

  std::string typed_, parent_, name_, final_, temp_;
  bool stdout_ = false, force_ = false, committed_ = false, as_file_ = false;
  int lock_fd_ = -1, temp_slot_ = -1, lock_slot_ = -1;
};

Result<std::unique_ptr<Output>> open_output(const OutputRequest& request);

// A path inside an open output's temporary, as the user would name it (the -o path they typed
// in place of the temporary); any other path unchanged.
std::string shown_path(const std::string& path);

}  // namespace st
