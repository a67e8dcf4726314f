// Combining activation statistics: the fold st-calibrate's threads use, and the merge of the
// statistics of the n parts of one calibration run (st-calibrate --part i/n, then --merge).
//
// A part file is a statistics file (libst/format/stats.hpp) whose __metadata__ also holds
// "st.stats.part" = "i/n", "st.stats.part_sequences" (the sequences of the whole run) and
// "st.stats.part_ids_xxh3" (the XXH3-64 of all of them, libst/data/tokens.hpp select_part), so a
// merge can tell that its parts cut the same sequences; "st.stats.samples" and "st.stats.seq_len"
// describe the part's own slice.
#pragma once

#include <string>
#include <vector>

#include "libst/core/error.hpp"
#include "libst/format/stats.hpp"

namespace st {

// Folds `from` into `into`: ranges and magnitudes by min / max (bit-exact in any order), sums of
// squares and token counts added; a linear or tensor only one side has is taken as it is.
// Error (naming `from_path` and the tensor): the same name with another length.
Status merge_stats(ActivationStats& into, ActivationStats&& from, const std::string& from_path = {});

// The index-th (1-based) of `count` slices of the calibration data.
struct StatsPart {
  int64_t index = 0, count = 0;
};
constexpr const char* kStatsPartKey = "st.stats.part";
constexpr const char* kStatsPartSequencesKey = "st.stats.part_sequences";
constexpr const char* kStatsPartIdsKey = "st.stats.part_ids_xxh3";

// "i/n" with 1 <= i <= n; the error says what is wrong with `text`.
Result<StatsPart> parse_stats_part(const std::string& text);
std::string stats_part_text(StatsPart part);

// The statistics one run over all the data would have written, from the files of its parts
// 1/n ... n/n given in any order (folded in part order): min / max / absmax / per-channel ranges
// bit-identical to one run's, sums of squares added in float64, token counts exact; metadata
// that of part 1 with the samples added and the longest sequence. Errors name the file: not a
// part, parts of another split or of other data or settings, a part missing or given twice.
Result<ActivationStats> merge_stats_parts(const std::vector<std::string>& paths);

}  // namespace st
