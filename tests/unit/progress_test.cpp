// bin/common's progress line: done/total, rate, elapsed and time left.
#include "bin/common/progress.hpp"

#include <gtest/gtest.h>

namespace {

using st::Progress;
using st::cli::progress_text;

TEST(ProgressText, RateElapsedAndTimeLeft) {
  // 12 of 48 tensors in 3 s: 9 s left at that pace; 3.75 GB in 3 s.
  EXPECT_EQ(progress_text(Progress{"tensors", 12, 48, 3'750'000'000, "bytes"}, 3.0),
            "tensors 12/48  1.25 GB/s  0:03 elapsed, 0:09 left");
  EXPECT_EQ(progress_text(Progress{"sequences", 3, 4, 1536, "tokens"}, 2.0),
            "sequences 3/4  768 tokens/s  0:02 elapsed, 0:01 left");
  EXPECT_EQ(progress_text(Progress{"tensors", 1, 2, 5'000'000, "bytes"}, 3725.0),
            "tensors 1/2  0.0 MB/s  1:02:05 elapsed, 1:02:05 left");
}

TEST(ProgressText, DoneUnknownTotalAndNoTimeYet) {
  EXPECT_EQ(progress_text(Progress{"tensors", 48, 48, 0, "bytes"}, 61.0), "tensors 48/48  1:01 elapsed");
  EXPECT_EQ(progress_text(Progress{"weight files read", 3, 0, 2'000'000, "bytes"}, 1.0),
            "weight files read 3  2.0 MB/s  0:01 elapsed");
  EXPECT_EQ(progress_text(Progress{"linears checked", 0, 10, 0, "bytes"}, 0.0), "linears checked 0/10");
}

}  // namespace
