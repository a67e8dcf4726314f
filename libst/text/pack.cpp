// The packing rule (see pack.hpp).
#include "libst/text/pack.hpp"

namespace st::text {

std::vector<int32_t> document_separator(const Tokenizer& tok, bool add_special) {
  if (add_special && tok.specials_added() == 0 && tok.eos_id() >= 0) return {tok.eos_id()};
  return {};
}

std::vector<std::vector<int32_t>> Packer::add(const std::vector<int32_t>& ids) {
  std::vector<std::vector<int32_t>> done;
  size_t at = 0;
  while (at < ids.size()) {
    const size_t take = std::min(n_ - pending_.size(), ids.size() - at);
    pending_.insert(pending_.end(), ids.begin() + long(at), ids.begin() + long(at + take));
    at += take;
    if (pending_.size() == n_) done.push_back(std::move(pending_)), pending_.clear();
  }
  return done;
}

}  // namespace st::text
