// What the files of libst/inspect share and do not export: the --filter match, the diff's
// closing line and its groups as JSON.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "libst/core/error.hpp"

namespace st {

// True when there is no --filter glob or it matches the whole name (st::glob_match: the rule
// --float and --scheme select linears by).
bool keep(const std::string& glob, const std::string& name);

struct CheckpointDiff;
// "different: N only in A, ..., K description keys changed[, V values differ]" (no newline).
std::string different_line(const CheckpointDiff& d);
// format_diff_summary's groups: [{"kind", "what", "count", "layers", "outside_layers"}, ...].
nlohmann::ordered_json diff_summary_json(const CheckpointDiff& d);

}  // namespace st
