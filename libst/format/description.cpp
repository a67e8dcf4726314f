// Loading, writing and comparing quant_model_description.json.
#include "libst/format/description.hpp"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace st {

const char* const kQuantTypes[] = {"FLOAT", "W8A8", "W8A8S", "W8A8SC", "W8A8_DYNAMIC", "FAQuant", "C8", nullptr};

bool is_quant_type(std::string_view s) {
  for (const char* const* t = kQuantTypes; *t; ++t)
    if (s == *t) return true;
  return false;
}

namespace {
// Keys that are description-wide, not tensors. "<attn>.quant_type" is FAKQuant's marker.
bool is_top_level_key(std::string_view key, std::string_view value) {
  if (key == "model_quant_type" || key == "fa_quant_type" || key == "kv_quant_type" || key == "version" ||
      key == "reduce_quant_type" || key == "kv_cache_type" || key == "group_size")
    return true;
  constexpr std::string_view suffix = ".quant_type";
  if (key.size() > suffix.size() && key.substr(key.size() - suffix.size()) == suffix) return true;
  return !is_quant_type(value);
}
}  // namespace

namespace {
// Collects a flat JSON object's members in document order (a repeated key keeps its first place
// and its last value, as nlohmann::ordered_json does) without ordered_json's linear key search
// per member, which made parsing quadratic: 40 s for a 130k-entry description.
struct FlatObject : nlohmann::json_sax<nlohmann::json> {
  std::vector<std::pair<std::string, std::string>> members;
  std::map<std::string, size_t> index;
  int depth = 0;
  std::string key_, error;
  bool root_object = false;

  bool value(std::string v) {
    if (depth != 1) return fail_root();
    auto [it, fresh] = index.emplace(key_, members.size());
    if (fresh) members.emplace_back(key_, std::move(v));
    else members[it->second].second = std::move(v);
    return true;
  }
  bool not_string() {
    if (depth != 1) return fail_root();
    error = "description value of '" + key_ + "' is not a string";
    return false;
  }
  bool fail_root() {
    error = "description is not a JSON object";
    return false;
  }
  bool null() override { return not_string(); }
  bool boolean(bool b) override { return value(b ? "true" : "false"); }
  bool number_integer(number_integer_t v) override { return value(std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return value(std::to_string(v)); }
  bool number_float(number_float_t, const string_t&) override { return not_string(); }
  bool string(string_t& v) override { return value(v); }
  bool binary(binary_t&) override { return not_string(); }
  bool start_object(std::size_t) override {
    if (depth == 0) {
      root_object = true;
      ++depth;
      return true;
    }
    return not_string();
  }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool end_object() override {
    --depth;
    return true;
  }
  bool start_array(std::size_t) override { return depth == 0 ? fail_root() : not_string(); }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error = std::string("description is not valid JSON: ") + e.what();
    return false;
  }
};
}  // namespace

Result<Description> Description::parse(std::string_view text) {
  FlatObject flat;
  nlohmann::json::sax_parse(text.begin(), text.end(), &flat);
  if (!flat.error.empty()) return make_error(Errc::format, flat.error);
  if (!flat.root_object) return make_error(Errc::format, "description is not a JSON object");
  Description d;
  for (auto& [key, value] : flat.members) {
    if (is_top_level_key(key, value)) d.set_top(key, value);
    else d.set_type(key, value);
  }
  if (!d.top("model_quant_type")) return make_error(Errc::format, "description has no 'model_quant_type'");
  return d;
}

Result<Description> Description::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::io, "cannot open description", path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto d = parse(ss.str());
  if (!d) return std::move(d.error()).in_file(path);
  return d;
}

std::string Description::dump() const {
  // The text nlohmann::ordered_json::dump(2) gives for the same members (a key in both lists
  // keeps its top-level place and takes the tensor value), written directly: building an
  // ordered_json costs a linear key search per member, quadratic for 100k-tensor descriptions.
  if (top_.empty() && tensors_.empty()) return "{}\n";
  std::string out = "{\n";
  bool first = true;
  auto member = [&](const std::string& k, const std::string& v) {
    if (!first) out += ",\n";
    first = false;
    out += "  " + nlohmann::json(k).dump() + ": " + nlohmann::json(v).dump();
  };
  for (const auto& [k, v] : top_) {
    const auto t = tensor_index_.find(k);
    member(k, t == tensor_index_.end() ? v : tensors_[t->second].second);
  }
  for (const auto& [k, v] : tensors_)
    if (!top_index_.count(k)) member(k, v);
  return out + "\n}\n";
}

std::optional<std::string> Description::top(std::string_view key) const {
  const auto it = top_index_.find(key);
  if (it == top_index_.end()) return std::nullopt;
  return top_[it->second].second;
}

void Description::set_top(const std::string& key, const std::string& value) {
  const auto it = top_index_.find(key);
  if (it != top_index_.end()) {
    top_[it->second].second = value;
    return;
  }
  top_index_[key] = top_.size();
  top_.emplace_back(key, value);
}

std::optional<std::string> Description::type_of(std::string_view tensor) const {
  const auto it = tensor_index_.find(tensor);
  if (it == tensor_index_.end()) return std::nullopt;
  return tensors_[it->second].second;
}

void Description::set_type(const std::string& tensor, const std::string& type) {
  const auto it = tensor_index_.find(tensor);
  if (it != tensor_index_.end()) {
    tensors_[it->second].second = type;
    return;
  }
  tensor_index_[tensor] = tensors_.size();
  tensors_.emplace_back(tensor, type);
}

DescriptionDiff compare(const Description& a, const Description& b) {
  DescriptionDiff d;
  for (const auto& [name, type] : a.tensor_entries()) {
    const auto other = b.type_of(name);
    if (!other) d.only_a.push_back(name);
    else if (*other != type) d.changed_type.push_back({name, {type, *other}});
  }
  for (const auto& [name, type] : b.tensor_entries())
    if (!a.type_of(name)) d.only_b.push_back(name);
  for (const auto& [key, value] : a.top_entries()) {
    const auto other = b.top(key);
    if (!other || *other != value) d.changed_top.push_back({key, {value, other.value_or("")}});
  }
  for (const auto& [key, value] : b.top_entries())
    if (!a.top(key)) d.changed_top.push_back({key, {"", value}});
  return d;
}

}  // namespace st
