// Reading documents and token ids from JSONL / text lines, writing JSONL lines.
#include "libst/text/documents.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "libst/core/paths.hpp"
#include "libst/text/unicode.hpp"

namespace st::text {

namespace {

bool blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

}  // namespace

TextFormat text_format(const std::string& name, std::string_view first_line) {
  if (ends_with(name, ".jsonl") || ends_with(name, ".json")) return TextFormat::jsonl;
  if (ends_with(name, ".txt")) return TextFormat::plain;
  const size_t at = first_line.find_first_not_of(" \t");
  if (at == std::string_view::npos || first_line[at] != '{') return TextFormat::plain;
  return nlohmann::json::accept(first_line.begin(), first_line.end()) ? TextFormat::jsonl : TextFormat::plain;
}

Result<bool> document_text(std::string_view line, TextFormat format, std::string& text) {
  const size_t bad = invalid_utf8_at(line);
  if (bad != std::string_view::npos) return make_error(Errc::format, "invalid UTF-8 at byte " + std::to_string(bad));
  if (format == TextFormat::plain) {
    text.assign(line);
    return true;
  }
  if (blank(line)) return false;
  const auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) return make_error(Errc::format, "not valid JSON");
  if (!j.is_object()) return make_error(Errc::format, "not a JSON object with a \"text\" string");
  auto it = j.find("text");
  if (it == j.end() || !it->is_string()) return make_error(Errc::format, "no \"text\" string");
  text = it->get<std::string>();
  return true;
}

Result<std::vector<int32_t>> parse_ids_line(std::string_view line) {
  const auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded()) return make_error(Errc::format, "not valid JSON");
  const nlohmann::json* ids = &j;
  if (j.is_object()) {
    auto it = j.find("input_ids");
    if (it == j.end()) return make_error(Errc::format, "no \"input_ids\" array");
    ids = &*it;
  }
  if (!ids->is_array()) return make_error(Errc::format, "\"input_ids\" is not an array");
  std::vector<int32_t> out;
  out.reserve(ids->size());
  for (const auto& v : *ids) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      return make_error(Errc::format, "token ids must be non-negative integers");
    out.push_back(int32_t(v.get<int64_t>()));
  }
  return out;
}

void append_ids_json(std::string& out, const std::vector<int32_t>& ids, size_t begin, size_t end) {
  end = std::min(end, ids.size());
  out += "{\"input_ids\": [";
  char digits[16];
  for (size_t i = begin; i < end; ++i) {
    if (i > begin) out += ", ";
    auto v = uint32_t(ids[i]);
    int n = 0;
    do digits[n++] = char('0' + v % 10), v /= 10;
    while (v);
    while (n) out += digits[--n];
  }
  out += "]}";
}

void append_text_json(std::string& out, std::string_view text) {
  out += "{\"text\": ";
  out += nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out += '}';
}

}  // namespace st::text
