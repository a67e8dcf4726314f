// Added tokens (tokenizer.json "added_tokens"): found in the text before the model runs, with
// HF tokenizers' rules — leftmost-longest matches, single_word, lstrip, rstrip — in two sets:
// tokens with normalized = false match the raw text, the others the normalized text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace st::text {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A stretch of text: [begin, end) of the string split, and the added token it is (id >= 0) or
// -1 for text still to tokenize.
struct Segment {
  size_t begin, end;
  int32_t id;
};

class AddedVocab {
 public:
  // Adds a token to the set it belongs to; `pattern` is what is searched for (the content, or
  // for a normalized token the content after the tokenizer's normalizer).
  void add(const AddedToken& token, const std::string& pattern);

  // Splits s at the tokens of one set; empty text stretches are dropped.
  void split(std::string_view s, bool normalized_set, std::vector<Segment>& out) const;
  bool empty(bool normalized_set) const { return sets_[normalized_set].nodes.size() <= 1; }

 private:
  struct Node {
    int32_t token = -1;  // index into tokens_
    std::vector<std::pair<unsigned char, int32_t>> kids;
  };
  struct Trie {
    std::vector<Node> nodes{1};
    bool first[256] = {};
  };
  // Longest token starting at s[i]: its index and length, or -1.
  int32_t longest_at(const Trie& t, std::string_view s, size_t i, size_t& len) const;
  Trie sets_[2];
  std::vector<AddedToken> tokens_;
};

}  // namespace st::text
