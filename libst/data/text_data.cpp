// Loading text data through the tokenizer; recording and finding again where data came from.
#include "libst/data/text_data.hpp"

#include <cstdlib>
#include <cstring>
#include <fstream>

#include "libst/core/parallel.hpp"
#include "libst/core/paths.hpp"
#include "libst/format/checksum.hpp"
#include "libst/text/pack.hpp"
#include "libst/text/stream.hpp"

namespace st::model {

namespace {

std::string real_path(const std::string& path) {
  char* full = realpath(path.c_str(), nullptr);
  if (!full) return path;
  std::string out = full;
  std::free(full);
  return out;
}

// "key" of md as a hash, or nullopt.
std::optional<uint64_t> hash_of(const Metadata& md, const char* key) {
  auto it = md.find(key);
  return it == md.end() ? std::nullopt : parse_xxh3_hex(it->second);
}

// Why the file at `path` is not the one recorded with hash `want`, or nullopt when it is.
std::optional<std::string> changed(const std::string& path, std::optional<uint64_t> want) {
  if (!is_regular_file(path)) return "does not exist";
  if (!want) return std::nullopt;  // statistics from before hashes were recorded
  auto h = xxh3_file(path);
  if (!h) return h.error().message;
  if (*h != *want) return "has changed since it was read (its XXH3 is not the one recorded)";
  return std::nullopt;
}

}  // namespace

Result<TokenData> load_text(const std::string& path, text::TextFormat format, const DataOptions& o) {
  if (o.tokenizer.empty())
    return make_error(Errc::usage, "text data needs a tokenizer (--tokenizer PATH)", path);
  auto tok = text::Tokenizer::load(o.tokenizer);
  if (!tok) {
    Error e = tok.error();
    e.message += " (text data is tokenized with the model's tokenizer.json; --tokenizer names another)";
    return e;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::io, std::string("cannot open: ") + std::strerror(errno), path);
  TokenData d;
  d.path = path;
  d.tokenizer = (*tok)->path();
  ST_ASSIGN(d.tokenizer_hash, xxh3_file(d.tokenizer));
  d.packed = o.seq_len;
  const bool pack = o.seq_len > 0;
  const auto separator = pack ? text::document_separator(**tok, true) : std::vector<int32_t>();
  text::Packer packer(size_t(std::max<int64_t>(o.seq_len, 1)));
  int64_t tokens = 0;
  auto full = [&] { return o.samples > 0 && int64_t(d.seqs.size()) >= o.samples; };
  auto work = [&](text::LineJob& job) { text::encode_line(**tok, format, true, separator, true, job); };
  auto sink = [&](text::LineJob& job) -> Result<bool> {
    tokens += int64_t(job.ids.size());
    if (!pack) {
      if (job.ids.size() < 2)
        return make_error(Errc::format, "line " + std::to_string(job.number) + ": " + std::to_string(job.ids.size()) +
                                            " token; a sequence needs at least 2 (--seq-len packs documents together)");
      d.seqs.push_back(std::move(job.ids));
    } else {
      for (auto& seq : packer.add(job.ids))
        if (!full()) d.seqs.push_back(std::move(seq));
    }
    return !full();
  };
  text::LineReader reader(in);
  Status s = text::map_lines(reader, work, sink);
  if (!s) return std::move(s.error()).in_file(path);
  if (pack && d.seqs.empty())
    return make_error(Errc::format, "the text holds " + std::to_string(tokens) + " tokens, fewer than one " +
                                        std::to_string(o.seq_len) + "-token sequence", path);
  return d;
}

void record_provenance(const TokenData& data, Metadata& md) {
  md["st.stats.data"] = real_path(data.path);
  md["st.stats.data_xxh3"] = xxh3_hex(data.data_hash);
  if (data.part.count > 0) {
    md[kStatsPartKey] = stats_part_text(data.part);
    md[kStatsPartSequencesKey] = std::to_string(data.whole_sequences);
    md[kStatsPartIdsKey] = xxh3_hex(data.whole_ids_hash);
  }
  if (data.tokenizer.empty()) return;
  md["st.stats.tokenizer"] = real_path(data.tokenizer);
  md["st.stats.tokenizer_xxh3"] = xxh3_hex(data.tokenizer_hash);
  md["st.stats.pack"] = std::to_string(data.packed);
}

Result<std::optional<RecordedData>> recorded_data(const Metadata& md) {
  auto it = md.find("st.stats.data");
  if (it == md.end()) return std::optional<RecordedData>();
  if (auto part = md.find(kStatsPartKey); part != md.end())
    return make_error(Errc::usage, "these statistics are part " + part->second +
                                       " of a calibration run, not of all its data (merge the parts: st-calibrate --merge)");
  if (auto why = changed(it->second, hash_of(md, "st.stats.data_xxh3")))
    return make_error(Errc::io, "the calibration data these statistics name, '" + it->second + "', " + *why);
  RecordedData r;
  r.path = it->second;
  if (md.count("st.stats.samples")) r.options.samples = std::atoll(md.at("st.stats.samples").c_str());
  auto tok = md.find("st.stats.tokenizer");
  if (tok == md.end()) {
    // Ids: the longest sequence recorded cuts nothing from JSONL and is the length of raw data.
    if (md.count("st.stats.seq_len")) r.options.seq_len = std::atoll(md.at("st.stats.seq_len").c_str());
    return std::optional<RecordedData>(std::move(r));
  }
  if (auto why = changed(tok->second, hash_of(md, "st.stats.tokenizer_xxh3")))
    return make_error(Errc::io, "the tokenizer these statistics name, '" + tok->second + "', " + *why);
  r.options.tokenizer = tok->second;
  if (md.count("st.stats.pack")) r.options.seq_len = std::atoll(md.at("st.stats.pack").c_str());
  return std::optional<RecordedData>(std::move(r));
}

}  // namespace st::model
