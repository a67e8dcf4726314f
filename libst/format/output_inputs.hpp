// Where an output may go: the directory entry a path names, and the refusal of an output that is,
// contains or lies inside one of the run's inputs, however the paths are spelled.
#pragma once

#include <string>
#include <vector>

#include "libst/core/error.hpp"

namespace st {

// A directory entry: its parent directory with every symlink resolved, and its own name as given
// (a symlink there is the entry itself, not its target).
struct PathEntry {
  std::string parent, name;
  std::string path() const { return parent == "/" ? "/" + name : parent + "/" + name; }
};

// The entry `path` names ("a/b/", "a/./b" and "x/../a/b" name the same). Errors name `path`:
// Errc::io when its parent does not exist, Errc::usage for the root directory.
Result<PathEntry> path_entry(const std::string& path);

// Errc::usage, naming `shown` (the output as typed), when replacing the entry `out` would replace,
// delete or write into any of `inputs` ("" and "-" are skipped; so are inputs that do not exist).
Status refuse_inputs(const PathEntry& out, const std::vector<std::string>& inputs, const std::string& shown);

}  // namespace st
