// JSON text for the tools' --json output: small containers on one line, the rest indented.
#include "bin/common/json.hpp"

#include <algorithm>
#include <cstdio>

namespace st::cli {
namespace {

using ojson = nlohmann::ordered_json;

int json_height(const ojson& j) {
  if (!j.is_structured()) return 0;
  int h = 0;
  for (const auto& v : j) h = std::max(h, json_height(v));
  return h + 1;
}

// One line with a space after ':' and ',' (nlohmann's dump() has none).
void dump_compact(const ojson& j, std::string& out) {
  if (!j.is_structured()) {
    out += j.dump();
    return;
  }
  const bool obj = j.is_object();
  out += obj ? '{' : '[';
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    out += first ? "" : ", ";
    first = false;
    if (obj) out += ojson(it.key()).dump() + ": ";
    dump_compact(it.value(), out);
  }
  out += obj ? '}' : ']';
}

void dump_pretty(const ojson& j, int indent, std::string& out) {
  if (j.empty() || (indent > 0 && json_height(j) <= 2) || !j.is_structured()) {
    dump_compact(j, out);
    return;
  }
  const std::string pad(static_cast<size_t>(indent + 2), ' ');
  const bool obj = j.is_object();
  out += obj ? "{\n" : "[\n";
  size_t i = 0;
  for (auto it = j.begin(); it != j.end(); ++it, ++i) {
    out += pad;
    if (obj) out += ojson(it.key()).dump() + ": ";
    dump_pretty(it.value(), indent + 2, out);
    out += i + 1 < j.size() ? ",\n" : "\n";
  }
  out += std::string(static_cast<size_t>(indent), ' ') + (obj ? "}" : "]");
}

}  // namespace

std::string json_text(const nlohmann::ordered_json& j) {
  std::string out;
  dump_pretty(j, 0, out);
  return out + "\n";
}

void print_json(const nlohmann::ordered_json& j) { std::fputs(json_text(j).c_str(), stdout); }

}  // namespace st::cli
