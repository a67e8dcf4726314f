// Small path and filesystem helpers shared across libst: stat tests, sorted listings,
// whole-file reads, path-name pieces, and the one glob rule names are matched by.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "libst/core/error.hpp"

namespace st {

bool is_directory(const std::string& path);
bool is_regular_file(const std::string& path);
bool path_exists(const std::string& path);
// Permission bits (rwx for user, group, other) of a file, symlinks followed; 0644 when unreadable.
mode_t file_mode(const std::string& path);
// Entry names of a directory, sorted, without hidden ones ("."-prefixed); empty if unreadable.
std::vector<std::string> list_directory(const std::string& dir);
// Opens a regular file for reading (symlinks followed) without ever blocking: a FIFO, device,
// socket or directory is an Errc::io error naming the path, never a hang on /dev/zero or a pipe.
// Returns the descriptor (O_CLOEXEC, blocking reads), which the caller closes.
Result<int> open_regular(const std::string& path);
// A whole regular file's bytes (open_regular's rules); an Errc::io error naming the path.
Result<std::string> read_file_text(const std::string& path);
bool ends_with(std::string_view s, std::string_view suffix);
// "a/b/c" -> "c" (trailing slashes ignored), "a/b/c" -> "a/b", "c" -> ".", "/c" -> "/".
std::string base_name(const std::string& path);
std::string dir_name(const std::string& path);
// fnmatch(3) on the whole name, '*' crossing dots (no FNM_PATHNAME): how every tool matches tensor and
// linear names (--float, --scheme, recipes, st-inspect --filter).
bool glob_match(const std::string& glob, const std::string& name);

}  // namespace st
