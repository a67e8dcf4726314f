// Folding activation statistics together, and merging the parts of one calibration run.
#include "libst/format/stats_merge.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <set>

#include "libst/format/safetensors.hpp"

namespace st {
namespace {

// Keys that describe one part's slice or one host's paths, not the run: they may differ.
const std::set<std::string> kPerPartKeys = {"st.stats.samples", "st.stats.seq_len", "st.stats.model",
                                            "st.stats.data", "st.stats.tokenizer", kStatsPartKey};

Status merge_linear(LinearStats& a, const LinearStats& b, const std::string& path, const std::string& name) {
  if (a.absmax.size() != b.absmax.size())
    return make_error(Errc::format,
                      "statistics of " + std::to_string(b.absmax.size()) + " input channels, " +
                          std::to_string(a.absmax.size()) + " in those it merges with: another model?",
                      path, name);
  if (a.chmin.size() != b.chmin.size())
    return make_error(Errc::format, "per-channel ranges in only one of the statistics it merges with", path, name);
  a.min = std::min(a.min, b.min), a.max = std::max(a.max, b.max);
  for (size_t c = 0; c < a.absmax.size(); ++c) {
    a.absmax[c] = std::max(a.absmax[c], b.absmax[c]);
    a.sumsq[c] += b.sumsq[c];
  }
  for (size_t c = 0; c < a.chmin.size(); ++c) {
    a.chmin[c] = std::min(a.chmin[c], b.chmin[c]);
    a.chmax[c] = std::max(a.chmax[c], b.chmax[c]);
  }
  a.tokens += b.tokens;
  return Status{};
}

int64_t metadata_int(const Metadata& md, const std::string& key) {
  const auto it = md.find(key);
  return it == md.end() ? 0 : std::atoll(it->second.c_str());
}

}  // namespace

Status merge_stats(ActivationStats& into, ActivationStats&& from, const std::string& from_path) {
  for (auto& [name, b] : from.linears) {
    auto [it, fresh] = into.linears.try_emplace(name, std::move(b));
    if (!fresh) ST_CHECK(merge_linear(it->second, b, from_path, name));
  }
  for (auto& [name, b] : from.extra) {
    auto [it, fresh] = into.extra.try_emplace(name, std::move(b));
    if (fresh) {
      into.extra_shapes[name] = from.extra_shapes[name];
      continue;
    }
    if (it->second.size() != b.size() || into.extra_shapes[name] != from.extra_shapes[name])
      return make_error(Errc::format, "statistics tensor has another shape than the one it merges with", from_path,
                        name);
    for (size_t i = 0; i < b.size(); ++i) it->second[i] = std::max(it->second[i], b[i]);
  }
  return Status{};
}

Result<StatsPart> parse_stats_part(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return make_error(Errc::usage, "part '" + text + "' " + why);
  };
  const size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size() ||
      text.find_first_not_of("0123456789/") != std::string::npos || text.find('/', slash + 1) != std::string::npos)
    return bad("is not of the form i/n (for example 2/8)");
  errno = 0;
  StatsPart p{std::strtoll(text.c_str(), nullptr, 10), std::strtoll(text.c_str() + slash + 1, nullptr, 10)};
  if (errno == ERANGE || p.count < 1) return bad("needs a count n of at least 1");
  if (p.index < 1 || p.index > p.count) return bad("needs i from 1 to n");
  return p;
}

std::string stats_part_text(StatsPart part) {
  return std::to_string(part.index) + "/" + std::to_string(part.count);
}

namespace {

struct PartFile {
  std::string path;
  Metadata metadata;
};

// The parts' headers, by index: every part of one split there once, with the same sequences and
// settings. Reads no tensor.
Result<std::map<int64_t, PartFile>> read_parts(const std::vector<std::string>& paths) {
  if (paths.empty()) return make_error(Errc::usage, "no statistics files to merge");
  std::map<int64_t, PartFile> parts;
  int64_t count = 0;
  for (const auto& path : paths) {
    ST_ASSIGN(auto file, SafetensorsFile::open(path));
    const Metadata& md = file->header().metadata;
    const auto it = md.find(kStatsPartKey);
    if (it == md.end())
      return make_error(Errc::usage, "not the statistics of a part (st-calibrate --part i/n writes them)", path);
    auto p = parse_stats_part(it->second);
    if (!p) return std::move(p.error()).in_file(path);
    if (count == 0) count = p->count;
    if (p->count != count)
      return make_error(Errc::usage,
                        "part " + it->second + " of another split than '" + parts.begin()->second.path + "' (" +
                            std::to_string(count) + " parts)",
                        path);
    const auto [at, fresh] = parts.try_emplace(p->index, PartFile{path, md});
    if (!fresh)
      return make_error(Errc::usage, "part " + it->second + " is given twice, also as '" + at->second.path + "'", path);
  }
  for (int64_t i = 1; i <= count; ++i)
    if (!parts.count(i))
      return make_error(Errc::usage, "part " + stats_part_text({i, count}) + " is missing (" +
                                         std::to_string(parts.size()) + " of " + std::to_string(count) + " given)");
  const PartFile& first = parts.at(1);
  for (const auto& [index, part] : parts) {
    std::set<std::string> keys;
    for (const auto* md : {&first.metadata, &part.metadata})
      for (const auto& [k, v] : *md) keys.insert(k);
    for (const auto& k : keys)
      if (!kPerPartKeys.count(k) &&
          (!first.metadata.count(k) || !part.metadata.count(k) || first.metadata.at(k) != part.metadata.at(k)))
        return make_error(Errc::usage,
                          "part " + stats_part_text({index, count}) + " differs from part 1 ('" + first.path + "') in " +
                              k + ": not parts of one run",
                          part.path);
  }
  return parts;
}

}  // namespace

Result<ActivationStats> merge_stats_parts(const std::vector<std::string>& paths) {
  ST_ASSIGN(const auto parts, read_parts(paths));
  const PartFile& first = parts.at(1);
  ActivationStats merged;
  int64_t samples = 0, longest = 0;
  for (const auto& [index, part] : parts) {
    ST_ASSIGN(auto s, load_stats(part.path));
    samples += metadata_int(s.metadata, "st.stats.samples");
    longest = std::max(longest, metadata_int(s.metadata, "st.stats.seq_len"));
    ST_CHECK(merge_stats(merged, std::move(s), part.path));
  }
  const int64_t split = metadata_int(first.metadata, kStatsPartSequencesKey);
  if (samples != split)
    return make_error(Errc::format,
                      "the parts hold " + std::to_string(samples) + " sequences, their split " + std::to_string(split),
                      first.path);
  merged.metadata = first.metadata;
  for (const char* key : {kStatsPartKey, kStatsPartSequencesKey, kStatsPartIdsKey}) merged.metadata.erase(key);
  merged.metadata["st.stats.samples"] = std::to_string(samples);
  merged.metadata["st.stats.seq_len"] = std::to_string(longest);
  return merged;
}

}  // namespace st
