// Reading token-id files (JSONL or raw uint32) and checking them against a model's config.
#include "libst/data/tokens.hpp"

#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "libst/core/paths.hpp"
#include "libst/data/text_data.hpp"
#include "libst/format/checksum.hpp"
#include "libst/text/documents.hpp"
#include "libst/text/lines.hpp"

namespace st::model {

namespace {

Result<TokenData> load_jsonl(const std::string& path, std::istream& in, int64_t seq_len, int64_t samples) {
  TokenData d;
  d.path = path;
  text::LineReader reader(in);
  std::string line;
  for (;;) {
    ST_ASSIGN(bool more, reader.next(line));
    if (!more) break;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "line " + std::to_string(reader.line_number()) + ": ";
    auto seq = text::parse_ids_line(line);
    if (!seq) return make_error(Errc::format, where + seq.error().message, path);
    if (seq_len > 0 && int64_t(seq->size()) > seq_len) seq->resize(size_t(seq_len));
    if (seq->size() < 2) return make_error(Errc::format, where + "a sequence needs at least 2 tokens", path);
    d.seqs.push_back(std::move(*seq));
    if (samples > 0 && int64_t(d.seqs.size()) == samples) break;
  }
  return d;
}

Result<TokenData> load_raw(const std::string& path, std::istream& in, int64_t seq_len, int64_t samples) {
  if (seq_len <= 0) return make_error(Errc::usage, "raw uint32 token files need --seq-len", path);
  if (seq_len < 2) return make_error(Errc::usage, "--seq-len must be at least 2", path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  const uint64_t per = uint64_t(seq_len) * 4;
  if (bytes.size() % per != 0)
    return make_error(Errc::format,
                      "size " + std::to_string(bytes.size()) + " bytes is not a whole number of " +
                          std::to_string(seq_len) + "-token uint32 sequences",
                      path);
  TokenData d;
  d.path = path;
  const uint64_t n = bytes.size() / per;
  for (uint64_t s = 0; s < n && (samples <= 0 || int64_t(s) < samples); ++s) {
    std::vector<int32_t> seq(static_cast<size_t>(seq_len));
    for (int64_t t = 0; t < seq_len; ++t) {
      uint32_t v;
      std::memcpy(&v, bytes.data() + s * per + uint64_t(t) * 4, 4);
      if (v > uint32_t(INT32_MAX))
        return make_error(Errc::format, "sequence " + std::to_string(s) + ": token id " + std::to_string(v) + " is too large",
                          path);
      seq[size_t(t)] = int32_t(v);
    }
    d.seqs.push_back(std::move(seq));
  }
  return d;
}

}  // namespace

bool is_raw_ids_path(const std::string& path) {
  return !ends_with(path, ".jsonl") && !ends_with(path, ".json") && !ends_with(path, ".txt");
}

std::string model_tokenizer(const std::string& model_path) {
  return is_directory(model_path) ? model_path : dir_name(model_path);
}

Result<DataFormat> data_format(const std::string& path) {
  if (ends_with(path, ".txt")) return DataFormat::text_plain;
  if (is_raw_ids_path(path)) return DataFormat::raw_ids;
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::io, std::string("cannot open: ") + std::strerror(errno), path);
  text::LineReader reader(in);
  std::string line;
  for (;;) {
    auto more = reader.next(line);
    if (!more) return std::move(more.error()).in_file(path);
    if (!*more) return DataFormat::ids_jsonl;  // empty: load_tokens says there is nothing
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    const bool text = j.is_object() && j.contains("text") && !j.contains("input_ids");
    return text ? DataFormat::text_jsonl : DataFormat::ids_jsonl;
  }
}

Result<TokenData> load_tokens(const std::string& path, const DataOptions& o) {
  ST_ASSIGN(DataFormat format, data_format(path));
  ST_ASSIGN(uint64_t hash, xxh3_file(path));
  Result<TokenData> d = make_error(Errc::format, "", path);
  if (format == DataFormat::text_jsonl || format == DataFormat::text_plain) {
    d = load_text(path, format == DataFormat::text_jsonl ? text::TextFormat::jsonl : text::TextFormat::plain, o);
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(Errc::io, std::string("cannot open: ") + std::strerror(errno), path);
    d = format == DataFormat::ids_jsonl ? load_jsonl(path, in, o.seq_len, o.samples)
                                        : load_raw(path, in, o.seq_len, o.samples);
  }
  if (!d) return d;
  if (d->seqs.empty()) return make_error(Errc::format, "no token sequences in the data", path);
  if (o.warn && o.samples > int64_t(d->seqs.size()))
    o.warn(path + ": " + std::to_string(o.samples) + " samples asked for, the data holds " +
           std::to_string(d->seqs.size()) + " sequences: using " + std::to_string(d->seqs.size()));
  d->data_hash = hash;
  return d;
}

Result<TokenData> load_tokens(const std::string& path, int64_t seq_len, int64_t samples) {
  DataOptions o;
  o.seq_len = seq_len;
  o.samples = samples;
  return load_tokens(path, o);
}

Status select_part(TokenData& data, StatsPart part) {
  const auto n = int64_t(data.seqs.size());
  if (part.count > n)
    return make_error(Errc::usage, "cannot cut " + std::to_string(n) + " sequences into " + std::to_string(part.count) +
                                       " parts", data.path);
  Xxh3 ids;
  for (const auto& seq : data.seqs) {
    const auto len = int64_t(seq.size());
    ids.update(&len, sizeof len);
    ids.update(seq.data(), seq.size() * sizeof seq[0]);
  }
  // i N / n with the product in 128 bits.
  auto bound = [&](int64_t i) { return int64_t(__int128(i) * n / part.count); };
  const int64_t begin = bound(part.index - 1), end = bound(part.index);
  data.seqs.erase(data.seqs.begin() + end, data.seqs.end());
  data.seqs.erase(data.seqs.begin(), data.seqs.begin() + begin);
  data.part = part;
  data.first = begin;
  data.whole_sequences = n;
  data.whole_ids_hash = ids.digest();
  return {};
}

Status check_tokens(const TokenData& data, const ModelConfig& cfg) {
  for (size_t i = 0; i < data.seqs.size(); ++i) {
    const int64_t s = data.first + int64_t(i);
    const auto& seq = data.seqs[i];
    if (int64_t(seq.size()) > cfg.max_positions)
      return make_error(Errc::usage,
                        "sequence " + std::to_string(s) + " has " + std::to_string(seq.size()) +
                            " tokens, more than max_position_embeddings (" + std::to_string(cfg.max_positions) + ")" +
                            (data.tokenizer.empty() ? "" : ": --seq-len packs text into shorter sequences"),
                        data.path);
    for (size_t t = 0; t < seq.size(); ++t)
      if (seq[t] >= cfg.vocab)
        return make_error(Errc::usage,
                          "sequence " + std::to_string(s) + ": token id " + std::to_string(seq[t]) + " at position " +
                              std::to_string(t) + " is not below the vocabulary size " + std::to_string(cfg.vocab),
                          data.path);
  }
  return {};
}

}  // namespace st::model
