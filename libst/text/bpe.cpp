// BPE: symbols from characters (or byte-level bytes), then the lowest-ranked adjacent pair is
// merged until none is left — HF tokenizers' Word::merge_all, including its unknown-token and
// byte-fallback order — with a per-thread cache of pre-tokens already seen.
#include "libst/text/bpe.hpp"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

#include "libst/text/unicode.hpp"

namespace st::text {

namespace {

uint64_t hash_bytes(std::string_view s) { return XXH3_64bits(s.data(), s.size()); }

size_t table_size_for(size_t n) {
  size_t size = 16;
  while (size < n * 2) size <<= 1;
  return size;
}

constexpr uint64_t kEmptyKey = ~uint64_t(0);
constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581, SentencePiece's word mark

// The first U+2581 at or after `from` (> 0) that follows another character, or npos.
size_t next_metaspace_run(std::string_view s, size_t from) {
  for (size_t at = s.find(kMetaspace, from); at != std::string_view::npos; at = s.find(kMetaspace, at + 1))
    if (at < 3 || s.compare(at - 3, 3, kMetaspace) != 0) return at;
  return std::string_view::npos;
}

// Pre-tokens already merged, per thread (HF keeps the same kind of cache). Entries are only added
// until the cache is full; a different model on the same thread starts it afresh.
struct PieceCache {
  static constexpr size_t kMaxEntries = size_t(1) << 18;
  static constexpr size_t kMaxKey = 256;  // HF's MAX_LENGTH: longer pre-tokens are not cached
  struct Entry {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, ids_len;
  };
  uint64_t owner = 0;
  std::vector<uint32_t> slots;  // entry index + 1; 0 = empty
  std::vector<Entry> entries;
  std::string keys;
  std::vector<int32_t> ids;

  void reset(uint64_t id) {
    owner = id;
    slots.assign(kMaxEntries * 2, 0);
    entries.clear();
    keys.clear();
    ids.clear();
  }
  // The slot where `piece` is or would go.
  size_t probe(std::string_view piece, uint64_t h) const {
    const size_t mask = slots.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const uint32_t e = slots[i];
      if (e == 0) return i;
      const Entry& en = entries[e - 1];
      if (en.hash == h && std::string_view(keys.data() + en.key_off, en.key_len) == piece) return i;
    }
  }
};

PieceCache& piece_cache(uint64_t owner) {
  thread_local PieceCache cache;
  if (cache.owner != owner) cache.reset(owner);
  return cache;
}

std::atomic<uint64_t> g_next_cache_id{1};

}  // namespace

char32_t byte_level_char(unsigned char b) {
  if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) return b;
  // The remaining bytes, in order, map to 256, 257, ...
  char32_t n = 0;
  for (unsigned c = 0; c < b; ++c)
    if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE))) ++n;
  return 256 + n;
}

// A slot holds id + 1 in its low half (0: empty) and the key's hash in its high half, so most
// mismatches are rejected without reading the token.
void VocabIndex::build(const std::vector<std::string>* tokens) {
  tokens_ = tokens;
  slots_.assign(table_size_for(tokens->size()), 0);
  mask_ = slots_.size() - 1;
  for (size_t id = 0; id < tokens->size(); ++id) {
    const std::string& t = (*tokens)[id];
    if (t.empty()) continue;
    const uint64_t h = hash_bytes(t);
    size_t i = h & mask_;
    while (slots_[i] != 0) i = (i + 1) & mask_;
    slots_[i] = (h & 0xFFFFFFFF00000000ULL) | (id + 1);
  }
}

int32_t VocabIndex::find(std::string_view key) const {
  if (key.empty() || slots_.empty()) return -1;
  const uint64_t h = hash_bytes(key);
  for (size_t i = h & mask_;; i = (i + 1) & mask_) {
    const uint64_t slot = slots_[i];
    if (slot == 0) return -1;
    if ((slot >> 32) != (h >> 32)) continue;
    const auto id = int32_t(uint32_t(slot) - 1);
    if ((*tokens_)[size_t(id)] == key) return id;
  }
}

struct Bpe::Symbol {
  int32_t id;
  int32_t prev, next;
  bool removed;
};

const std::string* Bpe::token_of(int32_t id) const {
  if (id < 0 || id >= id_end() || tokens_[size_t(id)].empty()) return nullptr;
  return &tokens_[size_t(id)];
}

Result<std::unique_ptr<Bpe>> Bpe::build(std::vector<std::pair<std::string, int32_t>> vocab,
                       const std::vector<std::pair<std::string, std::string>>& merges, const BpeOptions& options) {
  std::unique_ptr<Bpe> owned(new Bpe());
  Bpe& m = *owned;
  m.options_ = options;
  m.cache_id_ = g_next_cache_id++;
  int32_t end = 0;
  for (const auto& [tok, id] : vocab) {
    if (id < 0) return make_error(Errc::format, "vocab: token '" + tok + "' has a negative id");
    end = std::max(end, id + 1);
  }
  m.tokens_.resize(size_t(end));
  for (auto& [tok, id] : vocab) {
    if (tok.empty()) return make_error(Errc::format, "vocab: empty token (id " + std::to_string(id) + ")");
    if (!m.tokens_[size_t(id)].empty())
      return make_error(Errc::format, "vocab: tokens '" + m.tokens_[size_t(id)] + "' and '" + tok + "' share id " +
                                          std::to_string(id));
    m.tokens_[size_t(id)] = std::move(tok);
  }
  m.entries_ = vocab.size();
  m.index_.build(&m.tokens_);

  m.merges_.assign(table_size_for(merges.size()), MergeSlot{kEmptyKey, 0});
  m.merge_mask_ = m.merges_.size() - 1;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const int32_t ia = m.index_.find(a), ib = m.index_.find(b), im = m.index_.find(a + b);
    const std::string& missing = ia < 0 ? a : ib < 0 ? b : a + b;
    if (ia < 0 || ib < 0 || im < 0)
      return make_error(Errc::format, "merges: rank " + std::to_string(rank) + " ('" + a + " " + b + "'): '" + missing +
                                          "' is not in the vocabulary");
    const uint64_t key = uint64_t(uint32_t(ia)) << 32 | uint32_t(ib);
    size_t i = (key * 0x9E3779B97F4A7C15ULL >> 20) & m.merge_mask_;
    while (m.merges_[i].key != kEmptyKey && m.merges_[i].key != key) i = (i + 1) & m.merge_mask_;
    m.merges_[i] = {key, uint64_t(rank) << 32 | uint32_t(im)};  // a repeated pair keeps its last rank, as HF's does
  }
  for (int b = 0; b < 256; ++b) {
    m.byte_char_[b].clear();
    append_utf8(m.byte_char_[b], byte_level_char(static_cast<unsigned char>(b)));
    m.byte_symbol_[b] = m.index_.find(m.byte_char_[b]);
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    m.fallback_byte_[b] = m.index_.find(name);
  }
  // (ignore_merges looks the whole word up first, so its words must stay whole.)
  m.split_at_metaspace_ = !options.ignore_merges && m.index_.find(kMetaspace) >= 0;
  for (const std::string& t : m.tokens_)
    if (next_metaspace_run(t, 1) != std::string::npos) m.split_at_metaspace_ = false;
  if (!options.unk_token.empty()) {
    m.unk_id_ = m.index_.find(options.unk_token);
    if (m.unk_id_ < 0)
      return make_error(Errc::format, "model: unk_token '" + options.unk_token + "' is not in the vocabulary");
  }
  return owned;
}

bool Bpe::merge_of(int32_t a, int32_t b, uint32_t& rank, int32_t& merged) const {
  const uint64_t key = uint64_t(uint32_t(a)) << 32 | uint32_t(b);
  for (size_t i = (key * 0x9E3779B97F4A7C15ULL >> 20) & merge_mask_;; i = (i + 1) & merge_mask_) {
    const MergeSlot& s = merges_[i];
    if (s.key == key) {
      rank = uint32_t(s.value >> 32);
      merged = int32_t(uint32_t(s.value));
      return true;
    }
    if (s.key == kEmptyKey) return false;
  }
}

// One symbol from a character not found as such: its "<0xXX>" bytes with byte fallback (the
// pending unknown stays pending, as in HF), else the unknown token (fused with a pending one when
// fuse_unk), else nothing.
void Bpe::add_symbol(std::string_view s, std::vector<Symbol>& word, int32_t& pending_unk) const {
  const int32_t id = index_.find(s);
  auto push = [&](int32_t sym) { word.push_back({sym, int32_t(word.size()) - 1, -1, false}); };
  if (id >= 0) {
    if (pending_unk >= 0) push(pending_unk), pending_unk = -1;
    push(id);
    return;
  }
  if (options_.byte_fallback) {
    bool all = true;
    for (char c : s) all &= fallback_byte_[static_cast<unsigned char>(c)] >= 0;
    if (all) {
      for (char c : s) push(fallback_byte_[static_cast<unsigned char>(c)]);
      return;
    }
  }
  if (unk_id_ < 0) return;
  if (pending_unk >= 0 && !options_.fuse_unk) push(pending_unk);
  pending_unk = unk_id_;
}

void Bpe::merge_word(std::string_view piece, bool bytes, std::vector<int32_t>& out) const {
  // A queued merge: key = rank << 32 | position, lowest first (HF's order: rank, then leftmost).
  struct Candidate {
    uint64_t key;
    int32_t merged;
    bool operator<(const Candidate& o) const { return key > o.key; }
  };
  thread_local std::vector<Symbol> word;
  thread_local std::vector<Candidate> heap;
  word.clear();
  heap.clear();
  int32_t pending_unk = -1;
  if (bytes) {
    for (char c : piece) {
      const auto b = static_cast<unsigned char>(c);
      if (byte_symbol_[b] >= 0 && pending_unk < 0)
        word.push_back({byte_symbol_[b], int32_t(word.size()) - 1, -1, false});
      else
        add_symbol(byte_char_[b], word, pending_unk);
    }
  } else {
    for (size_t i = 0; i < piece.size();) {
      const size_t n = std::min(utf8_len(static_cast<unsigned char>(piece[i])), piece.size() - i);
      add_symbol(piece.substr(i, n), word, pending_unk);
      i += n;
    }
  }
  if (pending_unk >= 0) word.push_back({pending_unk, int32_t(word.size()) - 1, -1, false});
  const int32_t n = int32_t(word.size());
  for (int32_t i = 0; i + 1 < n; ++i) word[size_t(i)].next = i + 1;

  uint32_t rank;
  int32_t merged;
  auto queue = [&](uint32_t r, int32_t pos, int32_t id) { heap.push_back({uint64_t(r) << 32 | uint32_t(pos), id}); };
  for (int32_t i = 0; i + 1 < n; ++i)
    if (merge_of(word[size_t(i)].id, word[size_t(i + 1)].id, rank, merged)) queue(rank, i, merged);
  std::make_heap(heap.begin(), heap.end());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    const auto pos = int32_t(uint32_t(top.key));
    Symbol& left = word[size_t(pos)];
    if (left.removed || left.next < 0) continue;
    Symbol& right = word[size_t(left.next)];
    // A stale entry: the pair at this position no longer merges into the queued token.
    if (!merge_of(left.id, right.id, rank, merged) || merged != top.merged) continue;
    left.id = top.merged;
    right.removed = true;
    left.next = right.next;
    if (left.next >= 0) word[size_t(left.next)].prev = pos;
    if (left.prev >= 0 && merge_of(word[size_t(left.prev)].id, left.id, rank, merged)) {
      queue(rank, left.prev, merged);
      std::push_heap(heap.begin(), heap.end());
    }
    if (left.next >= 0 && merge_of(left.id, word[size_t(left.next)].id, rank, merged)) {
      queue(rank, pos, merged);
      std::push_heap(heap.begin(), heap.end());
    }
  }
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = word[size_t(i)].next) out.push_back(word[size_t(i)].id);
}

// The model's answer for one pre-token, before any cache: the whole piece when ignore_merges
// finds it in the vocabulary, else the merges.
void Bpe::tokenize_uncached(std::string_view piece, bool bytes, std::vector<int32_t>& out) const {
  if (options_.ignore_merges) {
    thread_local std::string mapped;
    std::string_view key = piece;
    if (bytes) {
      mapped.clear();
      for (char c : piece) mapped += byte_char_[static_cast<unsigned char>(c)];
      key = mapped;
    }
    const int32_t id = index_.find(key);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  merge_word(piece, bytes, out);
}

void Bpe::tokenize_cached(std::string_view piece, bool bytes, std::vector<int32_t>& out) const {
  if (piece.size() >= PieceCache::kMaxKey) {
    tokenize_uncached(piece, bytes, out);
    return;
  }
  PieceCache& cache = piece_cache(cache_id_);
  const uint64_t h = hash_bytes(piece);
  const size_t slot = cache.probe(piece, h);
  if (cache.slots[slot] != 0) {
    const auto& e = cache.entries[cache.slots[slot] - 1];
    out.insert(out.end(), cache.ids.begin() + e.ids_off, cache.ids.begin() + e.ids_off + e.ids_len);
    return;
  }
  const size_t first = out.size();
  tokenize_uncached(piece, bytes, out);
  if (cache.entries.size() >= PieceCache::kMaxEntries) return;
  cache.entries.push_back({h, uint32_t(cache.keys.size()), uint32_t(piece.size()), uint32_t(cache.ids.size()),
                           uint32_t(out.size() - first)});
  cache.keys.append(piece);
  cache.ids.insert(cache.ids.end(), out.begin() + long(first), out.end());
  cache.slots[slot] = uint32_t(cache.entries.size());
}

void Bpe::tokenize(std::string_view piece, bool bytes, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (bytes || !split_at_metaspace_) {
    tokenize_cached(piece, bytes, out);
    return;
  }
  // No token has U+2581 after another character, so no merge crosses the start of a run of
  // U+2581: the word's parts merge independently, and short parts hit the cache.
  size_t begin = 0;
  for (size_t at = next_metaspace_run(piece, 1); at != std::string_view::npos; at = next_metaspace_run(piece, at + 1)) {
    tokenize_cached(piece.substr(begin, at - begin), bytes, out);
    begin = at;
  }
  tokenize_cached(piece.substr(begin), bytes, out);
}

}  // namespace st::text
