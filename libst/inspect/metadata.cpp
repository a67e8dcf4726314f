// st-inspect --metadata: every weight file's __metadata__, as text and JSON.
#include <nlohmann/json.hpp>

#include "libst/core/paths.hpp"
#include "libst/inspect/inspect.hpp"
#include "libst/inspect/internal.hpp"

namespace st {
namespace {

void collect(const Checkpoint& c, const std::string& prefix, const std::string& glob,
             std::vector<FileMetadata>& out) {
  if (c.layout() == Layout::parts) {
    for (const auto& p : c.parts()) collect(*p, prefix + base_name(p->path()) + "/", glob, out);
    return;
  }
  for (size_t i = 0; i < c.files().size(); ++i) {
    FileMetadata f{prefix + base_name(c.files()[i]), {}, c.header(i).metadata.size()};
    for (const auto& [k, v] : c.header(i).metadata)
      if (keep(glob, k)) f.metadata[k] = v;
    out.push_back(std::move(f));
  }
}

// A value as it is, or as a JSON string when it holds a line break or another control character
// (st.file.* entries carry whole files), so that every key stays on one line.
std::string one_line(const std::string& v) {
  for (unsigned char ch : v)
    if (ch < 0x20 || ch == 0x7f) return nlohmann::json(v).dump();
  return v;
}

}  // namespace

Result<std::vector<FileMetadata>> file_metadata(const Checkpoint& ckpt, const std::string& filter) {
  const std::string& glob = filter;
  std::vector<FileMetadata> out;
  collect(ckpt, "", glob, out);
  return out;
}

std::string format_metadata(const std::vector<FileMetadata>& files) {
  std::string out;
  for (const auto& f : files) {
    if (files.size() > 1) out += (out.empty() ? "== " : "\n== ") + f.file + " ==\n";
    if (f.keys == 0) out += "(no __metadata__)\n";
    else if (f.metadata.empty()) out += "(no key matches --filter)\n";
    for (const auto& [k, v] : f.metadata) out += k + ": " + one_line(v) + "\n";
  }
  return out;
}

nlohmann::ordered_json metadata_json(const std::string& path, const std::vector<FileMetadata>& files) {
  nlohmann::ordered_json j;
  j["path"] = path;
  j["files"] = nlohmann::ordered_json::array();
  for (const auto& f : files) j["files"].push_back({{"file", f.file}, {"metadata", f.metadata}});
  return j;
}

}  // namespace st
