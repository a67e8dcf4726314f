// Names from files (libst/format/names.hpp) and part-folder names (libst/format/parts.hpp).
#include <gtest/gtest.h>

#include <string>

#include "libst/format/names.hpp"
#include "libst/format/parts.hpp"

namespace {

TEST(PlainName, AcceptsFileNames) {
  for (const char* n : {"config.json", "model-00001-of-00002.safetensors", "..x", "a..b", ".hidden", "x y"})
    EXPECT_TRUE(st::check_plain_name(n)) << n;
}

TEST(PlainName, RefusesPathsAndOddBytesSayingWhy) {
  const std::pair<std::string, const char*> cases[] = {
      {"", "it is empty"},
      {".", "it names a directory"},
      {"..", "it names a directory"},
      {"../x", "it holds a '/'"},
      {"a/b", "it holds a '/'"},
      {"/etc/shadow", "it is an absolute path"},
      {std::string("a\0b", 3), "it holds a NUL byte"},
      {"a\nb", "it holds a control character"},
      {std::string(256, 'a'), "longer than 255 bytes"},
  };
  for (const auto& [name, why] : cases) {
    const st::Status s = st::check_plain_name(name);
    ASSERT_FALSE(s) << name;
    EXPECT_EQ(s.error().code, st::Errc::format);
    EXPECT_NE(s.error().message.find(why), std::string::npos) << s.error().message;
    EXPECT_EQ(s.error().message.find('\n'), std::string::npos) << "one line: " << s.error().message;
  }
  auto j = st::join_plain_name("/d", "../x");
  EXPECT_FALSE(j);
  EXPECT_EQ(*st::join_plain_name("/d", "x"), "/d/x");
}

TEST(PartName, CanonicalNamesRoundTrip) {
  for (int n : {1, 2, 8, 10, 65536})
    for (int r : {0, n / 2, n - 1}) {
      auto p = st::parse_part_name(st::part_name(r, n));
      ASSERT_TRUE(p) << p.error().message;
      EXPECT_EQ(p->rank, r);
      EXPECT_EQ(p->count, n);
    }
}

TEST(PartName, AnythingElseSaysWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"part00-of-2", "expected 'part0-of-2'"},
      {"part1-of-02", "expected 'part1-of-2'"},
      {"part2-of-2", "rank 2 is out of range"},
      {"part0-of-0", "part count 0 is not in 1..65536"},
      {"part0-of-65537", "part count 65537 is not in 1..65536"},
      {"part99999999999999999999-of-2", "rank 99999999999999999999 is out of range"},
      {"part0-of-99999999999999999999", "is not in 1..65536"},
      {"part-1-of-2", "not a part folder name"},
      {"part0-of-2x", "not a part folder name"},
  };
  for (const auto& [name, why] : cases) {
    auto p = st::parse_part_name(name);
    ASSERT_FALSE(p) << name;
    EXPECT_NE(p.error().message.find(why), std::string::npos) << name << ": " << p.error().message;
  }
  EXPECT_TRUE(st::looks_like_part_name("part00-of-2"));
  EXPECT_FALSE(st::looks_like_part_name("part0-of-2.bak"));
}

}  // namespace
