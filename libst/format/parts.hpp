// Tensor-parallel part folders: DIR/part{r}-of-{n}/, one complete checkpoint per rank, ranks
// counted from 0 as MindIE's loader opens them (atb_llm/utils/weights.py: f"part{rank}-of-{world_size}").
//
// The one rule for a valid part set, used by every tool that reads one (Checkpoint, st-shard
// --merge, st-eval, st-compress, st-verify): every entry of DIR named like a part folder
// ("part" digits "-of-" digits) is a directory whose name is canonical (decimal without leading
// zeros, 1 <= n <= kMaxParts, rank < n); all share one n; ranks 0..n-1 are each present once.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "libst/core/error.hpp"

namespace st {

constexpr int kMaxParts = 65536;

struct PartFolder {
  std::string name;  // "part1-of-4"
  int rank = 0, count = 0;
};

// "part{rank}-of-{count}".
std::string part_name(int rank, int count);
// True when the name has the shape of a part folder name, canonical or not.
bool looks_like_part_name(std::string_view name);
// Parses a canonical name; an Errc::format error (no file) says what is wrong with any other.
Result<PartFolder> parse_part_name(std::string_view name);

// What a directory holds in part folders: those that parse, in rank order (then by count), and
// one error (file: DIR/NAME) per entry that looks like a part folder but is not a valid one.
struct PartScan {
  std::vector<PartFolder> folders;
  std::vector<Error> errors;
  bool empty() const { return folders.empty() && errors.empty(); }
};
PartScan scan_part_folders(const std::string& dir);

// The first way a scan breaks the rule (file: the offending or missing folder), or ok.
Status check_part_set(const std::string& dir, const PartScan& scan);

// scan_part_folders + check_part_set: the folders of a valid set, ranks 0..n-1 in order; empty
// when the directory holds nothing that looks like a part folder.
Result<std::vector<PartFolder>> part_folders(const std::string& dir);

}  // namespace st
