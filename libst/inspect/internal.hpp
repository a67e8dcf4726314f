// What the files of libst/inspect share and do not export: the --filter regex, the diff's
// closing line and its groups as JSON.
#pragma once

#include <optional>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "libst/core/error.hpp"

namespace st {

// The --filter regex (ECMAScript, searched); nullopt for an empty pattern, or, with *err set,
// for an invalid one.
std::optional<std::regex> compile_filter(const std::string& pattern, Error* err);
// True when there is no filter or it finds something in name.
bool keep(const std::optional<std::regex>& re, const std::string& name);

struct CheckpointDiff;
// "different: N only in A, ..., K description keys changed[, V values differ]" (no newline).
std::string different_line(const CheckpointDiff& d);
// format_diff_summary's groups: [{"kind", "what", "count", "layers", "outside_layers"}, ...].
nlohmann::ordered_json diff_summary_json(const CheckpointDiff& d);

}  // namespace st
