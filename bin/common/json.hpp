// The one way the tools print JSON documents (--json): deterministic, keys in the order built.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace st::cli {

// The document as text ending with a newline: the top level and every container nesting more
// than two levels open, one member per line indented by 2; smaller containers (a tensor, a
// shape, a per-linear row) on one line, with a space after ':' and ','.
std::string json_text(const nlohmann::ordered_json& j);
// Writes json_text(j) on stdout (st::cli::run checks that it was written).
void print_json(const nlohmann::ordered_json& j);

}  // namespace st::cli
