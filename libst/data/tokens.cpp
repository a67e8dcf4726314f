// Reading token-id files (JSONL or raw uint32) and checking them against a model's config.
#include "libst/data/tokens.hpp"
#include "libst/core/paths.hpp"

#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace st::model {

namespace {

Result<TokenData> load_jsonl(const std::string& path, std::istream& in, int64_t seq_len, int64_t samples) {
  TokenData d;
  d.path = path;
  std::string line;
  for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "line " + std::to_string(lineno) + ": ";
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return make_error(Errc::format, where + "not valid JSON", path);
    const nlohmann::json* ids = &j;
    if (j.is_object()) {
      auto it = j.find("input_ids");
      if (it == j.end()) return make_error(Errc::format, where + "no \"input_ids\" array", path);
      ids = &*it;
    }
    if (!ids->is_array()) return make_error(Errc::format, where + "\"input_ids\" is not an array", path);
    std::vector<int32_t> seq;
    for (const auto& v : *ids) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
        return make_error(Errc::format, where + "token ids must be non-negative integers", path);
      seq.push_back(int32_t(v.get<int64_t>()));
    }
    if (seq_len > 0 && int64_t(seq.size()) > seq_len) seq.resize(size_t(seq_len));
    if (seq.size() < 2) return make_error(Errc::format, where + "a sequence needs at least 2 tokens", path);
    d.seqs.push_back(std::move(seq));
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

bool is_jsonl_path(const std::string& path) { return ends_with(path, ".jsonl") || ends_with(path, ".json"); }

Result<TokenData> load_tokens(const std::string& path, int64_t seq_len, int64_t samples) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::io, std::string("cannot open: ") + std::strerror(errno), path);
  Result<TokenData> d = is_jsonl_path(path) ? load_jsonl(path, in, seq_len, samples)
                                                                                : load_raw(path, in, seq_len, samples);
  if (!d) return d;
  if (d->seqs.empty()) return make_error(Errc::format, "no token sequences in the data", path);
  return d;
}

Status check_tokens(const TokenData& data, const ModelConfig& cfg) {
  for (size_t s = 0; s < data.seqs.size(); ++s) {
    const auto& seq = data.seqs[s];
    if (int64_t(seq.size()) > cfg.max_positions)
      return make_error(Errc::usage,
                        "sequence " + std::to_string(s) + " has " + std::to_string(seq.size()) +
                            " tokens, more than max_position_embeddings (" + std::to_string(cfg.max_positions) + ")",
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
